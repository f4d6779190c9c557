"""bench/gateway.py still runs: every route, a fraction of a second each (the figures are not checked)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gateway_benchmark_runs_at_a_tiny_size() -> None:
    result = subprocess.run([sys.executable, "bench/gateway.py", "--seconds", "0.3", "--warmup", "0.1",
                             "--pool", "2", "--concurrency", "2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for route in ("health:", "session:", "list:", "post:"):
        assert route in result.stdout, result.stdout
    assert result.stdout.count("gateway CPU/request") == 4, result.stdout

"""bench/memory.py runs end to end at a tiny size (its figures are not checked: a benchmark that stops running
fails here, not on its numbers)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_memory_benchmark_runs_at_a_tiny_size() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "memory.py"), "--seconds", "1", "--pool", "2",
                             "--concurrency", "2", "--settle", "0.2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "idle RSS" in out and "load peak" in out, out
    lines = out.splitlines()
    for process in ("gateway", "auth", "conversations", "notifications", "kb", "nats-server", "bare FastAPI",
                    "bare python"):
        assert any(line.startswith(f"{process} ") for line in lines), (process, out)
    assert "all service processes within targets:" in out, out

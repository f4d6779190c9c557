"""bench/pipeline.py and bench/portal_pages.py run end to end at a tiny size (their figures are not checked: a
benchmark that stops running fails here, not on its numbers)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "arguments", "expected"), [
    ("pipeline.py", ["--events", "200", "--rate", "100", "--seconds", "1"],
     ["raw nats-py baseline", "ratio pipeline / baseline:", "latency at"]),
    ("portal_pages.py", ["--requests", "40", "--rounds", "2", "--warmup", "5"],
     ["CPU per request, ms:", "total (Portico)", "ratio page / JSON, total CPU per request:"]),
])
def test_benchmark_runs_at_a_tiny_size(script: str, arguments: list[str], expected: list[str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *arguments],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in expected:
        assert line in result.stdout, (line, result.stdout)

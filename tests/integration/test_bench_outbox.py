"""`bench/outbox.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_outbox_benchmark_runs_with_a_tiny_size():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "outbox.py"), "--events", "50", "--repeat", "1", "--rate", "500"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "relay CPU per event at 500 events/s" in out, out
    assert "relay CPU per event at as fast as committed" in out, out
    assert out.count("raw nats-py baseline:") == 2 and out.count("ratio relay / baseline:") == 2, out
    assert out.count("whole process, relay on minus off:") == 2, out

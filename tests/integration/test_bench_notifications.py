"""bench/notifications.py still runs: a tiny size, with its profile, as a subprocess (its figures are not checked)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_notifications_benchmark_runs_at_a_tiny_size() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "notifications.py"), "--events", "6", "--conversations", "3",
         "--customers", "2", "--baseline-emails", "5", "--grace", "0.3", "--timeout", "90", "--profile", "timings"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "exactly once: 6 received, 6 distinct Message-IDs, 0 missing, 0 unexpected -> OK" in result.stdout
    assert "ratio notifications / SMTP baseline:" in result.stdout
    assert "thread: outbound._record" in result.stdout  # the profile found the functions it times

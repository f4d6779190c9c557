"""`bench/token_login.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_token_login_benchmark_runs_with_a_tiny_size():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "token_login.py"), "--returning", "40", "--first", "10",
         "--customers", "5", "--email", "5", "--concurrency", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "returning customer (40 logins, 5 accounts)" in out, out
    assert "first login (10 new accounts, until everywhere)" in out, out
    for process in ("gateway", "auth", "conversations", "notifications", "nats-server"):
        assert f"{process} " in out.split("CPU per login:")[1], out
    assert "e-mail code request (5," in out and "e-mail code verify (5)" in out, out
    assert "ratio to bare" in out and "on the request path" in out, out

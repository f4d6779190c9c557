"""`bench/conversations.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_conversations_benchmark_runs_with_a_tiny_size():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "conversations.py"), "--messages", "30", "--pool", "4",
         "--concurrency", "4", "--conversations", "30", "--samples", "5", "--warmup", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Portico message post (SSO customer, JSON)" in out, out
    cpu = out.split("CPU per request (ms)")[1]
    for operation in ("customer message", "new conversation", "agent answer"):
        line = next(line for line in cpu.splitlines() if line.strip().startswith(f"{operation}:"))
        for process in ("gateway", "auth", "conversations", "nats-server"):
            assert f"{process} " in line, line
        assert "on the request path" in line and "ratio to bare" in line, line
    assert "list, customer with 30 conversations" in out, out

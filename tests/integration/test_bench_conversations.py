"""`bench/conversations.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

from tests.kit.bench import run_benchmark


def test_conversations_benchmark_runs_with_a_tiny_size():
    out = run_benchmark("conversations.py", "--messages", "30", "--pool", "4", "--concurrency", "4",
                        "--conversations", "30", "--samples", "5", "--warmup", "2")
    assert "Portico message post (SSO customer, JSON)" in out, out
    cpu = out.split("CPU per request (ms)")[1]
    for operation in ("customer message", "new conversation", "agent answer"):
        line = next(line for line in cpu.splitlines() if line.strip().startswith(f"{operation}:"))
        for process in ("gateway", "auth", "conversations", "nats-server"):
            assert f"{process} " in line, line
        assert "on the request path" in line and "ratio to bare" in line, line
    assert "list, customer with 30 conversations" in out, out

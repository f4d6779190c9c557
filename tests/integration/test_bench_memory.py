"""bench/memory.py runs end to end at a tiny size (its figures are not checked: a benchmark that stops running
fails here, not on its numbers)."""

from tests.kit.bench import run_benchmark


def test_memory_benchmark_runs_at_a_tiny_size() -> None:
    out = run_benchmark("memory.py", "--seconds", "1", "--pool", "2", "--concurrency", "2", "--settle", "0.2")
    assert "idle RSS" in out and "load peak" in out, out
    lines = out.splitlines()
    for process in ("gateway", "auth", "conversations", "notifications", "kb", "nats-server", "bare FastAPI",
                    "bare python"):
        assert any(line.startswith(f"{process} ") for line in lines), (process, out)
    assert "all service processes within targets:" in out, out

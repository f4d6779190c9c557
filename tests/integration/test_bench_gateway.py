"""bench/gateway.py still runs: every route, a fraction of a second each (the figures are not checked)."""

from tests.kit.bench import run_benchmark


def test_gateway_benchmark_runs_at_a_tiny_size() -> None:
    out = run_benchmark("gateway.py", "--seconds", "0.3", "--warmup", "0.1", "--pool", "2", "--concurrency", "2")
    for route in ("health:", "session:", "list:", "post:", "answer:"):
        assert route in out, out
    assert out.count("gateway CPU/request") == 5, out

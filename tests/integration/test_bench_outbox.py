"""`bench/outbox.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

from tests.kit.bench import run_benchmark


def test_outbox_benchmark_runs_with_a_tiny_size():
    out = run_benchmark("outbox.py", "--events", "50", "--repeat", "1", "--rate", "500")
    assert "relay CPU per event at 500 events/s" in out, out
    assert "relay CPU per event at as fast as committed" in out, out
    assert out.count("raw nats-py baseline:") == 2 and out.count("ratio relay / baseline:") == 2, out
    assert out.count("whole process, relay on minus off:") == 2, out

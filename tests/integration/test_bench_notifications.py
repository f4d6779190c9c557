"""bench/notifications.py still runs: a tiny size, with its profile, as a subprocess (its figures are not checked)."""

from tests.kit.bench import run_benchmark


def test_the_notifications_benchmark_runs_at_a_tiny_size() -> None:
    out = run_benchmark("notifications.py", "--events", "6", "--conversations", "3", "--customers", "2",
                        "--baseline-emails", "5", "--grace", "0.3", "--timeout", "90", "--profile", "timings")
    assert "exactly once: 6 received, 6 distinct Message-IDs, 0 missing, 0 unexpected -> OK" in out
    assert "ratio notifications / SMTP baseline:" in out
    assert "thread: outbound._record" in out  # the profile found the functions it times

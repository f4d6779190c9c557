"""`bench/token_login.py` still runs end to end (a tiny size: this checks the script, not its figures)."""

from tests.kit.bench import run_benchmark


def test_token_login_benchmark_runs_with_a_tiny_size():
    out = run_benchmark("token_login.py", "--returning", "40", "--first", "10", "--customers", "5", "--email",
                        "5", "--concurrency", "4")
    assert "returning customer (40 logins, 5 accounts)" in out, out
    assert "first login (10 new accounts, until everywhere)" in out, out
    for process in ("gateway", "auth", "conversations", "notifications", "nats-server"):
        assert f"{process} " in out.split("CPU per login:")[1], out
    assert "e-mail code request (5," in out and "e-mail code verify (5)" in out, out
    assert "ratio to bare" in out and "on the request path" in out, out

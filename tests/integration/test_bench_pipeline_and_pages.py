"""bench/pipeline.py and bench/portal_pages.py run end to end at a tiny size (their figures are not checked: a
benchmark that stops running fails here, not on its numbers)."""


import pytest

from tests.kit.bench import run_benchmark


@pytest.mark.parametrize(("script", "arguments", "expected"), [
    ("pipeline.py", ["--events", "200", "--rate", "100", "--seconds", "1"],
     ["raw nats-py baseline", "ratio pipeline / baseline:", "latency at"]),
    ("portal_pages.py", ["--requests", "40", "--rounds", "2", "--warmup", "5"],
     ["CPU per request, ms:", "total (Portico)", "ratio page / JSON, total CPU per request:"]),
])
def test_benchmark_runs_at_a_tiny_size(script: str, arguments: list[str], expected: list[str]) -> None:
    out = run_benchmark(script, *arguments)
    for line in expected:
        assert line in out, (line, out)

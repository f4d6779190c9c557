"""bench/kb_search.py runs end to end at a tiny size (its figures are not checked: a benchmark that stops
running fails here, not on its numbers)."""

from tests.kit.bench import run_benchmark


def test_kb_search_benchmark_runs_at_a_tiny_size(tmp_path):
    out = run_benchmark("kb_search.py", "--articles", "300", "--seconds", "0.5", "--concurrency", "2",
                        "--profile", "--profile-rounds", "1")
    for line in ("Portico search (anonymous reader):", "search query alone (index, in-process):",
                 "CPU per search:", "ratio Portico / raw search query:", "while an article changes",
                 "profile: services.kb.reading._search"):
        assert line in out, out[-3000:]

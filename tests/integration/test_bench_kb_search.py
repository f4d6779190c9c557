"""bench/kb_search.py runs end to end at a tiny size (its figures are not checked: a benchmark that stops
running fails here, not on its numbers)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kb_search_benchmark_runs_at_a_tiny_size(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kb_search.py"), "--articles", "300", "--seconds", "0.5",
         "--concurrency", "2", "--profile", "--profile-rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("Portico search (anonymous reader):", "search query alone (index, in-process):",
                 "CPU per search:", "ratio Portico / raw search query:", "while an article changes",
                 "profile: services.kb.reading._search"):
        assert line in result.stdout, result.stdout[-3000:]

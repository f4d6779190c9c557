"""Running a benchmark script of `bench/` as the suite checks it: at a tiny size, for its output, not its figures."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *arguments: str, timeout: float = 300) -> str:
    """Run `bench/<script>` with `arguments` from the checkout's root; its standard output. Fails the test
    (AssertionError, with the end of both outputs) when it exits with an error; TimeoutExpired after `timeout` s."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *arguments], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout

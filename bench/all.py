"""Every benchmark in this folder, one after the other, written to `bench/results.md`.

Each benchmark prints its own figures beside the baseline it measured in the same run (bare FastAPI, raw
nats-py, raw sqlite3, a raw search query) and the ratio; this script adds what the figures depend on: the
machine (CPU model, cores, memory), the Python, the date and the commit, and the command of each run.

    python bench/all.py [--only NAME ...] [--out bench/results.md]

`make bench` runs it with the defaults. A benchmark that fails is recorded as failed (with the end of its
output) and the script exits 1 after running the others.
"""

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOT_BENCHMARKS = {"all", "harness"}
TAIL_LINES = 40


def benchmarks() -> list[str]:
    """The benchmark scripts' names (`bench/<name>.py`), in name order."""
    return sorted(path.stem for path in HERE.glob("*.py") if path.stem not in NOT_BENCHMARKS)


def machine() -> str:
    """One line: CPU model, logical cores, memory (GiB), Python version and platform."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores{memory}; Python {platform.python_version()} on {platform.platform()}"


def commit() -> str:
    """The checkout's commit (short), with `+changes` when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run(name: str) -> tuple[bool, str, float]:
    """Run `bench/<name>.py` with its default sizes; (succeeded, its output, seconds taken)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(HERE / f"{name}.py")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = result.stdout.rstrip()
    if result.returncode != 0:
        output = "\n".join(output.splitlines()[-TAIL_LINES:]) + f"\n(exit status {result.returncode})"
    return result.returncode == 0, output, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=benchmarks(), help="run only these benchmarks")
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="where the results go")
    args = parser.parse_args()

    names = args.only or benchmarks()
    sections = [
        "# Benchmark results",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Commit: {commit()}",
        f"- Machine: {machine()}",
        f"- Command: `python bench/all.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`",
        "",
        "Each benchmark measures its baseline in the same run; compare ratios, not absolute figures, across runs.",
    ]
    failed = []
    for name in names:
        print(f"running bench/{name}.py ...", flush=True)
        ok, output, seconds = run(name)
        if not ok:
            failed.append(name)
        print(output, flush=True)
        sections += ["", f"## {name}{'' if ok else ' (FAILED)'}", "",
                     f"`python bench/{name}.py` ({seconds:.0f} s)", "", "```", output, "```"]
    args.out.write_text("\n".join(sections) + "\n")
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

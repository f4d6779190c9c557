"""The README's try-it steps run as written from a clone, against `portico dev` started as `make run`
starts it (port 4222 taken): every step succeeds, and the operator commands find that NATS server."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli import DEV_NATS_RECORD
from tests.e2e.test_make_run import ROOT, ctrl_c, port_4222_taken, start_dev, wait_for_output

pytestmark = pytest.mark.slow

README = ROOT / "README.md"

# Each step must succeed: a failing command or HTTP status stops the script, with the answer's body shown.
PRELUDE = """set -euo pipefail -x
curl() { command curl --fail-with-body -sS "$@"; echo; }
"""


def try_it_blocks(readme: str) -> list[str]:
    """The ```bash blocks of the README's Quick start section, in order."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M)


def test_the_readme_has_try_it_blocks_that_need_no_hand_editing():
    blocks = try_it_blocks(README.read_text())
    assert len(blocks) >= 3
    text = "\n".join(blocks)
    assert "<" + "id>" not in text and "<code" not in text and "<the printed" not in text
    for path in re.findall(r"-F files=@(\S+)", text):
        assert (ROOT / path).is_file(), f"{path} is not shipped"
    for jar in (jar for call in re.findall(r"curl [^|\n]*", text) for jar in re.findall(r" -[bc] (\S+)", call)):
        assert jar.startswith('"$DATA/'), f"cookie jar {jar} would land in the repository"


def test_the_readme_try_it_steps_run_against_portico_dev(tmp_path):
    data_dir = tmp_path / "var"
    with port_4222_taken():
        process, log, port = start_dev(tmp_path)
        try:
            wait_for_output(log, r"Portico is running at", process)
            nats_url = re.search(r"NATS:\s+(nats://\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
            blocks = try_it_blocks(README.read_text())
            assert len(blocks) >= 3, "the README's try-it steps are not ```bash blocks in Quick start"
            script = PRELUDE + "\n".join(blocks)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
            env.update(PORTICO_PUBLIC_URL=f"http://127.0.0.1:{port}", PORTICO_DATA_DIR=str(data_dir))
            result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, f"a step failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
            out = result.stdout
            assert '"email":"ana@example.com"' in out.replace(" ", "")  # signed in with the e-mailed code
            assert "invoice.pdf" in out  # the sample file was accepted
            conversations = json.loads(out.strip().splitlines()[-1])["conversations"]
            assert conversations[0]["subject"] == "Invoice" and conversations[0]["preview"] == "Fixed, sorry!"
            assert not (ROOT / "jar").exists() and not (ROOT / "bo").exists()

            # Issue 10: an operator command in another shell finds this NATS, not the one on 4222.
            dlq = subprocess.run([sys.executable, "-m", "services.cli", "dlq", "list"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
            assert dlq.returncode == 0, dlq.stderr
            assert dlq.stderr.startswith(f"NATS: {nats_url} (the running `portico dev`")
            assert dlq.stdout == "no dead-lettered events\n"
        finally:
            if process.poll() is None:
                ctrl_c(process)
    assert not (data_dir / DEV_NATS_RECORD).exists(), "the record outlived `portico dev`"

"""The README stays true: every setting a process reads is documented, and the two commands are there."""

from pathlib import Path

from services.runtime.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_portico_variable_is_documented():
    for name in Settings.model_fields:
        assert f"`PORTICO_{name.upper()}`" in README, f"PORTICO_{name.upper()} is not in the README"
    assert "`PORTICO_TEST_POSTGRES_URL`" in README


def test_quick_start_names_the_two_commands():
    assert "make run" in README and "make test" in README

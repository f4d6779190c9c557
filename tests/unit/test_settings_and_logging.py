"""Settings refuse placeholder secrets outside development; logs are JSON lines with the correlation id
and never carry secrets."""

import io
import json
import logging

import pytest
from pydantic import ValidationError

from services.runtime.logging import configure_logging, correlation_id, get_logger
from services.runtime.settings import Settings


@pytest.mark.parametrize("value", ["changeme", "password", "secret", "short"])
def test_placeholder_secrets_are_refused_outside_dev(monkeypatch, value):
    monkeypatch.setenv("PORTICO_ENV", "prod")
    monkeypatch.setenv("PORTICO_BOOTSTRAP_ADMIN_PASSWORD", value)
    with pytest.raises(ValidationError, match="PORTICO_BOOTSTRAP_ADMIN_PASSWORD"):
        Settings()


def test_placeholder_api_key_refused_in_prod_but_allowed_in_dev(monkeypatch):
    monkeypatch.setenv("PORTICO_BOOTSTRAP_API_KEY", "changeme")
    monkeypatch.setenv("PORTICO_ENV", "prod")
    with pytest.raises(ValidationError, match="PORTICO_BOOTSTRAP_API_KEY"):
        Settings()
    monkeypatch.setenv("PORTICO_ENV", "dev")
    assert Settings().bootstrap_api_key.get_secret_value() == "changeme"  # type: ignore[union-attr]


def test_real_secrets_are_accepted_in_prod(monkeypatch):
    monkeypatch.setenv("PORTICO_ENV", "prod")
    monkeypatch.setenv("PORTICO_BOOTSTRAP_ADMIN_PASSWORD", "Tq8-vX2r9LmZ4kPw")
    assert Settings().bootstrap_admin_password is not None


def test_database_urls_default_to_sqlite_under_the_data_dir_and_follow_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTICO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTICO_KB_DATABASE_URL", "postgresql://db.internal/kb")
    settings = Settings()
    assert settings.database_url("auth") == f"sqlite:///{tmp_path.resolve()}/db/auth.sqlite3"
    assert settings.database_url("kb") == "postgresql://db.internal/kb"


def test_ports_and_urls(monkeypatch):
    monkeypatch.setenv("PORTICO_HTTP_PORT", "8123")
    settings = Settings()
    assert settings.resolved_public_url == "http://127.0.0.1:8123"
    monkeypatch.setenv("PORTICO_PUBLIC_URL", "https://support.example.com/")
    assert Settings().resolved_public_url == "https://support.example.com"


def test_logs_are_json_with_correlation_id_and_no_secrets():
    stream = io.StringIO()
    configure_logging("test-process", "INFO", stream=stream)
    try:
        token = correlation_id.set("corr-123")
        try:
            get_logger("portico.test").info("signed in", user_id="u1", password="hunter2", token="abc.def",
                                            code="123456")
        finally:
            correlation_id.reset(token)
        logging.getLogger("some.library").warning("library line")
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first = lines[0]
    assert first["event"] == "signed in" and first["correlation_id"] == "corr-123"
    assert first["process"] == "test-process" and first["level"] == "info"
    assert first["password"] == first["token"] == first["code"] == "[redacted]"
    assert "hunter2" not in stream.getvalue() and "123456" not in stream.getvalue()
    assert lines[1]["event"] == "library line" and lines[1]["logger"] == "some.library"

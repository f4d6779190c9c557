"""Settings of every Portico process, read once at start from `PORTICO_*` variables."""

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people copy from examples; refused as secrets anywhere but in development.
PLACEHOLDER_SECRETS = frozenset({
    "", "changeme", "change-me", "change_me", "changethis", "secret", "password", "admin", "test",
    "example", "default", "xxx", "todo", "replace-me", "portico",
})
MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTICO_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("var")
    nats_url: str | None = None
    # fsync policy of the embedded nats-server: `always` (no acknowledged event lost on power failure)
    # or an interval such as `1s` (faster; up to that much can be lost on power failure).
    nats_sync_interval: str = "always"
    # Copies JetStream keeps of each stream, KV bucket and Object Store (1-5; durable consumers follow
    # their stream). Unset: 1 when PORTICO_NATS_URL names one server, 3 when it lists a cluster's
    # servers (comma-separated). Existing streams are brought to this count at start.
    nats_replicas: int | None = Field(default=None, ge=1, le=5)
    # The NATS server's monitoring endpoint (`http://127.0.0.1:8222`; comma-separated for a cluster's
    # servers) where `portico status` counts each service's replicas from the connections subscribed to
    # its ping; unset: it counts the replicas it sees answer.
    nats_monitor_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # A service replica's own metrics port: `GET /metrics` (Prometheus) and `GET /healthz` (this replica
    # connected to NATS, its database answering). 0: none. Each process needs its own port (replicas on one
    # machine, and `portico dev`, which starts every service with the same environment, so leave it 0 there).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Address the metrics port listens on (`0.0.0.0` in a container, for the scraper and the probes).
    metrics_host: str = "127.0.0.1"
    public_url: str | None = None
    log_level: str = "INFO"

    auth_database_url: str | None = None
    conversations_database_url: str | None = None
    notifications_database_url: str | None = None
    kb_database_url: str | None = None

    bootstrap_api_key: SecretStr | None = None
    bootstrap_admin_password: SecretStr | None = None

    # Event pipeline: how often a failing event is tried before it goes to the dead-letter subject,
    # and the waits between tries (seconds; the last one repeats).
    max_deliver: int = 5
    redelivery_backoff: tuple[float, ...] = (0.5, 2.0, 10.0, 30.0)
    consumer_batch: int = 500
    consumer_ack_wait: float = 30.0
    relay_batch: int = 500
    relay_poll_interval: float = 1.0
    # Seconds a busy relay leaves between the starts of two passes, so the rows committed meanwhile go in one
    # (an idle relay publishes a commit at once); 0 publishes every commit in a pass of its own.
    relay_linger: float = 0.02
    outbox_retention_hours: float = 168.0
    # Inbox rows (event ids a consumer applied) are kept this long; the streams keep events for ever,
    # see services/runtime/inbox.py for why pruning after this keeps de-duplication sound.
    inbox_retention_hours: float = 720.0
    rpc_timeout: float = 5.0
    # Read requests a service replica answers at once (the others are one at a time).
    rpc_concurrency: int = 4
    # Portal message limits; a portal's admin can change them for that portal.
    max_message_chars: int = 10_240
    max_attachments: int = 6
    max_attachment_bytes: int = 3 * 1024 * 1024
    # E-mail: outbound SMTP (`smtp://user:pass@host:587?starttls=1`, `smtps://...` for TLS; unset: the
    # development mail catcher under <data dir>/mail), the inbound SMTP server for replies, and the
    # domain of reply addresses `reply+<token>@<domain>`, whose tokens are signed with the secret.
    smtp_url: SecretStr | None = None
    mail_from: str | None = None
    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int = 2525
    reply_domain: str = "reply.localhost"
    reply_token_secret: SecretStr | None = None
    max_inbound_email_bytes: int = 25 * 1024 * 1024
    notification_max_attempts: int = 8
    notification_backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    # Multiplies every sign-in rate limit (benchmarks raise it; never lower than 1 in production).
    rate_limit_scale: float = 1.0
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto the gateway believes: comma-separated IPs or
    # CIDRs. Empty: none, the peer address is the client's (a header anyone can send is no address).
    trusted_proxies: str = ""

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.env == "dev":
            return self
        for name in ("bootstrap_api_key", "bootstrap_admin_password", "reply_token_secret"):
            value: SecretStr | None = getattr(self, name)
            if value is None:
                continue
            raw = value.get_secret_value()
            if raw.strip().lower() in PLACEHOLDER_SECRETS or len(raw) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"PORTICO_{name.upper()} is a placeholder or shorter than {MIN_SECRET_LENGTH} characters; "
                    f"set a real secret (PORTICO_ENV={self.env})")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"PORTICO_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR") from exc
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        """`PORTICO_TRUSTED_PROXIES` as a list of IPs and CIDRs (`[]`: trust no proxy)."""
        return [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def resolved_nats_url(self) -> str:
        return self.nats_url or "nats://127.0.0.1:4222"

    @property
    def nats_servers(self) -> list[str]:
        """`PORTICO_NATS_URL` split at commas: the servers a client connects to, in order, e.g.
        `["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]` (nats-py wants a list, not one string)."""
        return [url.strip() for url in self.resolved_nats_url.split(",") if url.strip()]

    @property
    def resolved_nats_replicas(self) -> int:
        """`PORTICO_NATS_REPLICAS`, else 1 for one server and 3 for a list of a cluster's servers."""
        if self.nats_replicas is not None:
            return self.nats_replicas
        return 3 if len(self.nats_servers) > 1 else 1

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    def database_url(self, service: str) -> str:
        """`PORTICO_<SERVICE>_DATABASE_URL`, else a SQLite file under the data dir."""
        explicit = getattr(self, f"{service}_database_url", None)
        if explicit:
            return explicit
        path = (self.data_dir / "db" / f"{service}.sqlite3").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

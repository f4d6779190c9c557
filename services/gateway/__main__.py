"""`python -m services.gateway`: serve the HTTP edge with uvicorn (uvloop + httptools, no access log)."""

import uvicorn

from services.gateway.app import create_app
from services.runtime.logging import configure_logging
from services.runtime.settings import Settings


def main() -> None:
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, loop="uvloop",
                http="httptools", access_log=False, log_config=None, timeout_graceful_shutdown=5,
                # The app decides which proxies' X-Forwarded-For to believe (PORTICO_TRUSTED_PROXIES).
                proxy_headers=False)


main()

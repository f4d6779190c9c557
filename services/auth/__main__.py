"""`python -m services.auth`: serve the auth service until SIGINT/SIGTERM."""

from services.runtime.main import serve

from services.auth.app import build

serve("auth", build)

"""`python -m services.auth`: serve the auth service until SIGINT/SIGTERM."""

from services.auth.app import build
from services.runtime.main import serve

serve("auth", build)

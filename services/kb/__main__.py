"""`python -m services.kb`: serve the kb service until SIGINT/SIGTERM."""

from services.runtime.main import serve

from services.kb.app import build

serve("kb", build)

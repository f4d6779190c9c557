"""`python -m services.kb`: serve the kb service until SIGINT/SIGTERM."""

from services.kb.app import build
from services.runtime.main import serve

serve("kb", build)

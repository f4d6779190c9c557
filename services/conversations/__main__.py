"""`python -m services.conversations`: serve the conversations service until SIGINT/SIGTERM."""

from services.conversations.app import build
from services.runtime.main import serve

serve("conversations", build)

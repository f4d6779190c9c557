"""`python -m services.conversations`: serve the conversations service until SIGINT/SIGTERM."""

from services.runtime.main import serve

from services.conversations.app import build

serve("conversations", build)

"""`python -m services.notifications`: serve the notifications service until SIGINT/SIGTERM."""

from services.runtime.main import serve

from services.notifications.app import build

serve("notifications", build)

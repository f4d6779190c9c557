"""`python -m services.notifications`: serve the notifications service until SIGINT/SIGTERM."""

from services.notifications.app import build
from services.runtime.main import serve

serve("notifications", build)

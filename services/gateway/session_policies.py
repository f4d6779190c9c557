"""Each portal's current session lifetime and idle timeout, held in memory and followed live.

auth writes a portal's `SessionPolicy` to the KV bucket `session_policies` when an admin changes it;
every gateway watches the bucket, so checking a session against its portal's current policy costs
no database read and no extra round trip per request.
"""

import asyncio
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import ValidationError

from contracts.sessions import SESSION_POLICIES_BUCKET, SessionPolicy
from services.runtime.kv import ensure_bucket
from services.runtime.logging import get_logger

log = get_logger("portico.gateway")


class SessionPolicies:
    """`on_change(portal)`: called when a portal's policy is read or changes (the gateway forgets the
    sessions it kept for that portal: `services.gateway.auth.SessionCache.forget_portal`)."""

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self._by_portal: dict[str, SessionPolicy] = {}
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None

    def get(self, portal: str | None) -> SessionPolicy | None:
        """The portal's current policy; None when it never changed (sessions carry the portal's own)."""
        return self._by_portal.get(portal) if portal else None

    async def follow(self, js: JetStreamContext, replicas: int = 1) -> None:
        """Load every portal's policy, then keep following changes in the background (again on each call:
        a reconnect starts over from the bucket's current values)."""
        await self.stop()
        kv = await ensure_bucket(js, SESSION_POLICIES_BUCKET, ttl_seconds=0, replicas=replicas,
                                 description="Each portal's current session lifetime and idle timeout")
        watcher = await kv.watchall()
        while (entry := await watcher.updates(timeout=10)) is not None:  # None: the current values are all in
            self._apply(entry)
        self._watcher = watcher
        self._task = asyncio.create_task(self._keep_following(watcher))

    async def _keep_following(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is not None:
                self._apply(entry)

    def _apply(self, entry: KeyValue.Entry) -> None:
        if entry.operation in ("DEL", "PURGE"):
            self._by_portal.pop(entry.key, None)
        else:
            try:
                self._by_portal[entry.key] = SessionPolicy.model_validate_json(entry.value or b"{}")
            except ValidationError:
                log.warning("unreadable session policy ignored", portal=entry.key)
                return
        if self._on_change is not None:
            self._on_change(entry.key)

    async def stop(self) -> None:
        watcher, task, self._watcher, self._task = self._watcher, self._task, None, None
        if watcher is not None:
            try:
                await watcher.stop()
            except Exception as exc:  # already disconnected
                log.warning("session policy watch stop failed", error=repr(exc))
        if task is not None:
            task.cancel()

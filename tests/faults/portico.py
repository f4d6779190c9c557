"""Portico as `make run` starts it, for the fault tests: each service and each gateway its own OS process
(`python -m services.NAME`), on one nats-server, the test's databases, e-mail to the test's SMTP sink; any of
them killed with SIGKILL and started again. Every process is stopped when the `with` block ends.
"""

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

from bench.harness import Processes, service_env, wait_gateway_ready
from services.runtime.nats import EmbeddedNats, free_port
from tests.kit.conversations import Demo, make_demo

SERVICES = ("auth", "conversations", "notifications", "kb")
READY_TIMEOUT = 60.0  # seconds a (re)started process has to become ready


class Portico(Processes):
    """`replicas` processes of each service and of the gateway (each gateway on its own free port)."""

    def __init__(self, work: Path, nats: EmbeddedNats, settings, replicas: int = 1) -> None:  # type: ignore[no-untyped-def]
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        super().__init__(logs)
        self.nats, self.settings, self.replicas = nats, settings, replicas
        self.gateway_ports = [free_port() for _ in range(replicas)]
        # The same settings as the in-process suite's (tests/conftest.py make_settings), as PORTICO_* variables;
        # consumers retry long enough to outlast a service being down for a few seconds.
        self.env = service_env(work, nats.url, {
            **{f"PORTICO_{s.upper()}_DATABASE_URL": settings.database_url(s) for s in SERVICES},
            "PORTICO_SMTP_URL": settings.smtp_url.get_secret_value(), "PORTICO_HTTP_HOST": "127.0.0.1",
            "PORTICO_RELAY_POLL_INTERVAL": "0.2", "PORTICO_RPC_TIMEOUT": "5", "PORTICO_MAX_DELIVER": "12",
            "PORTICO_REDELIVERY_BACKOFF": "[0.2, 0.5, 1.0, 2.0]", "PORTICO_NOTIFICATION_BACKOFF": "[0.2, 0.5, 1.0]",
            "PORTICO_INBOUND_SMTP_PORT": str(free_port())})

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.gateway_ports]

    def start_one(self, service: str, replica: int = 0) -> None:
        env = self.env
        if service == "gateway":
            env = {**env, "PORTICO_HTTP_PORT": str(self.gateway_ports[replica])}
        self.start(f"{service}-{replica}", ["-m", f"services.{service}"], env)

    async def start_all(self) -> None:
        for replica in range(self.replicas):
            for service in (*SERVICES, "gateway"):
                self.start_one(service, replica)
        await self.ready()

    async def ready(self) -> None:
        """Every running gateway answers /readyz with every service "ok" (READY_TIMEOUT at most)."""
        running = {name for name, _ in self.running}
        for replica, port in enumerate(self.gateway_ports):
            if f"gateway-{replica}" in running:
                await wait_gateway_ready(port, self, SERVICES)

    def kill(self, service: str, replica: int = 0) -> float:
        """SIGKILL one process, as a crash; when it was killed (monotonic)."""
        name = f"{service}-{replica}"
        [process] = [p for n, p in self.running if n == name]
        process.kill()
        process.wait(timeout=10)
        self.running = [(n, p) for n, p in self.running if n != name]
        return time.monotonic()

    async def kill_and_restart(self, service: str, down_for: float, replica: int = 0) -> tuple[float, float]:
        """Kill a process, leave it down `down_for` seconds, start it again and wait until all is ready:
        (killed at, ready again at), monotonic."""
        killed = self.kill(service, replica)
        await asyncio.sleep(down_for)
        self.start_one(service, replica)
        await self.ready()
        return killed, time.monotonic()

    async def kill_and_restart_nats(self, down_for: float) -> tuple[float, float]:
        """SIGKILL the nats-server, start it again on its port and store after `down_for` seconds, wait until
        the services are ready again."""
        self.nats.kill()
        killed = time.monotonic()
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.nats.start)
        await asyncio.to_thread(self.nats.wait_healthy, READY_TIMEOUT)
        await self.ready()
        return killed, time.monotonic()

    async def demo(self) -> Demo:
        """The demo org seeded, its admin, an agent signed in on the first gateway."""
        demo = await make_demo(self.settings, SimpleNamespace(base_url=self.base_urls[0]))
        demo.agent = await demo.staff("agent@example.com", "agent")  # type: ignore[attr-defined]
        return demo

"""The runtime kit against a real nats-server: connecting before the server exists, streams,
request/reply with queue groups and typed errors."""

import asyncio
import json

import nats
from nats.js.api import StorageType

from contracts import operations
from contracts.operations import Operation
from contracts.errors import ErrorCode, ServiceError
from contracts.rpc import Ping, Reply, Request
from contracts.subjects import DLQ_STREAM, STREAMS
from services.auth.app import build as build_auth
from services.runtime.nats import ensure_streams
from services.runtime.rpc import RpcClient
from services.runtime.service import Service


async def test_service_started_before_nats_connects_when_it_comes(settings, nats_server, start_service):
    nats_server.stop()
    starting = asyncio.create_task(start_service(build_auth, settings))
    await asyncio.sleep(1.0)
    assert not starting.done()  # still waiting for the server, not crashed
    nats_server.start()
    service = await asyncio.wait_for(starting, timeout=20)
    nc = await nats.connect(settings.nats_url)
    try:
        reply = await nc.request("rpc.auth.ping", b"{}", timeout=3)
    finally:
        await nc.close()
    assert json.loads(reply.data)["data"]["instance"] == service.instance


async def test_streams_are_created_once_with_file_storage_and_a_duplicate_window(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await ensure_streams(js)  # again, from another replica: no error, same streams
        for name in (*STREAMS.values(), DLQ_STREAM):
            info = await js.stream_info(name)
            assert info.config.storage == StorageType.FILE
            assert info.config.duplicate_window == 120.0
        assert (await js.stream_info("AUTH")).config.subjects == ["events.auth.>"]
    finally:
        await nc.close()


class Explode(Request):
    how: str


async def test_rpc_replicas_share_requests_and_errors_come_back_typed(settings, start_service):
    def explode(session, request: Explode) -> Reply:  # type: ignore[no-untyped-def]
        if request.how == "typed":
            raise ServiceError(ErrorCode.conflict, "That already happened.")
        raise RuntimeError("secret internal detail")

    def build(settings, **overrides):  # type: ignore[no-untyped-def]
        service = Service("kb", settings, **overrides)
        service.answer(Operation("kb", "explode", Explode, Reply), explode)  # a test-only operation
        return service

    replicas = [await start_service(build, settings) for _ in range(2)]
    nc = await nats.connect(settings.nats_url)
    try:
        answered = set()
        for _ in range(30):
            reply = await nc.request("rpc.kb.ping", b"{}", timeout=3)
            answered.add(json.loads(reply.data)["data"]["instance"])
        assert answered == {r.instance for r in replicas}  # the queue group spreads requests

        async def call(payload: bytes) -> dict:
            # An error must come back as an answer: without one, the request raises a timeout here.
            reply = await nc.request("rpc.kb.explode", payload, timeout=3)
            return json.loads(reply.data)

        assert await call(b'{"how": "typed"}') == {"error": "conflict", "message": "That already happened."}
        invalid = await call(b'{"unexpected": 1}')
        assert invalid["error"] == "invalid_request" and "how" in invalid["message"]
        assert (await call(b"not json"))["error"] == "invalid_request"
        internal = await call(b'{"how": "crash"}')
        assert internal["error"] == "internal_error"
        assert "secret internal detail" not in internal["message"]
    finally:
        await nc.close()


async def test_rpc_client_maps_missing_service_and_replies(settings, start_service):
    from faststream.nats import NatsBroker

    broker = NatsBroker(settings.nats_url, logger=None)
    await broker.connect()
    client = RpcClient(broker, timeout=2)
    try:
        try:
            await client.call(operations.kb.ping, Ping())
        except ServiceError as exc:
            assert exc.code == ErrorCode.service_unavailable and exc.status == 503
        else:
            raise AssertionError("no kb is running: the call must fail")
        kb = await start_service(lambda s, **o: Service("kb", s, **o), settings)
        pong = await client.call(operations.kb.ping, Ping())
        assert pong.service == "kb" and pong.instance == kb.instance and pong.database == "ok"
    finally:
        await broker.stop()


async def test_stop_ends_a_task_whose_first_cancellation_is_lost(settings, ):
    """A library wait that completes as it is cancelled can swallow the cancellation; stop asks again."""
    service = build_auth(settings)
    cancellations: list[str] = []

    async def stubborn(_: Service) -> None:
        while True:
            try:
                await asyncio.sleep(60)  # a long fetch
            except asyncio.CancelledError:
                cancellations.append("seen")
                if len(cancellations) == 1:
                    continue  # lost: carries on waiting
                raise

    service.background(stubborn)
    await service.start()
    stopping = asyncio.create_task(service.stop())
    await asyncio.wait_for(asyncio.shield(stopping), timeout=10)  # not the 60 s the task would otherwise wait
    assert cancellations == ["seen", "seen"]
    assert service._tasks == []

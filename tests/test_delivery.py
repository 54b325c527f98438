"""Transport behaviour shared by the sync socket transport and the asyncio one.

Every scenario runs on both (the ``transport`` fixture): a stray answer on an idle connection,
one ``timeout`` for the whole request, and the delivery policy (what is resent, what is retried).
The fault server's record of the requests it received is the ground truth.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable

import pytest
import urllib3

import pusher_fast
from pusher_fast import errors
from pusher_fast.aio import AsyncPusher
from tests.faultserver import FaultServer, Recorded, Reply

pytestmark = pytest.mark.timeout(60)


class Driver:
    """Runs a list of calls on one client of the given kind, the caller busy between them."""

    def __init__(self, kind: str, server: FaultServer, **options: Any) -> None:
        self.kind = kind
        self.server = server
        self.options = {"timeout": 2, **options}

    def run(self, calls: list[Callable[[Any], Any]], busy: float = 0.0) -> list[Any]:
        """Each call's result or the exception it raised; ``busy`` seconds of blocking work
        between calls (the event loop does not run then, for the async client)."""
        kwargs = self.server.client_kwargs(**self.options)
        if self.kind == "urllib3":
            kwargs["pool_manager"] = urllib3.PoolManager()
        elif self.kind == "aiohttp":
            from pusher_fast.aiohttp import AsyncIOBackend

            kwargs["backend"] = AsyncIOBackend
        if self.kind in ("sync", "urllib3"):
            client = pusher_fast.Pusher(**kwargs)
            out: list[Any] = []
            for call in calls:
                try:
                    out.append(call(client))
                except Exception as exc:
                    out.append(exc)
                time.sleep(busy)
            return out

        async def main() -> list[Any]:
            async with AsyncPusher(**kwargs) as client:
                results: list[Any] = []
                for call in calls:
                    try:
                        results.append(await call(client))
                    except Exception as exc:
                        results.append(exc)
                    time.sleep(busy)  # blocks the loop: bytes arriving now wait unread
                return results

        return asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server() -> Any:
    s = FaultServer()
    try:
        yield s
    finally:
        s.stop()


def trigger(i: int) -> Callable[[Any], Any]:
    return lambda client: client.trigger("c", "e", {"i": i})


def own_answer(rec: Recorded) -> Reply:
    """Answers each request with its own index, then a stray answer naming none."""
    stray = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n" + b'{"stray":true}'
    body = json.dumps({"channels": {f"for-{rec.index}": {}}}).encode()
    return Reply(200, body, stray=stray)


# -- item 2: bytes on an idle connection -------------------------------------------------------


def test_stray_answer_on_idle_connection_is_never_read_as_the_next_answer(
    transport: str, server: FaultServer
) -> None:
    server.responder = own_answer
    calls = [lambda client: client.channels_info() for _ in range(6)]
    results = Driver(transport, server).run(calls, busy=0.15)
    assert not [r for r in results if isinstance(r, Exception)], results
    got = [next(iter(r["channels"])) for r in results]
    assert got == [f"for-{rec.index}" for rec in server.requests]
    assert len(server.requests) == 6  # each request sent once


# -- item 3: one deadline for the whole request ------------------------------------------------

DRIP = Reply(200, b'{"channels":{}}' + b" " * 30, trickle=0.3)  # ~14 s at one byte per 0.3 s


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["sync", "async", "urllib3", "aiohttp"])
def test_dripping_server_fails_the_request_by_the_timeout(kind: str, server: FaultServer) -> None:
    """Each byte arrives well within the timeout; the whole answer does not."""
    server.default = DRIP
    started = time.monotonic()
    results = Driver(kind, server, timeout=1).run([lambda client: client.channels_info()])
    took = time.monotonic() - started
    assert isinstance(results[0], errors.PusherTransportError), results
    assert took < 1 + 1.5, f"{kind}: the request ran {took:.1f}s with timeout=1"


@pytest.mark.timeout(30)
def test_bulk_close_returns_in_its_bound_with_workers_on_a_dripping_server(
    server: FaultServer,
) -> None:
    server.default = DRIP
    client = pusher_fast.Pusher(**server.client_kwargs(timeout=1))
    sender = client.bulk(concurrency=2, shutdown_timeout=0.5, backoff_base=0.01)
    for i in range(30):
        sender.add("c", "e", {"i": i})
    server.wait_for_requests(2)
    started = time.monotonic()
    report = sender.close()
    took = time.monotonic() - started
    assert took < 0.5 + 2 * 1 + 1 + 0.5, f"close() took {took:.1f}s"  # the documented bound
    assert report.submitted == 30 == report.delivered + len(report.failed)
    assert not [t for t in threading.enumerate() if t.name.startswith("pusher-bulk-")]

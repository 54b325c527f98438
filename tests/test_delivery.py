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
from tests.faultserver import Close, FaultServer, Recorded, Reply, Reset

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
            client = self.client = pusher_fast.Pusher(**kwargs)
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
                self.client = client
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
    """Our own transports (the scenarios that need their internals)."""
    return str(request.param)


@pytest.fixture(params=["sync", "async", "urllib3", "aiohttp"])
def any_transport(request: pytest.FixtureRequest) -> str:
    """Every transport: ours, and urllib3 / aiohttp (used for proxies, pool_manager=)."""
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
# The head itself a byte per 0.3 s (~30 s): urllib3 reads a head with a per-read timeout.
DRIP_HEAD = Reply(200, b'{"channels":{}}', trickle=0.3, trickle_head=True)


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


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["sync", "async", "urllib3", "aiohttp"])
def test_server_dripping_the_head_fails_the_request_by_the_timeout(
    kind: str, server: FaultServer
) -> None:
    """Each byte of the answer's head arrives well within the timeout; the head does not."""
    server.default = DRIP_HEAD
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


# -- item 11: the delivery policy --------------------------------------------------------------


def channels(client: Any) -> Any:
    return client.channels_info()


def check_ambiguous(result: Any) -> None:
    assert isinstance(result, errors.PusherTransportError), result
    assert result.ambiguous is True


@pytest.mark.parametrize("fault", [Close(), Reset()], ids=["close", "reset"])
@pytest.mark.parametrize("retries", [None, 3])
def test_request_written_then_dropped_is_received_once_and_raised(
    any_transport: str, server: FaultServer, fault: Any, retries: Any
) -> None:
    """On a reused connection (the case once resent silently) and, with retries=, no
    at_least_once: received once, raised as ambiguous."""
    server.script(Reply(), fault)
    # A POST: aiohttp itself resends idempotent methods (GET) on a reused connection.
    results = Driver(any_transport, server, retries=retries).run([trigger(1), trigger(2)])
    assert results[0] == {}
    check_ambiguous(results[1])
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", [Close(), Reset()], ids=["close", "reset"])
def test_at_least_once_retries_a_request_that_may_have_been_processed(
    any_transport: str, server: FaultServer, fault: Any
) -> None:
    server.script(Reply(), fault, fault)
    driver = Driver(any_transport, server, retries=3, at_least_once=True)
    assert driver.run([channels, channels]) == [{}, {}]
    assert len(server.requests) == 4


def test_at_least_once_retries_a_read_timeout(any_transport: str, server: FaultServer) -> None:
    server.script(Reply(delay=1.0))
    driver = Driver(any_transport, server, timeout=0.3, retries=2, at_least_once=True)
    assert driver.run([channels]) == [{}]
    assert len(server.requests) == 2


def test_read_timeout_is_not_retried_without_at_least_once(
    any_transport: str, server: FaultServer
) -> None:
    server.default = Reply(delay=1.0)
    results = Driver(any_transport, server, timeout=0.3, retries=3).run([channels])
    check_ambiguous(results[0])
    server.wait_idle(5)
    assert len(server.requests) == 1


def test_429_honours_retry_after(any_transport: str, server: FaultServer) -> None:
    server.script(Reply(429, b"{}", headers={"Retry-After": "0.4"}))
    assert Driver(any_transport, server, retries=2).run([channels]) == [{}]
    first, second = server.requests
    assert second.t - first.t >= 0.35


def test_503_is_retried_up_to_the_count_then_raised(
    any_transport: str, server: FaultServer
) -> None:
    server.default = Reply(503, b"busy")
    results = Driver(
        any_transport, server, retries=urllib3.Retry(total=2, backoff_factor=0.01)
    ).run([channels])
    assert isinstance(results[0], errors.PusherBadStatus) and results[0].status == 503
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_client_errors_are_never_retried(
    any_transport: str, server: FaultServer, status: int
) -> None:
    server.default = Reply(status, b"no", headers={"Retry-After": "0"})
    results = Driver(any_transport, server, retries=3, at_least_once=True).run([channels])
    assert isinstance(results[0], errors.PusherError) and results[0].status == status
    assert len(server.requests) == 1


def test_connection_refused_is_retried_and_not_ambiguous(any_transport: str) -> None:
    with FaultServer() as gone:
        pass  # its port is now closed
    started = time.monotonic()
    results = Driver(any_transport, gone, retries=urllib3.Retry(total=2, backoff_factor=0.1)).run(
        [channels]
    )
    assert isinstance(results[0], errors.PusherTransportError)
    assert results[0].ambiguous is False
    assert time.monotonic() - started >= 0.1  # two backoffs: 0.05..0.1 then 0.1..0.2


def test_idle_connection_closed_before_the_write_is_not_used(
    transport: str, server: FaultServer
) -> None:
    """The server closes (unannounced) after each answer; the caller is slow: the closed
    connection is seen before writing, and each request is received once."""
    server.default = Reply(after="close")
    driver = Driver(transport, server)
    assert driver.run([channels, channels, channels], busy=0.1) == [{}, {}, {}]
    assert len(server.requests) == 3
    assert len({r.conn for r in server.requests}) == 3


def test_failed_write_on_a_kept_alive_connection_is_resent_silently(
    transport: str, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idle check is disabled so that the write itself meets the reset connection:
    writing failed, so the request was not processed and goes once more, unasked."""
    from pusher_fast.transports import aio_sockets, sockets

    module = sockets if transport == "sync" else aio_sockets
    monkeypatch.setattr(module._Connection, "dropped", lambda self: False)
    server.default = Reply(after="reset")
    driver = Driver(transport, server)
    assert driver.run([channels, channels], busy=0.2) == [{}, {}]
    assert len(server.requests) == 2
    assert driver.client.http.stale_resends == 1


def test_retries_do_not_change_the_transport(server: FaultServer) -> None:
    from pusher_fast.transports import AsyncHTTPBackend, HTTPClientBackend

    kwargs = server.client_kwargs(retries=3, at_least_once=True)
    assert type(pusher_fast.Pusher(**kwargs).http) is HTTPClientBackend
    assert type(AsyncPusher(**kwargs).http) is AsyncHTTPBackend


def test_at_least_once_must_be_a_bool(server: FaultServer) -> None:
    with pytest.raises(TypeError, match="at_least_once"):
        pusher_fast.Pusher(**server.client_kwargs(at_least_once="yes"))


# -- the bulk senders: at-least-once by default, ambiguous outcomes counted apart ------------


def bulk_send(kind: str, server: FaultServer, n: int = 5, **options: Any) -> Any:
    kwargs = server.client_kwargs(timeout=options.pop("timeout", 2))
    options = {"concurrency": 1, "backoff_base": 0.01, "backoff_max": 0.05, **options}
    if kind == "sync":
        client = pusher_fast.Pusher(**kwargs)
        with client.bulk(**options) as sender:
            for i in range(n):
                sender.add("c", "e", {"seq": i})
        return sender.report

    async def main() -> Any:
        async with AsyncPusher(**kwargs) as client:
            async with client.bulk(**options) as sender:
                for i in range(n):
                    await sender.add("c", "e", {"seq": i})
            return sender.report

    return asyncio.run(main())


@pytest.mark.parametrize("fault", [Close(), Reset()], ids=["close", "reset"])
def test_bulk_retries_an_ambiguous_outcome_by_default(
    transport: str, server: FaultServer, fault: Any
) -> None:
    server.script(fault)
    report = bulk_send(transport, server, retries=2)
    assert report.ok and report.delivered == 5
    assert report.ambiguous == 1 and report.retries == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", [Close(), Reset()], ids=["close", "reset"])
def test_bulk_without_at_least_once_reports_ambiguous_failures(
    transport: str, server: FaultServer, fault: Any
) -> None:
    server.script(fault)
    report = bulk_send(transport, server, retries=2, at_least_once=False)
    assert report.delivered == 0 and len(report.failed) == 5
    assert all(f.ambiguous and f.attempts == 1 for f in report.failed)
    assert report.ambiguous == 1 and report.retries == 0
    assert len(server.requests) == 1  # received once, never resent
    assert report.as_dict()["ambiguous"] == 1


def test_bulk_failures_that_are_not_ambiguous_say_so(transport: str, server: FaultServer) -> None:
    server.default = Reply(503, b"busy")
    report = bulk_send(transport, server, retries=1, at_least_once=False)
    assert len(report.failed) == 5 and not any(f.ambiguous for f in report.failed)
    assert report.ambiguous == 0 and len(server.requests) == 2


# -- the policy object ---------------------------------------------------------------------------


def test_policy_from_a_count_and_from_a_urllib3_retry() -> None:
    from pusher_fast._retry import RETRY_STATUSES, make_policy

    assert make_policy(None).total == 0 and make_policy(True).total == 3
    policy = make_policy(4, at_least_once=True)
    assert policy.total == 4 and policy.at_least_once and policy.status_forcelist == RETRY_STATUSES
    retry = urllib3.Retry(
        total=2, backoff_factor=0.5, status_forcelist=[502], respect_retry_after_header=False
    )
    policy = make_policy(retry)
    assert (policy.total, policy.backoff_factor, policy.status_forcelist) == (2, 0.5, {502})
    assert policy.respect_retry_after is False and policy.at_least_once is False
    assert 408 in RETRY_STATUSES and 501 not in RETRY_STATUSES


def test_policy_decisions() -> None:
    from email.utils import formatdate

    from pusher_fast._retry import RETRY_AFTER_MAX, DeliveryPolicy

    policy = DeliveryPolicy(total=2, backoff_factor=0.2, backoff_max=0.3)
    assert policy.retry_status(1, 503, {}) is not None
    assert policy.retry_status(3, 503, {}) is None  # no attempts left
    assert policy.retry_status(1, 400, {"Retry-After": "0"}) is None
    assert policy.retry_status(1, 429, {"Retry-After": "1.5"}) == 1.5
    later = formatdate(time.time() + 3, usegmt=True)
    assert 1.0 <= (policy.retry_status(1, 429, {"Retry-After": later}) or 0) <= 3.5
    too_long = {"Retry-After": str(RETRY_AFTER_MAX + 1)}
    assert policy.retry_status(1, 429, too_long) is None  # not waited for: raised as it is
    assert all(0.1 <= policy.backoff(1) <= 0.2 for _ in range(50))
    assert all(0.15 <= policy.backoff(5) <= 0.3 for _ in range(50))  # capped, jittered
    assert policy.retry_error(1, ambiguous=False) is not None
    assert policy.retry_error(1, ambiguous=True) is None
    assert DeliveryPolicy(total=1, at_least_once=True).retry_error(1, ambiguous=True) is not None


def test_bulk_calls_a_subclass_send_raw_override(server: FaultServer) -> None:
    """The bulk sender makes single attempts through send_once, but a backend subclass that
    overrides send_raw (to gate or instrument requests) still sees every request."""
    from pusher_fast.transports import HTTPClientBackend

    calls: list[Any] = []

    class Counting(HTTPClientBackend):
        def send_raw(self, request: Any) -> Any:
            calls.append(request)
            return super().send_raw(request)

    client = pusher_fast.Pusher(**server.client_kwargs(backend=Counting, retries=2))
    server.script(Reply(503))
    with client.bulk(concurrency=1, retries=3, backoff_base=0.01) as sender:
        for i in range(5):
            sender.add("c", "e", {"seq": i})
    assert sender.report.ok and len(calls) == 1  # the client's retries= ran inside send_raw
    assert len(server.requests) == 2


# -- item 7 on the wire: answers whose lines end in a bare LF ------------------------------------


def test_bare_lf_answers_are_read_by_our_transports(transport: str, mini: Any) -> None:
    """As HTTP mocking libraries (httpretty) write them; kept-alive connections still reused."""
    mini.always(
        b'HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 15\n\n{"channels":{}}'
    )
    fake = FaultServer.__new__(FaultServer)  # only client_kwargs() is used: point it at mini
    fake.host, fake.port = "127.0.0.1", mini.port
    results = Driver(transport, fake).run([channels, channels])
    assert results == [{"channels": {}}, {"channels": {}}]
    assert len(mini.requests) == 2 and mini.connections == 1


def test_bulk_policy_caps_retry_after_and_decides_outcomes() -> None:
    """The bulk senders' policy: their count and backoff, a long Retry-After waited for
    ``backoff_max`` at most (a transport's ``retries=`` gives up instead), ambiguous outcomes
    retried only at-least-once, other failures only when retryable."""
    from pusher_fast._retry import RETRY_AFTER_MAX, DeliveryPolicy, Outcome, classify

    bulk = DeliveryPolicy.for_bulk(2, 0.01, 0.5, at_least_once=True)
    slow = classify(429, b"slow down", {"Retry-After": str(RETRY_AFTER_MAX + 1)})
    assert slow.retryable and slow.retry_after == RETRY_AFTER_MAX + 1
    assert bulk.retry_outcome(1, slow) == 0.5
    assert DeliveryPolicy(total=2).retry_status(1, 429, {"Retry-After": "61"}) is None
    assert bulk.retry_outcome(3, slow) is None  # no attempts left
    assert bulk.retry_outcome(1, classify(400, b"bad", {})) is None
    unknown = Outcome(False, None, "transport: reset", True, None, ambiguous=True)
    assert bulk.retry_outcome(1, unknown) is not None
    at_most_once = DeliveryPolicy.for_bulk(2, 0.01, 0.5, at_least_once=False)
    assert at_most_once.retry_outcome(1, unknown) is None


def test_transports_declare_the_interface() -> None:
    from pusher_fast.requests import RequestsBackend
    from pusher_fast.transports import AsyncSocketTransport, SocketTransport, Urllib3Backend
    from pusher_fast.transports.aiohttp_session import AsyncIOBackend
    from pusher_fast.transports.base import AsyncTransport, SyncTransport

    sync = pusher_fast.Pusher(app_id="1", key="k", secret="s")
    for backend in (SocketTransport, Urllib3Backend, RequestsBackend):
        assert isinstance(backend(sync), SyncTransport), backend
    for backend in (AsyncSocketTransport, AsyncIOBackend):
        assert isinstance(backend(sync), AsyncTransport), backend
    assert not isinstance(RecordingOnly(), SyncTransport)


class RecordingOnly:
    """A user's backend in the official protocol: ``send_request`` and nothing else."""

    def __init__(self, *args: Any, **options: Any) -> None:
        self.requests: list[Any] = []

    def send_request(self, request: Any) -> Any:
        self.requests.append(request)
        return {}


def test_single_attempt_follows_the_declared_interface() -> None:
    from pusher_fast.transports import SocketTransport
    from pusher_fast.transports.base import async_single_attempt, single_attempt

    client = pusher_fast.Pusher(app_id="1", key="k", secret="s")
    plain = SocketTransport(client)
    assert single_attempt(plain) == plain.send_once  # one attempt: no retries= inside

    class Gated(SocketTransport):
        def send_raw(self, request: Any) -> Any:
            return super().send_raw(request)

    gated = Gated(client)
    assert single_attempt(gated) == gated.send_raw

    user = RecordingOnly()
    request = client._trigger_request("c", "e", "d")
    assert single_attempt(user)(request) == (200, b"", {})
    assert user.requests == [request]

    class AsyncUser:
        def __init__(self) -> None:
            self.requests: list[Any] = []

        async def send_request(self, request: Any) -> Any:
            self.requests.append(request)
            return {}

    async_user = AsyncUser()
    assert asyncio.run(async_single_attempt(async_user)(request)) == (200, b"", {})
    assert async_user.requests == [request]

"""AsyncPusher, AsyncBulkSender and the pooled AsyncIOBackend against a local recording server.

AsyncPusher's transport is ``AsyncSocketTransport`` by default (``transports.aio_sockets``) and
aiohttp's ``AsyncIOBackend`` when asked for: the tests of what AsyncPusher and AsyncBulkSender
do (results, errors, pooling, the bulk account, retries) run on both, through the ``backend``
fixture; the tests of the aiohttp session itself pass ``backend=AsyncIOBackend``.  The
transport's own tests are in ``test_asynchttp.py``.

No pytest-asyncio: each test runs its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import threading
import time
import warnings
from typing import Any

import pytest

import pusher_fast
import pusher_fast.aiohttp
from pusher_fast import errors
from pusher_fast.aio import AsyncBulkSender, AsyncPusher, default_async_backend
from pusher_fast.aiohttp import AsyncIOBackend
from pusher_fast.bulk import BulkReport
from pusher_fast.transports import AsyncHTTPBackend
from tests.faultserver import FaultServer, Recorded, Reply, Reset, json_reply
from tests.helpers import MASTER_KEY_B64, decrypt_data

# A proxy in the environment would give AsyncPusher the aiohttp transport by default.
pytestmark = [pytest.mark.usefixtures("clean_proxy_environment"), pytest.mark.timeout(60)]

CANNED = {
    "/apps/123456/channels": {"channels": {"presence-a": {"user_count": 2}}},
    "/apps/123456/channels/presence-a": {"occupied": True, "user_count": 2},
    "/apps/123456/channels/presence-a/users": {"users": [{"id": "1"}, {"id": "2"}]},
}


def canned(rec: Recorded) -> Any:
    if rec.method == "GET" and rec.path in CANNED:
        return json_reply(200, CANNED[rec.path])
    return None


@pytest.fixture
def server():
    s = FaultServer()
    s.responder = canned
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(params=[None, AsyncIOBackend], ids=["asynchttp", "aiohttp"])
def backend(request):
    """AsyncPusher's transport: the default (None: AsyncHTTPBackend), or aiohttp's."""
    return request.param


def connect(server: FaultServer, backend: Any, **options: Any) -> AsyncPusher:
    """An AsyncPusher for ``server`` on ``backend`` (None: the default); ``options`` go to
    ``client_kwargs`` (timeout, limit, encryption key...)."""
    kwargs = server.client_kwargs(**options)
    if backend is not None:
        kwargs["backend"] = backend
    client = AsyncPusher(**kwargs)
    assert type(client.http) is (backend or AsyncHTTPBackend)
    return client


def stale_resends(client: Any) -> int:
    """Requests the transport itself sent twice (AsyncHTTPBackend's stale keep-alive resends)."""
    return int(getattr(client.http, "stale_resends", 0))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


def seq_of(event: dict[str, Any]) -> int:
    return int(json.loads(event["data"])["seq"])


def assert_account(report: BulkReport, server: FaultServer, submitted: set[tuple[str, int]]):
    assert report.submitted == len(submitted), report.as_dict()
    assert report.delivered + len(report.failed) == report.submitted, report.as_dict()
    failed = [(f.event["channel"], seq_of(f.event)) for f in report.failed]
    assert len(set(failed)) == len(failed)
    accepted = [(e["channel"], seq_of(e)) for e in server.accepted_events()]
    assert len(set(accepted)) == len(accepted), "accepted more than once"
    assert set(accepted).isdisjoint(failed)
    assert set(accepted) | set(failed) == submitted
    assert len(accepted) == report.delivered


# -- AsyncPusher: every method is awaitable and right ------------------------------------------


def test_async_pusher_methods(server, backend):
    async def main() -> None:
        async with connect(server, backend) as client:
            calls = {
                "trigger": client.trigger(["a", "b"], "ev", {"x": 1}, socket_id="1.2"),
                "trigger_batch": client.trigger_batch(
                    [{"channel": "a", "name": "ev", "data": {"y": 2}}]
                ),
                "channels_info": client.channels_info("presence-", ["user_count"]),
                "channel_info": client.channel_info("presence-a", ["user_count"]),
                "users_info": client.users_info("presence-a"),
                "send_to_user": client.send_to_user("u1", "ev", "hi"),
                "terminate": client.terminate_user_connections("u1"),
            }
            for name, call in calls.items():
                assert inspect.isawaitable(call), name
            results = {}
            for name, call in calls.items():  # one at a time: the server sees them in order
                results[name] = await call
            assert results["trigger"] == {} and results["trigger_batch"] == {}
            assert results["channels_info"] == CANNED["/apps/123456/channels"]
            assert results["channel_info"] == CANNED["/apps/123456/channels/presence-a"]
            assert results["users_info"] == CANNED["/apps/123456/channels/presence-a/users"]
            assert results["send_to_user"] == {} and results["terminate"] == {}
            # No I/O: plain methods.
            auth = client.authenticate("private-a", "1.2")
            assert auth["auth"].startswith("fault-key:")

    run(main())
    reqs = server.requests
    assert [(r.method, r.path) for r in reqs] == [
        ("POST", "/apps/123456/events"),
        ("POST", "/apps/123456/batch_events"),
        ("GET", "/apps/123456/channels"),
        ("GET", "/apps/123456/channels/presence-a"),
        ("GET", "/apps/123456/channels/presence-a/users"),
        ("POST", "/apps/123456/events"),
        ("POST", "/apps/123456/users/u1/terminate_connections"),
    ]
    assert all(r.signature_ok() for r in reqs)
    assert reqs[0].json() == {
        "name": "ev", "channels": ["a", "b"], "data": '{"x":1}', "socket_id": "1.2"
    }  # fmt: skip
    assert reqs[1].json() == {"batch": [{"channel": "a", "name": "ev", "data": '{"y":2}'}]}
    assert reqs[2].query["filter_by_prefix"] == "presence-"
    assert reqs[2].query["info"] == "user_count"
    assert reqs[3].query["info"] == "user_count"
    assert reqs[5].json()["channels"] == ["#server-to-user-u1"]
    assert reqs[6].json() == {}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(400, b"bad"), errors.PusherBadRequest),
        (Reply(401, b"auth"), errors.PusherBadAuth),
        (Reply(403, b"quota"), errors.PusherForbidden),
        (Reply(500, b"oops"), errors.PusherBadStatus),
        (Reset(), errors.PusherTransportError),
        (Reply(delay=1.0), errors.PusherTransportError),
    ],
    ids=["400", "401", "403", "500", "reset", "timeout"],
)
def test_async_pusher_errors(server, backend, reply, error):
    server.script(reply)

    async def main() -> None:
        async with connect(server, backend, timeout=0.3) as client:
            with pytest.raises(error):
                await client.trigger("c", "e", {})
            assert await client.trigger("c", "e", {}) == {}  # the client is still usable

    run(main())
    assert len(server.requests) == 2  # nothing sent twice


def test_async_pusher_validates_before_sending(server, backend):
    async def main() -> None:
        async with connect(server, backend) as client:
            with pytest.raises(ValueError):
                await client.trigger("bad channel", "e", {})
            with pytest.raises(ValueError):
                await client.trigger("c", "e", "x" * 40000)

    run(main())
    assert server.requests == []


# -- pooled connections, one aiohttp session -------------------------------------------------------


def test_connections_are_pooled_and_reused(server, backend):
    async def main() -> None:
        client = connect(server, backend)
        for i in range(50):
            assert await client.trigger("c", "e", {"i": i}) == {}
        assert server.connections_opened == 1, "sequential calls must reuse one connection"
        results = await asyncio.gather(*(client.trigger("c", "e", {"i": i}) for i in range(100)))
        assert results == [{}] * 100
        opened = server.connections_opened
        assert opened <= 100  # the pool's limit
        results = await asyncio.gather(*(client.trigger("c", "e", {"i": i}) for i in range(100)))
        assert results == [{}] * 100
        assert server.connections_opened == opened, "the second round must reuse the pool"
        await client.aclose()

    run(main())
    assert len(server.requests) == 250
    assert sorted(r.json()["data"] for r in server.requests) == sorted(
        [f'{{"i":{i}}}' for i in range(50)] + [f'{{"i":{i}}}' for i in range(100)] * 2
    )


def test_one_session_reused_for_many_calls(server):
    async def main() -> None:
        client = AsyncPusher(**server.client_kwargs(), backend=AsyncIOBackend)
        for i in range(50):
            await client.trigger("c", "e", {"i": i})
        assert server.connections_opened == 1, "sequential calls must reuse one connection"
        session = client.http._session
        results = await asyncio.gather(*(client.trigger("c", "e", {"i": i}) for i in range(100)))
        assert results == [{}] * 100
        opened = server.connections_opened
        assert opened <= 100  # the pool's limit
        results = await asyncio.gather(*(client.trigger("c", "e", {"i": i}) for i in range(100)))
        assert server.connections_opened == opened, "the second round must reuse the pool"
        assert client.http._session is session
        await client.aclose()

    run(main())
    assert len(server.requests) == 250


def test_pool_limit_bounds_connections(server, backend):
    async def main() -> None:
        async with connect(server, backend, limit=5) as client:
            results = await asyncio.gather(*(client.trigger("c", "e", {}) for _ in range(60)))
            assert results == [{}] * 60

    run(main())
    assert server.connections_opened <= 5
    assert len(server.requests) == 60


def test_aclose_closes_connections_and_stays_usable(server, backend):
    async def main() -> None:
        client = connect(server, backend)
        await asyncio.gather(*(client.trigger("c", "e", {}) for _ in range(10)))
        assert server.connections_open >= 1
        await client.aclose()
        await wait_until(lambda: server.connections_open == 0, 3)
        # Still usable: a new connection is made on demand.
        assert await client.trigger("c", "e", {}) == {}
        assert server.connections_open == 1
        async with client:
            assert await client.trigger("c", "e", {}) == {}
        await wait_until(lambda: server.connections_open == 0, 3)

    run(main())
    assert len(server.requests) == 12


def test_backend_as_async_context_manager_closes_its_connections(server, backend):
    """The backend given to a plain Pusher (as with the official AsyncIOBackend) closes its
    connections on leaving ``async with``."""

    async def main() -> None:
        client = pusher_fast.Pusher(**server.client_kwargs(), backend=backend or AsyncHTTPBackend)
        async with client.http as http:
            assert http is client.http
            assert await client.trigger("c", "e", {}) == {}
            assert server.connections_open == 1
        await wait_until(lambda: server.connections_open == 0, 3)

    run(main())


def test_aclose_closes_the_session_and_connections(server):
    async def main() -> None:
        client = AsyncPusher(**server.client_kwargs(), backend=AsyncIOBackend)
        await asyncio.gather(*(client.trigger("c", "e", {}) for _ in range(10)))
        session = client.http._session
        assert server.connections_open >= 1
        await client.aclose()
        assert session.closed
        await wait_until(lambda: server.connections_open == 0, 3)
        # Still usable: a new session is made on demand.
        assert await client.trigger("c", "e", {}) == {}
        await client.aclose()

    run(main())


def test_async_with_closes_the_session(server):
    async def main() -> Any:
        async with AsyncPusher(**server.client_kwargs(), backend=AsyncIOBackend) as client:
            await client.trigger("c", "e", {})
            session = client.http._session
        assert session.closed
        await wait_until(lambda: server.connections_open == 0, 3)

    run(main())


@pytest.mark.parametrize("explicit", [True, False], ids=["backend=AsyncIOBackend", "default"])
def test_a_session_of_your_own_is_not_closed(server, explicit):
    import aiohttp

    options: dict[str, Any] = {"backend": AsyncIOBackend} if explicit else {}

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            # session= gets the aiohttp transport even by default, on that session.
            async with AsyncPusher(**server.client_kwargs(), session=session, **options) as client:
                assert type(client.http) is AsyncIOBackend
                assert await client.trigger("c", "e", {}) == {}
                assert client.http._session is session
            assert not session.closed

    run(main())
    assert len(server.requests) == 1


# -- AsyncIOBackend as backend= of the plain Pusher: like the official one -------------------


def _compare_requests(ours: Recorded, theirs: Recorded) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.signature_ok() and theirs.signature_ok()
    a, b = ours.json(), theirs.json()
    assert a == b or _data_equal(a, b)
    skip = {"auth_signature", "auth_timestamp", "body_md5"}
    qa = {k: v for k, v in ours.query.items() if k not in skip}
    qb = {k: v for k, v in theirs.query.items() if k not in skip}
    assert qa == qb


def _data_equal(a: Any, b: Any) -> bool:
    """Equal up to the JSON spacing of the ``data`` strings (compact vs official's spaced)."""
    if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
        return all(
            json.loads(a[k]) == json.loads(b[k]) if k == "data" else _data_equal(a[k], b[k])
            for k in a
        )
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_data_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.parametrize("ours_backend", [AsyncIOBackend, AsyncHTTPBackend])
def test_backend_option_works_like_the_official_aiohttp_backend(server, ours_backend):
    import pusher
    import pusher.aiohttp

    ours = pusher_fast.Pusher(**server.client_kwargs(), backend=ours_backend)
    assert type(ours.http) is ours_backend
    theirs = pusher.Pusher(**server.client_kwargs(), backend=pusher.aiohttp.AsyncIOBackend)

    def calls(client: Any) -> list[Any]:
        return [
            lambda: client.trigger("c", "e", {"k": [1, 2]}),
            lambda: client.trigger(["a", "b"], "e", "text", socket_id="3.4"),
            lambda: client.trigger_batch([{"channel": "a", "name": "e", "data": {"z": 1}}]),
            lambda: client.channels_info("presence-", ["user_count"]),
            lambda: client.channel_info("presence-a", ["user_count"]),
            lambda: client.users_info("presence-a"),
        ]

    async def main(client: Any) -> tuple[list[Any], Any]:
        # One event loop per client: see test_backend_works_across_event_loops.
        out = []
        for make in calls(client):
            call = make()
            assert inspect.isawaitable(call)
            out.append(await call)
        server.script(Reply(400, b"bad"))
        error = None
        try:
            await client.trigger("c", "e", {})
        except Exception as exc:
            error = exc
        close = getattr(getattr(client, "http", None), "aclose", None)
        if close is not None:
            await close()
        return out, error

    results_ours, error_ours = run(main(ours))
    n = len(server.requests)
    results_theirs, error_theirs = run(main(theirs))
    assert results_ours == results_theirs
    for a, b in zip(server.requests[: n - 1], server.requests[n:]):
        _compare_requests(a, b)
    # ours: one pooled connection; theirs: a new session and connection per call.
    assert server.connections_opened == 1 + n
    assert isinstance(error_theirs, pusher.errors.PusherBadRequest)
    assert isinstance(error_ours, pusher_fast.errors.PusherBadRequest)


@pytest.mark.parametrize("ours_backend", [AsyncIOBackend, AsyncHTTPBackend])
def test_backend_works_across_event_loops(server, ours_backend):
    client = pusher_fast.Pusher(**server.client_kwargs(), backend=ours_backend)
    assert asyncio.run(client.trigger("c", "e", {})) == {}
    assert asyncio.run(client.trigger("c", "e", {})) == {}
    assert len(server.requests) == 2


def _run_in_loop(how: str, coro: Any) -> Any:
    if how == "asyncio.run":
        return asyncio.run(coro)
    loop = asyncio.new_event_loop()  # closed without shutting its async generators down
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.parametrize("how", ["asyncio.run", "bare loop"])
@pytest.mark.parametrize("ours_backend", [AsyncIOBackend, AsyncHTTPBackend])
def test_backend_left_open_across_event_loops_leaks_no_socket(server, ours_backend, how):
    """Never closed, used from three loops in turn, then dropped: every connection is
    closed (by the loop's shutdown, or directly once its loop is closed), none is left
    for the collector to warn about."""
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        client = pusher_fast.Pusher(**server.client_kwargs(), backend=ours_backend)
        for _ in range(3):
            assert _run_in_loop(how, client.trigger("c", "e", {})) == {}
        del client
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    assert len(server.requests) == 3


def test_async_pusher_works_across_event_loops(server, backend):
    client = connect(server, backend)
    assert asyncio.run(client.trigger("c", "e", {})) == {}
    assert (
        asyncio.run(client.channels_info("presence-", ["user_count"]))
        == CANNED["/apps/123456/channels"]
    )
    assert len(server.requests) == 2


def test_where_things_live():
    # AsyncPusher's home is pusher_fast.aio; pusher_fast.aiohttp re-exports it.
    assert pusher_fast.aiohttp.AsyncPusher is AsyncPusher
    assert pusher_fast.aiohttp.AsyncBulkSender is AsyncBulkSender
    assert pusher_fast.aiohttp.default_async_backend is default_async_backend
    assert AsyncPusher.__module__ == AsyncBulkSender.__module__ == "pusher_fast.aio"
    client = AsyncPusher(app_id="1", key="k", secret="s")
    assert type(client.http) is AsyncHTTPBackend
    assert type(client.bulk()) is AsyncBulkSender


def test_official_backend_works_across_event_loops(server):
    import pusher
    import pusher.aiohttp

    client = pusher.Pusher(**server.client_kwargs(), backend=pusher.aiohttp.AsyncIOBackend)
    assert asyncio.run(client.trigger("c", "e", {})) == {}
    assert asyncio.run(client.trigger("c", "e", {})) == {}


# -- AsyncBulkSender -----------------------------------------------------------------------------


def test_async_bulk_groups_and_honours_batch_size(server, backend):
    server.script(Reply(hold=True))

    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            sender = client.bulk(concurrency=1, batch_size=4)
            await sender.add("c", "e", {"seq": 0})
            await wait_until(lambda: len(server.requests) == 1)
            for i in range(1, 11):
                await sender.add("c", "e", {"seq": i})
            server.open_gate()
            return await sender.close()

    report = run(main())
    assert server.batch_sizes() == [1, 4, 4, 2]
    assert [seq_of(e) for e in server.accepted_events()] == list(range(11))
    assert all(r.signature_ok() for r in server.requests)
    assert report.ok and report.requests == 4
    assert_account(report, server, {("c", i) for i in range(11)})


def test_async_bulk_default_batch_is_ten_and_fans_out(server, backend):
    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            async with client.bulk(concurrency=2) as sender:
                for i in range(40):
                    assert await sender.add(["a", "b"], "e", {"seq": i}) == 2
                assert await sender.add("x", "e", {"seq": 0}, channels=["d"]) == 1
            return sender.report

    report = run(main())
    assert max(server.batch_sizes()) <= 10
    assert report.submitted == 81 and report.delivered == 81
    expected = {(c, i) for c in "ab" for i in range(40)} | {("d", 0)}
    assert_account(report, server, expected)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("bad channel", "e", {}), ValueError),
        (("c", "e" * 201, {}), ValueError),
        (("c", "e", "x" * 10241), ValueError),
        (("c", "e", object()), TypeError),
        ((["private-encrypted-a", "b"], "e", {}), ValueError),
    ],
)
def test_async_bulk_validates_at_add(server, backend, args, error):
    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            sender = client.bulk()
            with pytest.raises(error):
                await sender.add(*args)
            assert sender.report.submitted == 0
            await sender.add("c", "e", {"seq": 1})
            return await sender.close()

    report = run(main())
    assert_account(report, server, {("c", 1)})


def test_async_bulk_backpressure(server, backend):
    server.default = Reply(hold=True)

    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            sender = client.bulk(concurrency=1, max_queue=5)
            await sender.add("c", "e", {"seq": 0})
            await wait_until(lambda: len(server.requests) == 1)
            for i in range(1, 6):
                await asyncio.wait_for(sender.add("c", "e", {"seq": i}), 0.5)
            blocked = asyncio.ensure_future(sender.add("c", "e", {"seq": 6}))
            done, _ = await asyncio.wait([blocked], timeout=0.7)
            assert not done, "add() returned although the queue was full"
            server.open_gate()
            await asyncio.wait_for(blocked, 5)
            return await sender.close()

    report = run(main())
    assert report.ok
    assert_account(report, server, {("c", i) for i in range(7)})


def test_async_bulk_exception_inside_async_with_still_flushes(server, backend):
    async def main() -> AsyncBulkSender:
        async with connect(server, backend) as client:
            sender = client.bulk()
            with pytest.raises(KeyError):
                async with sender:
                    for i in range(15):
                        await sender.add("c", "e", {"seq": i})
                    raise KeyError("boom")
            return sender

    sender = run(main())
    assert sender.report.delivered == 15
    assert_account(sender.report, server, {("c", i) for i in range(15)})
    with pytest.raises(RuntimeError):
        run(sender.add("c", "e", {}))


def test_async_bulk_short_shutdown_timeout_reports_the_rest_failed(server, backend):
    server.default = Reply(hold=True)

    async def main() -> tuple[BulkReport, float]:
        async with connect(server, backend, timeout=1) as client:
            sender = client.bulk(concurrency=2, shutdown_timeout=0.3)
            for i in range(50):
                await sender.add("c", "e", {"seq": i})
            await wait_until(lambda: len(server.requests) == 2)
            started = time.monotonic()
            report = await sender.close()
            return report, time.monotonic() - started

    report, took = run(main())
    assert took < 1.0, took
    assert report.delivered == 0 and len(report.failed) == 50
    assert any("in flight" in f.reason for f in report.failed)
    assert any("not sent" in f.reason for f in report.failed)
    assert_account(report, server, {("c", i) for i in range(50)})


def test_async_bulk_retries_and_accounts(server, backend):
    server.script(Reply(500), Reset(), Reply(429, b"", {"Retry-After": "0"}))

    async def main() -> tuple[BulkReport, int]:
        async with connect(server, backend) as client:
            async with client.bulk(concurrency=1, backoff_base=0.01, backoff_max=0.05) as s:
                for i in range(5):
                    await s.add("c", "e", {"seq": i})
            return s.report, stale_resends(client)

    report, resent = run(main())
    # Four requests: the sender's attempts, and any the transport itself sent again (a reset
    # on a reused connection may be resent as a stale keep-alive connection).
    assert len(server.requests) == 4 == report.requests + resent
    assert report.retries == 3 - resent and report.ok
    assert len({r.body for r in server.requests}) == 1  # the same batch each time
    assert_account(report, server, {("c", i) for i in range(5)})


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_async_bulk_never_retries_client_errors(server, backend, status):
    server.default = Reply(status, b"no")

    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            async with client.bulk(concurrency=1) as s:
                for i in range(5):
                    await s.add("c", "e", {"seq": i})
            return s.report

    report = run(main())
    assert len(server.requests) == 1
    assert [f.status for f in report.failed] == [status] * 5
    assert [f.attempts for f in report.failed] == [1] * 5


def test_async_bulk_replay_failed_events(server, backend):
    server.default = Reply(403, b"quota")

    async def main() -> tuple[BulkReport, BulkReport]:
        async with connect(server, backend, encryption_master_key_base64=MASTER_KEY_B64) as client:
            async with client.bulk() as first:
                for i in range(6):
                    channel = "private-encrypted-z" if i % 2 else "z"
                    await first.add(channel, "e", {"seq": i}, socket_id="5.6")
            server.default = Reply()
            async with client.bulk() as again:
                for f in first.report.failed:
                    await again.add(**f.event)
            return first.report, again.report

    first, again = run(main())
    assert len(first.failed) == 6 and again.ok and again.delivered == 6
    got = []
    for ev in server.accepted_events():
        data = ev["data"]
        if ev["channel"].startswith("private-encrypted-"):
            data = decrypt_data(ev["channel"], data)
        got.append((ev["channel"], json.loads(data)["seq"], ev["socket_id"]))
    assert sorted(got) == sorted(
        ("private-encrypted-z" if i % 2 else "z", i, "5.6") for i in range(6)
    )


def test_async_bulk_cancelled_add_keeps_the_account(server, backend):
    server.default = Reply(hold=True)

    async def main() -> BulkReport:
        async with connect(server, backend, timeout=2) as client:
            sender = client.bulk(concurrency=1, max_queue=1)
            await sender.add("c", "e", {"seq": 0})
            await wait_until(lambda: len(server.requests) == 1)
            await sender.add("c", "e", {"seq": 1})
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sender.add("c", "e", {"seq": 2}), 0.3)
            server.open_gate()
            return await sender.close()

    report = run(main())
    assert report.submitted == report.delivered + len(report.failed), report.as_dict()


def test_async_bulk_close_with_a_full_queue_honours_shutdown_timeout(server, backend):
    server.default = Reply(hold=True)

    async def main() -> tuple[bool, BulkReport]:
        async with connect(server, backend, timeout=1) as client:
            sender = client.bulk(concurrency=1, max_queue=5, shutdown_timeout=0.5)
            await sender.add("c", "e", {"seq": 0})
            await wait_until(lambda: len(server.requests) == 1)
            for i in range(1, 6):
                await sender.add("c", "e", {"seq": i})
            task = asyncio.ensure_future(sender.close())
            done, _ = await asyncio.wait([task], timeout=2.5)
            server.open_gate()
            return bool(done), await task

    in_time, report = run(main())
    assert report.submitted == 6 == report.delivered + len(report.failed)
    assert in_time, "close() did not return within shutdown_timeout + 2 s"


@pytest.mark.parametrize("current_loop", ["other", "none"])
def test_async_bulk_sender_made_outside_a_running_loop(server, backend, current_loop):
    # Python 3.9's asyncio.Queue/Semaphore/Event bind to get_event_loop() when constructed:
    # a sender made outside a coroutine must still work in the loop that later runs it.
    client = connect(server, backend)
    other = asyncio.new_event_loop()
    asyncio.set_event_loop(other if current_loop == "other" else None)
    try:
        sender = client.bulk()
    finally:
        asyncio.set_event_loop(None)
        other.close()

    async def main() -> None:
        async with sender:
            await asyncio.sleep(0.05)  # the workers now wait on an empty queue
            for i in range(5):
                await sender.add("c", "e", {"seq": i})
        await client.aclose()

    run(main())
    assert sender.report.delivered == 5, sender.report.as_dict()
    assert_account(sender.report, server, {("c", i) for i in range(5)})


def bulk_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pusher-bulk-")]


def test_async_bulk_sends_from_an_io_thread_on_the_default_transport_only(server, backend):
    async def main() -> tuple[list[str], list[str], BulkReport]:
        async with connect(server, backend) as client:
            sender = client.bulk(concurrency=2)
            before = bulk_threads()  # a sender not used yet holds no thread
            for i in range(25):
                await sender.add("c", "e", {"seq": i})
            during = bulk_threads()
            return before, during, await sender.close()

    before, during, report = run(main())
    assert before == []
    assert during == ([] if backend else ["pusher-bulk-io"])
    assert bulk_threads() == []
    assert report.ok
    assert_account(report, server, {("c", i) for i in range(25)})


def test_async_bulk_unused_sender_closes_clean(server, backend):
    async def main() -> BulkReport:
        async with connect(server, backend) as client:
            async with client.bulk() as sender:
                pass
            return sender.report

    report = run(main())
    assert report.ok and report.submitted == 0 and report.elapsed >= 0
    assert bulk_threads() == [] and server.requests == []


def test_async_bulk_on_failure_is_called_in_the_loop_before_close_returns(server, backend):
    server.default = Reply(403, b"quota")
    calls: list[tuple[int, int]] = []

    async def main() -> tuple[int, int, BulkReport]:
        loop_thread = threading.get_ident()
        async with connect(server, backend) as client:
            sender = client.bulk(
                concurrency=2, on_failure=lambda f: calls.append((threading.get_ident(), 0))
            )
            for i in range(23):
                await sender.add("c", "e", {"seq": i})
            report = await sender.close()
            return loop_thread, len(calls), report

    loop_thread, calls_at_close, report = run(main())
    assert len(report.failed) == 23 == calls_at_close
    assert {ident for ident, _ in calls} == {loop_thread}


def test_async_bulk_add_waiting_for_room_when_closed_is_accounted(server, backend):
    server.default = Reply(hold=True)

    async def main() -> tuple[BulkReport, Any, int]:
        async with connect(server, backend, timeout=2) as client:
            sender = client.bulk(concurrency=1, max_queue=1, shutdown_timeout=0.3)
            await sender.add("c", "e", {"seq": 0})
            await wait_until(lambda: len(server.requests) == 1)
            await sender.add("c", "e", {"seq": 1})
            waiting = asyncio.ensure_future(sender.add("c", "e", {"seq": 2}))
            await asyncio.sleep(0.2)
            assert not waiting.done(), "add() returned although the queue was full"
            report = await sender.close()
            submitted_at_close = report.submitted
            server.open_gate()
            return report, await asyncio.wait_for(waiting, 5), submitted_at_close

    report, added, submitted_at_close = run(main())
    assert added == 1 and submitted_at_close == 3
    assert report.submitted == 3 == report.delivered + len(report.failed), report.as_dict()
    reasons = {int(json.loads(f.event["data"])["seq"]): f.reason for f in report.failed}
    assert reasons[2] == "not sent: the sender was closed while it waited for room"

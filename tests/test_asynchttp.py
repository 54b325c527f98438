"""The asyncio transport (``pusher_fast.transports.aio_sockets``) against local servers.

Servers, all standard library, on 127.0.0.1:

- ``tests.helpers.MiniServer``: records each request and TCP connection (and the most open at
  once) and answers with raw bytes the test writes, over plain TCP or TLS;
- ``tests.faultserver.FaultServer``: resets (RST), closes (FIN) and stalls on cue, counting
  requests and connections;
- ``RawServer`` (below): raw sockets, for what an HTTP server library hides (the exact request
  bytes, when the client closes a connection);
- ``pusher_fast.testing.PusherServer``: the embedded Pusher HTTP API.

The scenarios both socket transports share are in ``test_socket_transports.py``; this file
keeps what only the asyncio one does (the pool limit, event loops, cancellation).

No pytest-asyncio: each test runs its coroutine with ``asyncio.run``.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

import pusher_fast
from pusher_fast.aio import AsyncPusher, default_async_backend
from pusher_fast.aiohttp import AsyncIOBackend
from pusher_fast.errors import (
    PusherTransportError,
)
from pusher_fast.testing import PusherServer
from pusher_fast.transports import AsyncHTTPBackend, HTTPClientBackend
from tests.faultserver import Reply
from tests.helpers import (
    Answer,
    Seen,
    data_of,
    echo,
    http11,
    loopback_client,
)

pytestmark = [pytest.mark.usefixtures("clean_proxy_environment"), pytest.mark.timeout(30)]


def make_client(port: int, **options: Any) -> AsyncPusher:
    options.setdefault("backend", AsyncHTTPBackend)
    return loopback_client(AsyncPusher, port, **options)


def http_of(client: pusher_fast.Pusher) -> AsyncHTTPBackend:
    backend = client.http
    assert type(backend) is AsyncHTTPBackend
    return backend


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll (from a thread, not a coroutine) until ``predicate()``; raise on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.005)


async def async_wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


# -- RawServer -------------------------------------------------------------------------------


def read_request(sock: socket.socket, buf: bytearray) -> Optional[bytes]:
    """One whole request (head and Content-Length body) from ``sock``; None at EOF/reset."""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head_end = buf.index(b"\r\n\r\n") + 4
        length = 0
        for line in bytes(buf[:head_end]).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(buf) < head_end + length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
    except OSError:
        return None
    request = bytes(buf[: head_end + length])
    del buf[: head_end + length]
    return request


class RawServer:
    """Raw sockets on 127.0.0.1: ``handle(sock, server)`` runs in a thread per connection.

    Records every whole request's bytes (``raw``, via :meth:`read`) and when each connection
    was seen closed by the client (``closed_at``, via :meth:`wait_closed`).
    """

    def __init__(self, handle: Callable[[socket.socket, RawServer], None]) -> None:
        self.handle = handle
        self.raw: list[bytes] = []
        self.connections = 0
        self.closed_at: list[float] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self.lock:
                self.connections += 1
                self._socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.handle(sock, self)
        except OSError:
            pass
        finally:
            sock.close()

    def read(self, sock: socket.socket, buf: bytearray) -> Optional[bytes]:
        request = read_request(sock, buf)
        if request is not None:
            with self.lock:
                self.raw.append(request)
        return request

    def wait_closed(self, sock: socket.socket) -> None:
        """Block until the client closes ``sock`` (or the server stops); record when."""
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        if not self._stop.is_set():
            with self.lock:
                self.closed_at.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        self._listener.close()
        with self.lock:
            socks = list(self._socks)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)


def answer_each(sock: socket.socket, server: RawServer) -> None:
    """Keep-alive: answer 200 ``{}`` to every whole request."""
    buf = bytearray()
    while server.read(sock, buf) is not None:
        sock.sendall(http11())


def stall(sock: socket.socket, server: RawServer) -> None:
    """Read the request, never answer, note when the client closes."""
    if server.read(sock, bytearray()) is not None:
        server.wait_closed(sock)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(handle: Callable[[socket.socket, RawServer], None]) -> RawServer:
        server = RawServer(handle)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# -- answers ---------------------------------------------------------------------------------


class TestAnswers:
    def test_request_bytes_are_the_sync_transports(self, raw_server):
        """Same Request, same encoder: byte for byte what HTTPClientBackend sends."""
        server = raw_server(answer_each)
        sync = pusher_fast.Pusher(
            app_id="123456", key="fast-key", secret="fast-secret", host="127.0.0.1",
            port=server.port, ssl=False, timeout=2, backend=HTTPClientBackend,
        )  # fmt: skip
        requests = [
            sync._trigger_request(["a", "b"], "e", {"x": "é", "n": [1, 2]}, "1.2"),
            sync._batch_request([{"channel": "a", "name": "e", "data": {"y": 2}}]),
            sync._channels_info_request("presence-", ["user_count"]),
            sync._channel_info_request("presence-a", ["user_count"]),
            sync._users_info_request("presence-a"),
            sync._terminate_request("u1"),
        ]
        for request in requests:
            assert sync.http.send_request(request) == {}
        backend = AsyncHTTPBackend(sync)

        async def main() -> None:
            for request in requests:
                assert await backend.send_request(request) == {}

        run(main())
        n = len(requests)
        assert len(server.raw) == 2 * n
        for ours, theirs in zip(server.raw[n:], server.raw[:n]):
            assert ours == theirs
        assert server.raw[0].startswith(b"POST /apps/123456/events?")
        assert b"\r\nHost: 127.0.0.1:%d\r\n" % server.port in server.raw[0]
        assert server.raw[2].startswith(b"GET /apps/123456/channels?")
        assert server.connections == 2  # one keep-alive connection each
        assert backend.connections_opened == 1

    def test_one_write_per_request(self, mini):
        client = make_client(mini.port)
        writes: list[int] = []

        class CountingTransport:
            def __init__(self, transport: Any) -> None:
                self.transport = transport

            def write(self, data: bytes) -> None:
                writes.append(len(data))
                self.transport.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.transport, name)

        async def main() -> None:
            await client.trigger("a", "e", "first")
            (conn,) = http_of(client)._idle
            conn.transport = CountingTransport(conn.transport)
            await client.trigger("a", "e", "second")
            await client.channels_info()

        run(main())
        assert len(writes) == 2 and len(mini.requests) == 3
        post = mini.requests[1]
        assert writes[0] > len(post.body) > 0  # head and body together

    def test_options_are_checked(self, mini):
        client = make_client(mini.port)
        for limit in (0, -1, 1.5, True, "3"):
            with pytest.raises(ValueError, match="limit"):
                AsyncHTTPBackend(client, limit=limit)
        with pytest.raises(TypeError, match="retries"):
            AsyncHTTPBackend(client, retries="3")
        with pytest.raises(TypeError, match="at_least_once"):
            AsyncHTTPBackend(client, at_least_once=1)
        assert AsyncHTTPBackend(client, retries=None).limit == 100
        assert AsyncHTTPBackend(client, retries=3).policy.total == 3
        assert make_client(mini.port, limit=7).http.limit == 7


# -- connections -----------------------------------------------------------------------------


class TestConnections:
    def test_sequential_requests_reuse_one_connection(self, mini):
        mini.answer = echo
        client = make_client(mini.port)

        backend = http_of(client)

        async def main() -> list[Any]:
            out = [await client.trigger("a", "e", i) for i in range(20)]
            assert len(backend._idle) == 1  # kept for the next request (closed at shutdown)
            return out

        assert run(main()) == [{"echo": str(i)} for i in range(20)]
        assert len(mini.requests) == 20 and mini.connections == 1
        assert backend.connections_opened == 1 and backend.stale_resends == 0
        assert backend._idle == []  # asyncio.run() closed it as it shut the loop down

    @pytest.mark.parametrize("limit", [100, 5])
    def test_concurrent_requests_stay_within_the_limit(self, mini, limit):
        def slow_echo(seen: Seen) -> Answer:
            time.sleep(0.02)  # let the requests pile up
            return echo(seen)

        mini.answer = slow_echo
        client = make_client(mini.port, limit=limit)
        backend = http_of(client)

        async def main() -> tuple[list[Any], int, list[Any]]:
            first = await asyncio.gather(*(client.trigger("c", "e", i) for i in range(100)))
            opened = backend.connections_opened
            second = await asyncio.gather(*(client.trigger("c", "e", -i) for i in range(100)))
            assert len(backend._idle) == opened and backend._open == opened
            return first, opened, second

        first, opened, second = run(main())
        assert first == [{"echo": str(i)} for i in range(100)]  # each its own answer
        assert second == [{"echo": str(-i)} for i in range(100)]
        assert len(mini.requests) == 200
        assert mini.most_open <= limit, "more connections open at once than the limit"
        assert mini.connections == backend.connections_opened == opened, "round two reused"
        if limit == 5:
            assert opened == 5  # 100 waiting requests: the pool fills up, never beyond
        else:
            assert opened > 5  # really concurrent
        assert backend.stale_resends == 0

    def test_a_waiting_request_is_served_before_later_ones(self, mini):
        gate = threading.Event()

        def answer(seen: Seen) -> Answer:
            if data_of(seen) == "a0":
                gate.wait(2)
            return echo(seen)

        mini.answer = answer
        client = make_client(mini.port, limit=1)

        async def main() -> None:
            async def in_a_loop() -> None:
                for i in range(5):
                    assert await client.trigger("a", "e", f"a{i}") == {"echo": f"a{i}"}

            loop_task = asyncio.ensure_future(in_a_loop())
            await async_wait_until(lambda: len(mini.requests) >= 1)
            waiting = asyncio.ensure_future(client.trigger("b", "e", "b"))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # it waits for the one connection, behind a0 only
            gate.set()
            await asyncio.wait_for(asyncio.gather(loop_task, waiting), 2)

        try:
            run(main())
        finally:
            gate.set()
        assert mini.connections == 1
        assert [data_of(s) for s in mini.requests] == ["a0", "b", "a1", "a2", "a3", "a4"]

    def test_aclose_closes_idle_connections_and_stays_usable(self, mini):
        mini.answer = echo
        client = make_client(mini.port)
        backend = http_of(client)

        async def main() -> None:
            await asyncio.gather(*(client.trigger("a", "e", i) for i in range(10)))
            opened = backend.connections_opened
            assert opened >= 1 and mini.open_now == opened
            await client.aclose()
            assert backend._idle == [] and backend._open == 0
            await async_wait_until(lambda: mini.open_now == 0)  # the server saw them close
            assert await client.trigger("a", "e", "again") == {"echo": "again"}
            assert backend.connections_opened == opened + 1
            async with client:
                assert await client.trigger("a", "e", "with") == {"echo": "with"}
            await async_wait_until(lambda: mini.open_now == 0)

        run(main())
        assert mini.connections == backend.connections_opened

    def test_two_event_loops(self, mini):
        mini.answer = echo
        client = make_client(mini.port)
        backend = http_of(client)

        async def twice(n: int) -> list[Any]:
            return [await client.trigger("a", "e", n), await client.trigger("a", "e", -n)]

        assert asyncio.run(twice(1)) == [{"echo": "1"}, {"echo": "-1"}]
        assert asyncio.run(twice(2)) == [{"echo": "2"}, {"echo": "-2"}]
        assert run(twice(3)) == [{"echo": "3"}, {"echo": "-3"}]
        conns = [seen.conn for seen in mini.requests]
        # A new loop starts a new pool: its own connection, reused within the loop.
        assert conns[0] == conns[1] != conns[2] == conns[3] != conns[4] == conns[5]
        assert backend.connections_opened == mini.connections == 3
        assert backend.stale_resends == 0

    def test_a_new_event_loop_closes_the_old_loops_connections(self, mini):
        client = make_client(mini.port)
        for _ in range(3):
            assert asyncio.run(client.trigger("a", "e", "d")) == {}
        assert mini.connections == 3
        # Each later loop dropped the pool of the one before: only the last connection is open.
        wait_until(lambda: mini.open_now <= 1, 1.0)


# -- stale keep-alive connections ------------------------------------------------------------


# -- no answer -------------------------------------------------------------------------------


class TestNoAnswer:
    def test_a_stalled_server_times_out_and_the_connection_is_closed(self, raw_server):
        server = raw_server(stall)
        client = make_client(server.port, timeout=0.5, limit=1)
        backend = http_of(client)

        async def main() -> float:
            started = time.monotonic()
            with pytest.raises(PusherTransportError, match="timed out"):
                await client.trigger("a", "e", "d")
            return time.monotonic() - started

        took = run(main())
        assert 0.4 < took < 1.5, took
        wait_until(lambda: len(server.closed_at) == 1, 1.0)  # the client closed it
        assert len(server.raw) == 1 and server.connections == 1
        assert backend._idle == [] and backend._open == 0  # its pool slot is free again
        assert backend.stale_resends == 0

    def test_a_timeout_frees_the_pool_slot(self, faults):
        faults.script(Reply(delay=1.0))
        client = make_client(faults.port, timeout=0.3, limit=1)

        async def main() -> None:
            with pytest.raises(PusherTransportError, match="timed out"):
                await client.trigger("c", "e", 1)
            assert await asyncio.wait_for(client.trigger("c", "e", 2), 1.0) == {}

        run(main())
        assert len(faults.requests) == 2 and faults.requests[0].conn != faults.requests[1].conn

    def test_bytes_after_the_answer_drop_the_connection(self, mini):
        mini.always(http11() + b"HTTP/1.1 200 OK\r\n")
        client = make_client(mini.port)

        async def main() -> list[Any]:
            return [await client.trigger("a", "e", "d"), await client.trigger("a", "e", "d")]

        assert run(main()) == [{}, {}]  # the answers stand, their connections go
        assert mini.connections == 2
        assert http_of(client).stale_resends == 0


# -- cancellation ----------------------------------------------------------------------------


class TestCancellation:
    def test_cancelling_a_request_closes_its_connection(self, mini):
        gate = threading.Event()

        def answer(seen: Seen) -> Answer:
            if data_of(seen) == "first":
                gate.wait(2)
                return Answer(http11(200, b'{"stale": "the first answer"}'))
            return echo(seen)

        mini.answer = answer
        client = make_client(mini.port, limit=1)
        backend = http_of(client)

        async def main() -> Any:
            task = asyncio.ensure_future(client.trigger("a", "e", "first"))
            await async_wait_until(lambda: len(mini.requests) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert backend._idle == [] and backend._open == 0
            gate.set()  # the first answer is written now, to a connection the client closed
            await asyncio.sleep(0.05)
            second = await asyncio.wait_for(client.trigger("a", "e", "second"), 1.0)
            await async_wait_until(lambda: mini.open_now == 1)  # the server saw it closed
            return second

        try:
            assert run(main()) == {"echo": "second"}
        finally:
            gate.set()
        first, second = mini.requests
        assert first.conn != second.conn
        assert backend.connections_opened == mini.connections == 2

    def test_cancelling_a_request_waiting_for_a_connection(self, mini):
        gate = threading.Event()

        def answer(seen: Seen) -> Answer:
            if data_of(seen) == "held":
                gate.wait(2)
            return echo(seen)

        mini.answer = answer
        client = make_client(mini.port, limit=1)
        backend = http_of(client)

        async def main() -> list[Any]:
            held = asyncio.ensure_future(client.trigger("a", "e", "held"))
            await async_wait_until(lambda: len(mini.requests) == 1)
            waiting = asyncio.ensure_future(client.trigger("a", "e", "cancelled"))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # no free connection: it waits
            waiting.cancel()
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            after = asyncio.ensure_future(client.trigger("a", "e", "after"))
            return [await asyncio.wait_for(held, 1.0), await asyncio.wait_for(after, 1.0)]

        try:
            assert run(main()) == [{"echo": "held"}, {"echo": "after"}]
        finally:
            gate.set()
        assert [data_of(s) for s in mini.requests] == ["held", "after"]
        assert mini.connections == 1 and backend.connections_opened == 1


# -- HTTPS -----------------------------------------------------------------------------------


class TestHTTPS:
    def test_server_closing_after_each_answer(self, tls_server, certificates):
        # Over TLS too: a close racing the next request (written before the close was seen)
        # is ambiguous and retried under at_least_once; each request is received once.
        tls_server.always(http11(), close=True)
        client = make_client(
            tls_server.port, ssl=True, ca_certs=str(certificates.ca), retries=3, at_least_once=True
        )

        async def main() -> list[Any]:
            return [await client.trigger("a", "e", str(i)) for i in range(10)]

        assert run(main()) == [{}] * 10
        assert [data_of(s) for s in tls_server.requests] == [str(i) for i in range(10)]
        backend = http_of(client)
        assert tls_server.connections == backend.connections_opened
        assert 10 <= backend.connections_opened <= 13

    @pytest.mark.parametrize("backend", [AsyncHTTPBackend, AsyncIOBackend])
    def test_left_open_across_bare_event_loops_leaks_no_socket(
        self, tls_server, certificates, backend
    ):
        # A TLS connection whose loop was closed (without shutting it down) is closed
        # directly when the client is used from the next loop, and when it is dropped.
        tls_server.always(http11())
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            client = make_client(
                tls_server.port, ssl=True, ca_certs=str(certificates.ca), backend=backend
            )
            for i in range(3):
                loop = asyncio.new_event_loop()
                try:
                    assert loop.run_until_complete(client.trigger("a", "e", str(i))) == {}
                finally:
                    loop.close()
            del client
            gc.collect()
        leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaks == []
        assert tls_server.connections == 3


# -- which transport -------------------------------------------------------------------------


def _async_pusher(**options: Any) -> AsyncPusher:
    return AsyncPusher(app_id="1", key="k", secret="s", **options)


class TestDefaultAsyncBackend:
    def test_plain_options_get_the_asyncio_transport(self):
        assert type(_async_pusher().http) is AsyncHTTPBackend
        assert type(_async_pusher(ssl=True, host="api-eu.pusher.com").http) is AsyncHTTPBackend
        client = _async_pusher(backend=None)  # Pusher's own default: not this one
        for options in ({}, {"limit": 3}, {"session": None}, {"ca_certs": None}):
            backend = default_async_backend(client, **options)
            assert type(backend) is AsyncHTTPBackend, options
        assert default_async_backend(client, limit=3).limit == 3

    @pytest.mark.parametrize(
        ("ssl_on", "variable"),
        [(False, "http_proxy"), (True, "https_proxy"), (True, "HTTPS_PROXY")],
    )
    def test_a_proxy_gets_the_aiohttp_transport_with_trust_env(self, monkeypatch, ssl_on, variable):
        monkeypatch.setenv(variable, "http://127.0.0.1:3128")
        client = _async_pusher(ssl=ssl_on, host="api-eu.pusher.com", limit=4)
        backend = client.http
        assert type(backend) is AsyncIOBackend
        assert backend._trust_env is True  # aiohttp then reads the proxy from the environment
        assert backend._limit == 4
        assert backend._session is None  # nothing connected yet

    def test_a_proxy_for_the_other_scheme_does_not_apply(self, monkeypatch):
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
        assert type(_async_pusher(ssl=True, host="api-eu.pusher.com").http) is AsyncHTTPBackend

    @pytest.mark.parametrize("no_proxy", ["localhost,api-eu.pusher.com", ".pusher.com", "*"])
    def test_no_proxy_bypasses_the_proxy(self, monkeypatch, no_proxy):
        monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
        monkeypatch.setenv("no_proxy", no_proxy)
        assert type(_async_pusher(ssl=True, host="api-eu.pusher.com").http) is AsyncHTTPBackend

    def test_no_proxy_for_another_host_does_not_bypass(self, monkeypatch):
        monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
        monkeypatch.setenv("no_proxy", "localhost,example.com")
        assert type(_async_pusher(ssl=True, host="api-eu.pusher.com").http) is AsyncIOBackend

    def test_a_session_gets_the_aiohttp_transport(self):
        import aiohttp

        async def main() -> None:
            async with aiohttp.ClientSession() as session:
                client = _async_pusher(session=session)
                assert type(client.http) is AsyncIOBackend
                assert client.http._session is session
                assert client.http._trust_env is True

        run(main())

    def test_an_explicit_backend_wins(self, monkeypatch):
        explicit = _async_pusher(backend=AsyncIOBackend).http
        assert type(explicit) is AsyncIOBackend
        assert explicit._trust_env is False  # off unless asked for
        monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
        client = _async_pusher(ssl=True, host="api-eu.pusher.com", backend=AsyncHTTPBackend)
        assert type(client.http) is AsyncHTTPBackend


# -- the embedded testing server -------------------------------------------------------------


def test_default_transport_against_the_testing_server():
    with PusherServer() as server:

        async def main() -> tuple[Any, AsyncHTTPBackend]:
            async with AsyncPusher(**server.client_kwargs()) as client:
                backend = http_of(client)
                assert await client.trigger(["orders", "audit"], "created", {"id": 1}) == {}
                batch = [
                    {"channel": "orders", "name": "updated", "data": {"id": 2}},
                    {"channel": "audit", "name": "updated", "data": "text"},
                ]
                assert await client.trigger_batch(batch) == {}
                server.add_subscriber("orders", 2)
                server.add_member("presence-room", "u1")
                assert await client.channels_info() == {
                    "channels": {"orders": {}, "presence-room": {}}
                }
                assert await client.channels_info("presence-", ["user_count"]) == {
                    "channels": {"presence-room": {"user_count": 1}}
                }
                async with client.bulk(concurrency=8) as sender:
                    for i in range(1000):
                        await sender.add("bulk", "e", {"seq": i})
                return sender.report, backend

        report, backend = run(main())
        orders = server.events_for("orders")
        assert [(e.name, e.json()) for e in orders] == [
            ("created", {"id": 1}),
            ("updated", {"id": 2}),
        ]
        assert [e.data for e in server.events_for("audit", "updated")] == ["text"]
        bulk = server.events_for("bulk")
        requests = server.requests
    assert report.submitted == report.delivered == 1000 and report.ok, report.as_dict()
    assert report.failed == [] and report.retries == 0
    batches = [r for r in requests if r.path.endswith("/batch_events")]
    assert report.requests == len(batches) - 1 >= 100  # batches of at most 10; one was ours
    assert len(bulk) == 1000
    assert sorted(e.json()["seq"] for e in bulk) == list(range(1000))
    assert all(r.status == 200 for r in requests), [r for r in requests if r.status != 200]
    # The client's connection, and the bulk sender's (its I/O thread's: at most concurrency).
    assert backend.connections_opened <= 1 + 8

"""The default sync transport (``pusher_fast.transports.sockets``) against local servers.

Two servers, both standard library, on 127.0.0.1:

- ``tests.helpers.MiniServer``: records each request and TCP connection and answers with raw
  bytes the test writes, so the framing is the test's choice (Content-Length, chunked, HTTP/1.0,
  no length, ``Connection: close``, a cut answer), over plain TCP or TLS;
- ``tests.faultserver.FaultServer``: resets (RST), closes (FIN) and stalls on cue.

The scenarios both socket transports share are in ``test_socket_transports.py``; this file
keeps what only the sync one does (threads, fork, one ``sendall``, early answers).

The last test runs ``tests/test_transport.py`` and ``tests/test_faults.py`` in a subprocess with
``default_backend`` as the client's transport, to show both transports pass the same suites.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

import pusher_fast
from pusher_fast.errors import (
    PusherBadStatus,
    PusherTransportError,
)
from pusher_fast.transports import HTTPClientBackend, Urllib3Backend, default_backend
from pusher_fast.transports import base as transport_base
from tests.faultserver import Reply
from tests.helpers import (
    Seen,
    http11,
    loopback_client,
)

pytestmark = [pytest.mark.usefixtures("clean_proxy_environment"), pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[1]


# -- answers, as raw bytes ------------------------------------------------------------------


def make_client(port: int, backend: Any = HTTPClientBackend, **options: Any) -> pusher_fast.Pusher:
    return loopback_client(pusher_fast.Pusher, port, backend=backend, **options)


def http_of(client: pusher_fast.Pusher) -> HTTPClientBackend:
    backend = client.http
    assert isinstance(backend, HTTPClientBackend)
    return backend


# -- answers --------------------------------------------------------------------------------


class TestAnswers:
    def test_get_requests(self, mini):
        mini.always(http11(200, b'{"channels":{}}'))
        client = make_client(mini.port)
        assert client.channels_info("presence-a=b@c,d;", ["user_count"]) == {"channels": {}}
        (seen,) = mini.requests
        assert seen.method == "GET" and seen.body == b""
        assert "filter_by_prefix=presence-a=b@c,d;" in seen.target

    def test_request_head_matches_the_urllib3_transport(self, mini):
        for backend in (HTTPClientBackend, Urllib3Backend):
            client = make_client(mini.port, backend=backend)
            client.trigger("a", "e", "d")
            client.channels_info()
        fast_post, fast_get, u3_post, u3_get = mini.requests

        def names(seen: Seen) -> dict[str, str]:
            return {k.lower(): v for k, v in seen.headers.items() if k.lower() != "user-agent"}

        assert names(fast_post) == names(u3_post)
        assert names(fast_get) == names(u3_get)
        assert names(fast_post)["content-type"] == "application/json"
        assert names(fast_post)["x-pusher-library"].startswith("pusher-fast-python")
        assert names(fast_post)["host"] == f"127.0.0.1:{mini.port}"
        assert int(names(fast_post)["content-length"]) == len(fast_post.body)
        assert fast_post.headers["User-Agent"].startswith("pusher-fast-python/")

    def test_request_body_larger_than_64_kb(self, mini):
        client = make_client(mini.port, max_payload_kb=200)
        data = "x" * 150_000
        assert client.trigger("a", "e", data) == {}
        assert json.loads(mini.requests[0].body)["data"] == data


# -- connections ----------------------------------------------------------------------------


class CountingSocket:
    """Stands in for a pooled connection's socket, counting ``sendall`` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sendalls: list[int] = []

    def sendall(self, data: bytes) -> None:
        self.sendalls.append(len(data))
        self.sock.sendall(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)  # recv, fileno, close: the real socket's


class TestConnections:
    def test_requests_reuse_one_connection(self, mini):
        client = make_client(mini.port)
        for i in range(20):
            client.trigger("a", "e", str(i))
        client.channels_info()
        assert len(mini.requests) == 21 and mini.connections == 1
        backend = http_of(client)
        assert backend.connections_opened == 1 and backend.stale_resends == 0

    def test_one_sendall_per_request_and_tcp_nodelay(self, mini):
        client = make_client(mini.port)
        client.trigger("a", "e", "first")
        (conn,) = http_of(client)._idle
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        counting = CountingSocket(conn.sock)
        conn.sock = counting  # type: ignore[assignment]
        client.trigger("a", "e", "second")
        client.channels_info()
        assert len(counting.sendalls) == 2
        post = mini.requests[1]
        assert counting.sendalls[0] > len(post.body) > 0  # head and body together

    @pytest.mark.parametrize("maxsize", [10, 2])
    def test_shared_client_across_threads(self, mini, maxsize):
        client = make_client(mini.port, maxsize=maxsize)
        barrier = threading.Barrier(8)
        results: list[Any] = []
        errors: list[BaseException] = []

        def work(n: int) -> None:
            barrier.wait()
            for i in range(50):
                try:
                    results.append(client.trigger(f"c{n}", "e", {"n": n, "i": i}))
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and results == [{}] * 400
        assert len(mini.requests) == 400
        bodies = [json.loads(r.body) for r in mini.requests]
        assert len({(b["channels"][0], b["data"]) for b in bodies}) == 400
        backend = http_of(client)
        assert mini.connections == backend.connections_opened
        assert backend.stale_resends == 0
        assert len(backend._idle) <= maxsize  # extras closed on return
        if maxsize >= 8:
            assert mini.connections <= 8  # one per thread at most, all kept
        else:
            # Busy threads open extra connections, closed when they come back (as urllib3's
            # non-blocking pool does): never more open at once than maxsize + threads.
            assert mini.most_open <= maxsize + 8

    def test_close_closes_idle_connections_and_stays_usable(self, mini):
        client = make_client(mini.port)
        client.trigger("a", "e", "d")
        backend = http_of(client)
        (conn,) = backend._idle
        backend.close()
        assert backend._idle == [] and conn.sock.fileno() == -1
        client.trigger("a", "e", "d")
        assert mini.connections == 2

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_forked_child_does_not_share_the_parents_connections(self, mini):
        client = make_client(mini.port)
        client.trigger("a", "e", "parent-1")
        pid = os.fork()
        if pid == 0:  # the child: exit at once, whatever happens
            code = 3
            try:
                inherited = len(http_of(client)._idle)
                code = 0 if inherited == 0 and client.trigger("a", "e", "child") == {} else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        client.trigger("a", "e", "parent-2")
        first, child, second = mini.requests
        assert json.loads(child.body)["data"] == "child"
        assert first.conn == second.conn != child.conn


# -- stale keep-alive connections -----------------------------------------------------------


# -- early answers -------------------------------------------------------------------------


class EarlyAnswerServer:
    """Raw sockets: answers 200 to a request it reads whole, and to a request whose body is
    over ``limit`` bytes a 413 as soon as it has the head, then closes without reading the body
    (the kernel resets the connection: the client's sendall fails, the 413 is already there)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.lengths: list[int] = []  # Content-Length of each request, in arrival order
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                self.lengths.append(length)
                if length > self.limit:
                    conn.sendall(http11(413, b"too big!", {"Connection": "close"}))
                    time.sleep(0.05)
                    return  # closed with the body unread: a reset
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                conn.sendall(http11())

    def stop(self) -> None:
        self._listener.close()


class TestEarlyAnswers:
    @pytest.fixture
    def early(self) -> Iterator[EarlyAnswerServer]:
        server = EarlyAnswerServer()
        try:
            yield server
        finally:
            server.stop()

    def test_an_answer_sent_before_the_body_was_read_is_returned(self, early):
        client = make_client(early.port, max_payload_kb=20_000)
        with pytest.raises(PusherBadStatus, match="too big") as info:
            client.trigger("a", "e", "x" * 5_000_000)
        assert info.value.status == 413
        assert len(early.lengths) == 1

    def test_an_early_answer_on_a_reused_connection_is_not_resent(self, early):
        client = make_client(early.port, max_payload_kb=20_000)
        assert client.trigger("a", "e", "small") == {}
        with pytest.raises(PusherBadStatus, match="too big"):
            client.trigger("a", "e", "x" * 5_000_000)
        assert len(early.lengths) == 2 and early.connections == 1
        assert http_of(client).stale_resends == 0
        assert client.trigger("a", "e", "small again") == {}  # on a new connection
        assert early.connections == 2


# -- no answer ------------------------------------------------------------------------------


class TestNoAnswer:
    def test_read_timeout(self, faults):
        faults.default = Reply(delay=2.5)
        client = make_client(faults.port, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(PusherTransportError, match="timed out"):
            client.trigger("a", "e", "d")
        assert 0.4 < time.monotonic() - started < 1.5


# -- HTTPS ----------------------------------------------------------------------------------


class TestHTTPS:
    def test_system_store_is_the_default(self):
        context = transport_base.make_ssl_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        stats = context.cert_store_stats()
        assert stats["x509_ca"] == ssl.create_default_context().cert_store_stats()["x509_ca"]


# -- which transport ------------------------------------------------------------------------


def _pusher(**options: Any) -> pusher_fast.Pusher:
    options.setdefault("backend", default_backend)
    return pusher_fast.Pusher(app_id="1", key="k", secret="s", **options)


class TestDefaultBackend:
    def test_plain_options_get_the_http_client_backend(self):
        for options in ({}, {"retries": None}, {"retries": 0}, {"retries": False},
                        {"retries": 2}, {"retries": True}, {"retries": urllib3.Retry(1)},
                        {"retries": 2, "at_least_once": True},
                        {"maxsize": 3, "ca_certs": None}):  # fmt: skip
            backend = default_backend(_pusher(backend=None), **options)
            assert type(backend) is HTTPClientBackend, options

    @pytest.mark.parametrize(
        "options",
        [{"pool_manager": urllib3.PoolManager()}],
        ids=["pool_manager"],
    )  # fmt: skip
    def test_urllib3_features_get_the_urllib3_backend(self, options):
        backend = default_backend(_pusher(backend=None), **options)
        assert type(backend) is Urllib3Backend
        if "pool_manager" in options:
            assert backend.pool_manager is options["pool_manager"]

    @pytest.mark.parametrize("retries", ["3", -1, 1.5])
    def test_invalid_retries_is_a_type_error(self, retries):
        with pytest.raises(TypeError):
            _pusher(retries=retries)

    @pytest.mark.parametrize("ssl_on, variable", [(False, "http_proxy"), (True, "https_proxy")])
    def test_a_proxy_gets_the_urllib3_backend(self, monkeypatch, ssl_on, variable):
        monkeypatch.setenv(variable, "http://127.0.0.1:3128")
        client = _pusher(ssl=ssl_on, host="api-eu.pusher.com")
        assert type(client.http) is Urllib3Backend
        assert client.http._proxied

    def test_a_proxy_for_the_other_scheme_does_not_apply(self, monkeypatch):
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
        assert type(_pusher(ssl=True, host="api-eu.pusher.com").http) is HTTPClientBackend

    def test_no_proxy_bypasses_the_proxy(self, monkeypatch):
        monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
        monkeypatch.setenv("no_proxy", "localhost,api-eu.pusher.com")
        assert type(_pusher(ssl=True, host="api-eu.pusher.com").http) is HTTPClientBackend

    def test_http_client_backend_refuses_urllib3_options(self):
        client = _pusher(backend=None)
        with pytest.raises(TypeError, match="block"):
            HTTPClientBackend(client, block=True)
        with pytest.raises(TypeError, match="retries"):
            HTTPClientBackend(client, retries="3")
        with pytest.raises(ValueError, match="maxsize"):
            HTTPClientBackend(client, maxsize=0)


# -- the bulk sender on this transport ------------------------------------------------------


def test_bulk_sender_honours_retry_after_through_send_raw(faults):
    faults.script(Reply(429, b"slow down", {"Retry-After": "0.3"}))
    client = make_client(faults.port)
    with client.bulk(concurrency=2, retries=2, backoff_base=0.01, backoff_max=5.0) as sender:
        for i in range(25):
            sender.add("c", "e", {"seq": i})
    report = sender.report
    assert report.ok and report.delivered == 25, report.as_dict()
    first, second = faults.requests[0], faults.requests[1:]
    retried = [r for r in second if r.body == first.body]
    assert retried and retried[0].t - first.t >= 0.28
    assert sorted(json.loads(e["data"])["seq"] for e in faults.accepted_events()) == list(range(25))


# -- parity: the transport and fault suites, on this transport ------------------------------

PARITY_BOOT = """
import sys
import pytest
import pusher_fast
import pusher_fast.client as client_module
from pusher_fast.transports import HTTPClientBackend, default_backend

# Until Pusher picks default_backend by itself, put it where Pusher looks for its transport.
if getattr(client_module, "default_backend", None) is not default_backend:
    client_module.Urllib3Backend = default_backend
probe = pusher_fast.Pusher(app_id="1", key="k", secret="s", host="127.0.0.1", port=9, ssl=False)
assert type(probe.http) is HTTPClientBackend, type(probe.http)
sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.timeout(600)
def test_transport_and_fault_suites_pass_on_this_transport():
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", PARITY_BOOT, "-q", "-p", "no:cacheprovider", "-rfEX",
         "tests/test_transport.py", "tests/test_faults.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=580,
    )  # fmt: skip
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail

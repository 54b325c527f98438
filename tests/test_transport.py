"""The default transport (urllib3, keep-alive) against a tiny local HTTP/1.1 server.

The server runs in-thread on 127.0.0.1 (port 0), counts the TCP connections it
accepts, records every request, checks each one's signature and body_md5 over
the bytes it actually received (answering 401 when they do not match), and
answers from a script.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pusher.requests
import pytest
import urllib3

import pusher_fast
from pusher_fast.errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherError,
    PusherForbidden,
    PusherTransportError,
)
from tests.helpers import APP_ID, KEY, SECRET, hmac_hex

pytestmark = pytest.mark.usefixtures("clean_proxy_environment")


class Recorded:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def signature_problem(request: Recorded) -> str | None:
    """What is wrong with a received request's signature, as the API would see it."""
    params = dict(urllib.parse.parse_qsl(request.query, keep_blank_values=True))
    signature = params.pop("auth_signature", None)
    if params.get("auth_key") != KEY:
        return "unknown auth_key"
    if params.get("body_md5") != hashlib.md5(request.body).hexdigest():
        return "body_md5 does not match the body"
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    if signature != hmac_hex(SECRET, f"{request.method}\n{request.path}\n{query}"):
        return "Invalid signature"
    return None


class PusherLikeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[Recorded] = []
        self.script: deque[tuple[int, bytes, float]] = deque()
        self.default = (200, b"{}", 0.0)
        #: None: keep connections open; "announced": answer with "Connection: close";
        #: a float: close silently that many seconds after each answer (as soketi does).
        self.close_after: str | float | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def then(self, status: int, body: Any = None, delay: float = 0.0) -> PusherLikeServer:
        payload = body if isinstance(body, bytes) else json.dumps({} if body is None else body)
        self.script.append(
            (status, payload if isinstance(payload, bytes) else payload.encode(), delay)
        )
        return self

    def process_request(self, request, client_address):
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout test) is expected


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def _answer(self):
        server: PusherLikeServer = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
        with server.lock:
            server.requests.append(recorded)
            status, payload, delay = server.script.popleft() if server.script else server.default
        problem = signature_problem(recorded)
        if problem:
            status, payload, delay = 401, problem.encode(), 0.0
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if server.close_after == "announced":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        if isinstance(server.close_after, float):
            time.sleep(server.close_after)
            self.close_connection = True


@pytest.fixture
def server():
    srv = PusherLikeServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def client_for(server: PusherLikeServer, **options: Any) -> pusher_fast.Pusher:
    return pusher_fast.Pusher(
        app_id=APP_ID,
        key=KEY,
        secret=SECRET,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
        **options,
    )


class TestRoundTrip:
    def test_trigger_returns_the_parsed_json(self, server):
        server.then(200, {"channels": {"a": {"subscription_count": 3}}})
        client = client_for(server)
        result = client.trigger("a", "e", {"x": "é"}, info=["subscription_count"])
        assert result == {"channels": {"a": {"subscription_count": 3}}}
        (request,) = server.requests
        assert (request.method, request.path) == ("POST", "/apps/3/events")
        assert request.json()["channels"] == ["a"]
        assert json.loads(request.json()["data"]) == {"x": "é"}

    def test_202_is_a_success(self, server):
        server.then(202, {"ok": True})
        assert client_for(server).trigger("a", "e", "d") == {"ok": True}

    def test_post_headers(self, server):
        client_for(server).trigger("a", "e", "d")
        headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
        assert headers["content-type"] == "application/json"
        assert headers["x-pusher-library"].startswith("pusher-fast-python")
        assert int(headers["content-length"]) == len(server.requests[0].body)

    def test_get_query_and_path_arrive_unescaped_and_verify(self, server):
        server.then(200, {"channels": {}})
        client = client_for(server)
        assert client.channels_info("presence-a=b@c,d;", ["user_count"]) == {"channels": {}}
        client.channel_info("presence-x@y,z;w=v", ["user_count"])
        client.users_info("presence-x")
        first, second, third = server.requests
        assert first.method == "GET" and first.body == b""
        assert "filter_by_prefix=presence-a=b@c,d;" in first.query
        assert second.path == "/apps/3/channels/presence-x@y,z;w=v"
        assert third.path == "/apps/3/channels/presence-x/users"

    def test_every_method_is_accepted_by_a_verifying_server(self, server):
        client = client_for(server, encryption_master_key_base64="A" * 43 + "=")
        client.trigger(["a", "b"], "e", {"n": 1}, socket_id="1.2")
        client.trigger("private-encrypted-a", "e", {"n": 1})
        client.trigger_batch([{"channel": "a", "name": "e", "data": {"n": i}} for i in range(3)])
        client.channels_info()
        client.send_to_user("u1", "e", "d")
        client.terminate_user_connections("u1")
        paths = [r.path for r in server.requests]
        assert paths == [
            "/apps/3/events",
            "/apps/3/events",
            "/apps/3/batch_events",
            "/apps/3/channels",
            "/apps/3/events",
            "/apps/3/users/u1/terminate_connections",
        ]


class TestErrors:
    @pytest.mark.parametrize(
        "status, error",
        [
            (400, PusherBadRequest),
            (401, PusherBadAuth),
            (403, PusherForbidden),
            (413, PusherBadStatus),
            (429, PusherBadStatus),
            (500, PusherBadStatus),
        ],
    )
    def test_status_maps_to_the_official_error(self, server, status, error):
        server.then(status, b"nope: the reason")
        with pytest.raises(error) as info:
            client_for(server).trigger("a", "e", "d")
        assert isinstance(info.value, PusherError)
        assert "the reason" in str(info.value)
        if error is PusherBadStatus:
            assert info.value.status == status
            assert str(status) in str(info.value)

    def test_bad_signature_is_bad_auth(self, server):
        client = pusher_fast.Pusher(
            app_id=APP_ID, key=KEY, secret="wrong", host="127.0.0.1", port=server.port, ssl=False
        )
        with pytest.raises(PusherBadAuth, match="Invalid signature"):
            client.trigger("a", "e", "d")

    def test_connection_refused_is_a_transport_error(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = pusher_fast.Pusher(
            app_id=APP_ID, key=KEY, secret=SECRET, host="127.0.0.1", port=port, ssl=False, timeout=2
        )
        started = time.monotonic()
        with pytest.raises(PusherTransportError) as info:
            client.trigger("a", "e", "d")
        assert time.monotonic() - started < 1.5
        assert f"127.0.0.1:{port}" in str(info.value)

    def test_timeout_is_honoured(self, server):
        server.then(200, {}, delay=2.5)
        client = client_for(server, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(PusherTransportError):
            client.trigger("a", "e", "d")
        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 1.5


class TestConnections:
    def test_requests_reuse_one_connection(self, server):
        client = client_for(server)
        for i in range(20):
            client.trigger("a", "e", str(i))
        client.channels_info()
        assert len(server.requests) == 21
        assert server.connections == 1

    def test_connection_survives_error_answers(self, server):
        server.then(400, b"bad").then(500, b"oops")
        client = client_for(server)
        for _ in range(2):
            with pytest.raises(PusherError):
                client.trigger("a", "e", "d")
        client.trigger("a", "e", "d")
        assert server.connections == 1

    def test_server_announcing_close_gets_a_new_connection_each_time(self, server):
        server.close_after = "announced"
        client = client_for(server)
        for i in range(10):
            client.trigger("a", "e", str(i))
        assert server.connections == 10

    def test_server_closing_silently_after_each_answer(self, server):
        # The close may race the next request (written before it was seen): that request
        # may have been processed, so only at_least_once retries it.
        server.close_after = 0.02
        client = client_for(server, retries=3, at_least_once=True)
        for i in range(10):
            client.trigger("a", "e", str(i))
        assert len(server.requests) == 10

    def test_shared_client_across_threads(self, server):
        client = client_for(server)
        errors: list[BaseException] = []
        results: list[Any] = []
        barrier = threading.Barrier(8)

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
        assert errors == []
        assert results == [{}] * 400
        assert len(server.requests) == 400
        assert server.connections <= 8
        seen = {
            (r.json()["channels"][0], json.loads(r.json()["data"])["i"]) for r in server.requests
        }
        assert len(seen) == 400

    def test_injected_pool_manager_is_used(self, server):
        pool = urllib3.PoolManager(maxsize=1)
        client = client_for(server, pool_manager=pool)
        client.trigger("a", "e", "d")
        assert client.http.pool_manager is pool
        assert len(server.requests) == 1


class TestRetries:
    def test_retries_retry_a_503_then_succeed(self, server):
        server.then(503, b"busy").then(200, {"ok": 1})
        assert client_for(server, retries=2).trigger("a", "e", "d") == {"ok": 1}
        assert len(server.requests) == 2
        assert server.requests[0].body == server.requests[1].body

    def test_without_retries_a_503_is_raised_at_once(self, server):
        server.then(503, b"busy").then(200, {"ok": 1})
        with pytest.raises(PusherBadStatus) as info:
            client_for(server).trigger("a", "e", "d")
        assert info.value.status == 503
        assert len(server.requests) == 1

    def test_retries_give_up_with_the_last_answer(self, server):
        for _ in range(4):
            server.then(503, b"still busy")
        with pytest.raises(PusherBadStatus, match="still busy") as info:
            client_for(server, retries=2).trigger("a", "e", "d")
        assert info.value.status == 503
        assert len(server.requests) == 3

    @pytest.mark.parametrize("retries", ["3", -1, 1.5])
    def test_invalid_retries_is_a_type_error(self, server, retries):
        with pytest.raises(TypeError):
            client_for(server, retries=retries)

    def test_client_errors_are_not_retried(self, server):
        server.then(400, b"bad").then(200, {})
        with pytest.raises(PusherBadRequest):
            client_for(server, retries=3).trigger("a", "e", "d")
        assert len(server.requests) == 1


class ForwardingBackend:
    """A user's backend written against the official Request attributes only."""

    def __init__(self, client: Any, **options: Any) -> None:
        self.client = client
        self.options = options
        self.seen: list[Any] = []
        self.http = urllib3.PoolManager()

    def send_request(self, request: Any) -> Any:
        self.seen.append(request)
        response = self.http.request(
            request.method,
            request.url,
            body=request.body,
            headers=request.headers,
            timeout=self.client.timeout,
            retries=False,
        )
        return {"status": response.status, "json": json.loads(response.data)}


class TestCustomBackends:
    def test_custom_backend_receives_the_request(self, server):
        client = client_for(server, backend=ForwardingBackend, flag="on")
        backend = client.http
        assert isinstance(backend, ForwardingBackend)
        assert backend.options == {"flag": "on"}
        result = client.trigger("a", "e", "d")
        assert result == {"status": 200, "json": {}}
        (request,) = backend.seen
        assert request.url == f"http://127.0.0.1:{server.port}/apps/3/events?{request.query_string}"
        assert server.requests[0].body == request.body

    def test_official_requests_backend_works_with_our_requests(self, server):
        server.then(200, {"official": "backend"})
        client = client_for(server, backend=pusher.requests.RequestsBackend)
        assert client.trigger("a", "e", {"x": 1}) == {"official": "backend"}
        assert client.channels_info("presence-", ["user_count"]) == {}
        assert [r.method for r in server.requests] == ["POST", "GET"]

"""pusher_fast.testing.PusherServer: a local Pusher HTTP API that behaves like the service.

Valid traffic comes from the official ``pusher`` package (an independent signer) and, when it
exists, from ``pusher_fast.Pusher``; invalid traffic is crafted here, signed with this file's
own HMAC code, and sent with urllib3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote, urlencode, urlsplit

import orjson
import pusher
import pusher.errors
import pytest
import urllib3

from pusher_fast.testing import App, PusherServer, RecordedEvent

REPO = Path(__file__).resolve().parents[1]
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()

# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[PusherServer]:
    with PusherServer() as s:
        yield s


@pytest.fixture(scope="module")
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=10)
    yield pool
    pool.clear()


def official(server: PusherServer, app_id: Optional[str] = None, **kw: Any) -> pusher.Pusher:
    return pusher.Pusher(**server.client_kwargs(app_id), **kw)


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def sign(secret: str, method: str, path: str, params: dict[str, str]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    message = f"{method}\n{path}\n{query}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


_AUTO = "auto"


def signed_target(
    server: PusherServer,
    method: str,
    path: str,
    body: bytes = b"",
    extra: Optional[dict[str, str]] = None,
    *,
    key: Optional[str] = None,
    secret: Optional[str] = None,
    timestamp: Optional[float] = None,
    body_md5: Optional[str] = _AUTO,
    version: str = "1.0",
    signature: Optional[str] = None,
    drop: tuple[str, ...] = (),
    after_signing: Optional[dict[str, str]] = None,
) -> str:
    """A request target (path?query) signed as the reference says, with knobs to break it."""
    params = {
        "auth_key": key or server.key,
        "auth_timestamp": str(int(time.time() if timestamp is None else timestamp)),
        "auth_version": version,
    }
    if body_md5 == _AUTO:
        if body or method == "POST":
            params["body_md5"] = md5(body)
    elif body_md5 is not None:
        params["body_md5"] = body_md5
    params.update(extra or {})
    params["auth_signature"] = signature or sign(secret or server.secret, method, path, params)
    params.update(after_signing or {})
    for name in drop:
        params.pop(name, None)
    return path + "?" + urlencode(params, quote_via=quote, safe=",")


def send(
    http: urllib3.PoolManager,
    server: PusherServer,
    method: str,
    target: str,
    body: bytes = b"",
    **kw: Any,
) -> urllib3.BaseHTTPResponse:
    headers = {"Content-Type": "application/json"} if body else {}
    return http.request(method, server.url + target, body=body or None, headers=headers, **kw)


def post(
    http: urllib3.PoolManager, server: PusherServer, endpoint: str, doc: Any, **sign_kw: Any
) -> urllib3.BaseHTTPResponse:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    path = f"/apps/{sign_kw.pop('app_id', server.app_id)}/{endpoint}"
    send_kw = {"timeout": sign_kw.pop("timeout")} if "timeout" in sign_kw else {}
    target = signed_target(server, "POST", path, body, **sign_kw)
    return send(http, server, "POST", target, body, **send_kw)


def get(
    http: urllib3.PoolManager,
    server: PusherServer,
    resource: str,
    extra: Optional[dict[str, str]] = None,
    **sign_kw: Any,
) -> urllib3.BaseHTTPResponse:
    path = f"/apps/{server.app_id}/{resource}"
    return send(http, server, "GET", signed_target(server, "GET", path, b"", extra, **sign_kw))


def event(channel: str = "orders", name: str = "created", data: str = '{"id":1}') -> dict[str, Any]:
    return {"name": name, "channels": [channel], "data": data}


def pusher_fast_client_class() -> Any:
    cls = getattr(importlib.import_module("pusher_fast"), "Pusher", None)
    if cls is None:
        pytest.skip("pusher_fast.Pusher is not available yet")
    return cls


def connection_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pusher_fast.testing")]


# -- lifecycle -----------------------------------------------------------------------------------


class TestLifecycle:
    def test_addresses_and_credentials(self, server: PusherServer) -> None:
        assert server.url == f"http://127.0.0.1:{server.port}"
        parts = urlsplit(server.pusher_url)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", server.port)
        assert (parts.username, parts.password) == (server.key, server.secret)
        assert parts.path == f"/apps/{server.app_id}"
        assert server.client_kwargs() == {
            "app_id": "123456",
            "key": server.key,
            "secret": server.secret,
            "host": "127.0.0.1",
            "port": server.port,
            "ssl": False,
        }

    def test_not_running_has_no_url(self) -> None:
        s = PusherServer()
        assert not s.running
        with pytest.raises(RuntimeError):
            _ = s.url
        s.stop()  # stopping a server never started is a no-op

    def test_stop_leaves_no_thread_and_no_socket(self, http: urllib3.PoolManager) -> None:
        before = set(threading.enumerate())
        s = PusherServer().start()
        port = s.port
        client = official(s)
        for i in range(5):
            client.trigger("orders", "created", {"i": i})
        # a keep-alive connection left open by a client, and one that never sent anything
        post(http, s, "events", event())
        idle = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.05)
        assert len(connection_threads()) >= 2
        s.stop()
        s.stop()  # idempotent
        assert set(threading.enumerate()) - before == set()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert idle.recv(1) == b""  # the server closed the idle connection
        idle.close()
        http.clear()

    def test_stop_interrupts_a_stalled_request(self) -> None:
        s = PusherServer().start()
        s.stall_next(1, seconds=30)
        errors: list[BaseException] = []

        def call() -> None:
            try:
                official(s).trigger("orders", "created", {})
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.2)
        started = time.monotonic()
        s.stop()
        assert time.monotonic() - started < 5
        t.join(10)
        assert not t.is_alive() and errors  # the client saw the connection close
        assert connection_threads() == []

    def test_context_manager_and_restart(self) -> None:
        with PusherServer() as s:
            official(s).trigger("a", "e", "1")
            first_port = s.port
        assert not s.running
        with s:  # starts again, on a fresh port; recordings are kept
            assert s.port > 0
            official(s).trigger("a", "e", "2")
            assert [e.data for e in s.events] == ["1", "2"]
        assert first_port > 0

    def test_two_servers_side_by_side(self) -> None:
        with PusherServer() as a, PusherServer(key="other", secret="s2") as b:
            official(a).trigger("x", "e", "1")
            official(b).trigger("y", "e", "2")
            assert [e.channel for e in a.events] == ["x"]
            assert [e.channel for e in b.events] == ["y"]


# -- authentication ------------------------------------------------------------------------------


class TestAuthentication:
    def test_official_client_is_accepted(self, server: PusherServer) -> None:
        assert official(server).trigger("orders", "created", {"id": 1}) == {}
        (ev,) = server.events
        assert (ev.channel, ev.name, ev.json()) == ("orders", "created", {"id": 1})

    def test_reference_worked_example(self, http: urllib3.PoolManager) -> None:
        # The HTTP API reference's example request, byte for byte (its timestamp is from 2012).
        with PusherServer(
            "3", "278d425bdf160c739803", "7ad3773142a6692b25b8", max_timestamp_skew=10**10
        ) as s:
            body = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
            target = (
                "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179"
                "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature="
                "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
            )
            r = send(http, s, "POST", target, body)
            assert (r.status, r.data) == (200, b"{}")
            assert s.events[0].data == '{"some":"data"}'

    def test_unknown_key(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        r = post(http, server, "events", event(), key="nobody", secret="whatever")
        assert r.status == 401 and b"Unknown auth_key" in r.data

    def test_key_of_another_app(self, http: urllib3.PoolManager) -> None:
        other = App("777", "key-777", "secret-777")
        with PusherServer(apps=[other]) as s:
            r = post(http, s, "events", event(), key="key-777", secret="secret-777")
            assert r.status == 401
            r = post(http, s, "events", event(), app_id="777", key="key-777", secret="secret-777")
            assert r.status == 200
            assert [e.app_id for e in s.events] == ["777"]

    def test_wrong_secret(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        r = post(http, server, "events", event(), secret="not-the-secret")
        assert r.status == 401
        assert b"Invalid signature: you should have sent HmacSHA256Hex" in r.data
        assert server.events == []

    def test_signature_covers_method_path_and_query(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        path = f"/apps/{server.app_id}/channels"
        # signed for another path
        target = signed_target(server, "GET", f"/apps/{server.app_id}/channels/x")
        assert send(http, server, "GET", path + "?" + target.split("?")[1]).status == 401
        # signed as POST, sent as GET
        target = signed_target(server, "POST", path, body_md5=md5(b""))
        assert send(http, server, "GET", target).status == 401
        # a parameter added after signing
        target = signed_target(server, "GET", path, after_signing={"filter_by_prefix": "x"})
        assert send(http, server, "GET", target).status == 401
        # signed with the parameter: fine
        target = signed_target(server, "GET", path, extra={"filter_by_prefix": "x"})
        assert send(http, server, "GET", target).status == 200

    def test_signature_must_be_exact_lowercase_hex(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        body = orjson.dumps(event())
        path = f"/apps/{server.app_id}/events"
        params = {
            "auth_key": server.key,
            "auth_timestamp": str(int(time.time())),
            "auth_version": "1.0",
            "body_md5": md5(body),
        }
        good = sign(server.secret, "POST", path, params)
        for bad in (good.upper(), good[:-1], good + "0", ""):
            target = signed_target(server, "POST", path, body, signature=bad or "x")
            assert send(http, server, "POST", target, body).status == 401

    def test_values_are_signed_unescaped(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        server.add_subscriber("presence-x.y", 1)
        path = f"/apps/{server.app_id}/channels"
        params = {
            "auth_key": server.key,
            "auth_timestamp": str(int(time.time())),
            "auth_version": "1.0",
            "filter_by_prefix": "presence-",
            "info": "user_count",
        }
        params["auth_signature"] = sign(server.secret, "GET", path, params)
        escaped = urlencode(params, quote_via=quote, safe="")  # presence%2D..., and so on
        assert "%2C" in urlencode({"i": "a,b"}, quote_via=quote, safe="")
        r = send(http, server, "GET", path + "?" + escaped.replace("-", "%2D"))
        assert r.status == 200, r.data
        assert orjson.loads(r.data) == {"channels": {"presence-x.y": {"user_count": 0}}}

    @pytest.mark.parametrize("age", [-601, 601, 3600])
    def test_stale_or_future_timestamp(
        self, http: urllib3.PoolManager, server: PusherServer, age: int
    ) -> None:
        r = post(http, server, "events", event(), timestamp=time.time() - age)
        assert r.status == 401 and b"Timestamp expired" in r.data

    def test_timestamp_within_skew(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        assert post(http, server, "events", event(), timestamp=time.time() - 590).status == 200
        assert post(http, server, "events", event(), timestamp=time.time() + 590).status == 200

    def test_custom_skew(self, http: urllib3.PoolManager) -> None:
        with PusherServer(max_timestamp_skew=5) as s:
            assert post(http, s, "events", event(), timestamp=time.time() - 30).status == 401
            assert post(http, s, "events", event(), timestamp=time.time() - 1).status == 200

    def test_timestamp_must_be_a_number(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        body = orjson.dumps(event())
        path = f"/apps/{server.app_id}/events"
        params = {
            "auth_key": server.key,
            "auth_timestamp": "yesterday",
            "auth_version": "1.0",
            "body_md5": md5(body),
        }
        params["auth_signature"] = sign(server.secret, "POST", path, params)
        r = send(http, server, "POST", path + "?" + urlencode(params), body)
        assert r.status == 401 and b"auth_timestamp" in r.data

    def test_auth_version_must_be_1_0(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        assert post(http, server, "events", event(), version="2.0").status == 401

    @pytest.mark.parametrize(
        "missing", ["auth_key", "auth_timestamp", "auth_version", "auth_signature"]
    )
    def test_missing_auth_parameter(
        self, http: urllib3.PoolManager, server: PusherServer, missing: str
    ) -> None:
        r = post(http, server, "events", event(), drop=(missing,))
        assert r.status == 401

    def test_no_query_at_all(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        r = send(http, server, "GET", f"/apps/{server.app_id}/channels")
        assert r.status == 401 and b"Missing authentication" in r.data

    def test_body_md5_must_match_the_body(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        r = post(http, server, "events", event(), body_md5=md5(b"something else"))
        assert r.status == 401 and b"body_md5" in r.data
        r = post(http, server, "events", event(), body_md5=None)  # absent with a body
        assert r.status == 401 and b"body_md5" in r.data
        assert server.events == []

    def test_body_md5_on_get(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        # The official library sends the MD5 of the empty body on GET; others send none.
        assert get(http, server, "channels").status == 200
        assert get(http, server, "channels", body_md5=md5(b"")).status == 200
        assert get(http, server, "channels", body_md5=md5(b"x")).status == 401


# -- routing -------------------------------------------------------------------------------------


class TestRouting:
    def test_unknown_app_is_404(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        assert post(http, server, "events", event(), app_id="999").status == 404

    @pytest.mark.parametrize(
        "path", ["/", "/apps", "/apps/123456", "/apps/123456/nope", "/apps/123456/channels/a/b/c"]
    )
    def test_unknown_path_is_404(
        self, http: urllib3.PoolManager, server: PusherServer, path: str
    ) -> None:
        assert send(http, server, "GET", signed_target(server, "GET", path)).status == 404

    def test_official_terminate_path_is_404(self, server: PusherServer) -> None:
        # pusher-http-python 3.3.4 drops /apps/{id} from this path: a known defect.
        with pytest.raises(pusher.errors.PusherBadStatus, match="404"):
            official(server).terminate_user_connections("u1")

    def test_wrong_method_is_405(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        r = get(http, server, "events")
        assert r.status == 405 and r.headers["Allow"] == "POST"

    def test_disabled_app_is_403(self, http: urllib3.PoolManager) -> None:
        with PusherServer(disabled=True) as s:
            with pytest.raises(pusher.errors.PusherForbidden):
                official(s).trigger("orders", "created", {})
            # authentication comes first: a bad signature is still 401
            assert post(http, s, "events", event(), secret="bad").status == 401
            s.set_disabled(False)
            assert official(s).trigger("orders", "created", {}) == {}
            s.set_disabled(True)
            assert get(http, s, "channels").status == 403

    def test_request_too_large_is_413(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        body = b"x" * (1024 * 1024 + 1)
        target = signed_target(server, "POST", f"/apps/{server.app_id}/events", body)
        assert send(http, server, "POST", target, body).status == 413

    def test_chunked_body_is_refused(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        body = orjson.dumps(event())
        target = signed_target(server, "POST", f"/apps/{server.app_id}/events", body)
        r = http.request("POST", server.url + target, body=iter([body]), chunked=True)
        assert r.status == 411


# -- slow and hostile clients -------------------------------------------------------------------


def raw_request(server: PusherServer, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes on a fresh connection; everything the server answered before closing."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return answer
        if not chunk:
            return answer
        answer += chunk


def signed_events_head(server: PusherServer, body: bytes, length_lines: str) -> bytes:
    target = signed_target(server, "POST", f"/apps/{server.app_id}/events", body)
    return (
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{length_lines}Connection: close\r\n\r\n"
    ).encode()


class TestSlowAndHostileClients:
    def test_a_dripping_client_is_cut_off_at_the_request_deadline(self) -> None:
        with PusherServer(request_timeout=1.0) as s:
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            head = b"POST /apps/123456/events?a=b HTTP/1.1\r\nHost: x\r\n"
            started = time.monotonic()
            cut = None
            try:
                for byte in head * 20:  # one byte every 0.1 s would take over 5 s
                    sock.sendall(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                cut = time.monotonic() - started
            if cut is None:
                cut = time.monotonic() - started if read_all(sock) == b"" else None
            sock.close()
            assert cut is not None and cut < 1.0 + 1.0, cut
            assert s.requests == []

    def test_a_dripping_body_gets_408_within_the_deadline(self) -> None:
        with PusherServer(request_timeout=1.0) as s:
            body = orjson.dumps(event())
            sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            sock.sendall(signed_events_head(s, body, f"Content-Length: {len(body)}\r\n"))
            started = time.monotonic()
            answer = b""
            for byte in body:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.1)
                if select_readable(sock):
                    answer = read_all(sock)
                    break
            elapsed = time.monotonic() - started
            sock.close()
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert elapsed < 1.0 + 1.0, elapsed

    def test_a_slow_but_timely_request_is_served(self) -> None:
        with PusherServer(request_timeout=3.0) as s:
            body = orjson.dumps(event())
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
                data = signed_events_head(s, body, f"Content-Length: {len(body)}\r\n") + body
                for i in range(0, len(data), len(data) // 5 + 1):
                    sock.sendall(data[i : i + len(data) // 5 + 1])
                    time.sleep(0.1)
                assert read_all(sock).startswith(b"HTTP/1.1 200 ")

    def test_connections_beyond_the_cap_get_503(self) -> None:
        with PusherServer(max_connections=2) as s:
            held = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
            deadline = time.monotonic() + 5
            while len(connection_threads()) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)  # the accept loop has registered both held connections
            body = orjson.dumps(event())
            head = signed_events_head(s, body, f"Content-Length: {len(body)}\r\n")
            answer = raw_request(s, head, body)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"Connection: close" in answer
            assert s.events == []
            for sock in held:
                sock.close()
            # Once the held connections are gone, a new one is served again.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                answer = raw_request(s, head, body)
                if not answer.startswith(b"HTTP/1.1 503 "):
                    break
                time.sleep(0.05)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            assert len(s.events) == 1
        assert connection_threads() == []

    @pytest.mark.parametrize(
        "lines",
        [
            "Content-Length: +{n}\r\n",
            "Content-Length: {n}.0\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: \r\n",
            "Content-Length: {n}\r\nContent-Length: {m}\r\n",
            "Content-Length: {n}, {m}\r\n",
            "Content-Length: 1{n}0000000000000000000\r\n",
        ],
        ids=["plus", "decimal", "hex", "negative", "empty", "two values", "list", "huge"],
    )
    def test_bad_content_length_is_400(self, server: PusherServer, lines: str) -> None:
        body = orjson.dumps(event())
        length = lines.format(n=len(body), m=len(body) + 1)
        answer = raw_request(server, signed_events_head(server, body, length), body)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"Content-Length" in answer
        assert server.events == []

    @pytest.mark.parametrize(
        "lines",
        ["Content-Length: {n}\r\nContent-Length: {n}\r\n", "Content-Length: {n}, {n}\r\n"],
        ids=["two lines", "list"],
    )
    def test_a_repeated_identical_content_length_is_accepted(
        self, server: PusherServer, lines: str
    ) -> None:
        body = orjson.dumps(event())
        head = signed_events_head(server, body, lines.format(n=len(body)))
        assert raw_request(server, head, body).startswith(b"HTTP/1.1 200 ")
        assert len(server.events) == 1

    def test_settings_are_checked(self) -> None:
        for bad in ({"max_connections": 0}, {"request_timeout": 0}, {"idle_timeout": -1}):
            with pytest.raises(ValueError, match=next(iter(bad))):
                PusherServer(**bad)


def select_readable(sock: socket.socket) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


# -- what the service enforces -------------------------------------------------------------------


class TestLimits:
    def test_channel_name_rules(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        ok = ["a", "-_=@,.;", "x" * 200, "#server-to-user-42", "private-encrypted-z"]
        for name in ok:
            assert post(http, server, "events", event(name)).status == 200, name
        bad = ["x" * 201, "has space", "é", "a/b", "#nope", "", "#server-to-user-", 7]
        for name in bad:
            r = post(http, server, "events", {"name": "e", "channels": [name], "data": "1"})
            assert r.status == 400, name
        assert [e.channel for e in server.events] == ok

    def test_channel_count(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        channels = [f"c{i}" for i in range(101)]
        doc = {"name": "e", "channels": channels[:100], "data": "1"}
        assert post(http, server, "events", doc).status == 200
        doc["channels"] = channels
        r = post(http, server, "events", doc)
        assert r.status == 400 and b"Too many channels" in r.data
        assert len(server.events) == 100

    def test_channel_count_is_configurable(self, http: urllib3.PoolManager) -> None:
        with PusherServer(max_channels=2) as s:
            doc = {"name": "e", "channels": ["a", "b", "c"], "data": "1"}
            assert post(http, s, "events", doc).status == 400

    def test_single_channel_field(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        assert (
            post(http, server, "events", {"name": "e", "channel": "one", "data": "1"}).status == 200
        )
        assert server.events[0].channel == "one"

    @pytest.mark.parametrize(
        "doc",
        [
            {"name": "e", "data": "1"},
            {"name": "e", "channels": [], "data": "1"},
            {"name": "e", "channels": "orders", "data": "1"},
            {"channels": ["a"], "data": "1"},
            {"name": "", "channels": ["a"], "data": "1"},
            {"name": "e", "channels": ["a"]},
            {"name": "e", "channels": ["a"], "data": {"not": "a string"}},
            {"name": "e", "channels": ["a"], "data": "1", "socket_id": "1.1:private-x"},
            {"name": "e", "channels": ["a"], "data": "1", "socket_id": "abc"},
            {"name": "e", "channels": ["a"], "data": "1", "info": "nonsense"},
        ],
    )
    def test_malformed_events(
        self, http: urllib3.PoolManager, server: PusherServer, doc: dict[str, Any]
    ) -> None:
        assert post(http, server, "events", doc).status == 400
        assert server.events == []

    @pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
    def test_invalid_json(
        self, http: urllib3.PoolManager, server: PusherServer, body: bytes
    ) -> None:
        assert post(http, server, "events", body).status == 400
        assert post(http, server, "batch_events", body).status == 400

    def test_event_name_length(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        assert post(http, server, "events", event(name="n" * 200)).status == 200
        assert post(http, server, "events", event(name="n" * 201)).status == 400

    def test_data_size_in_utf8_bytes(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        assert post(http, server, "events", event(data="x" * 10240)).status == 200
        r = post(http, server, "events", event(data="x" * 10241))
        assert r.status == 413 and b"10240" in r.data
        # 3,500 characters, 10,500 bytes: the limit counts bytes
        assert post(http, server, "events", event(data="€" * 3500)).status == 413
        assert post(http, server, "events", event(data="€" * 3413)).status == 200
        assert [len(e.data) for e in server.events] == [10240, 3413]

    def test_data_limit_is_configurable(self, http: urllib3.PoolManager) -> None:
        with PusherServer(max_payload_bytes=30720) as s:
            assert post(http, s, "events", event(data="x" * 30720)).status == 200
            assert post(http, s, "events", event(data="x" * 30721)).status == 413

    def test_official_client_over_the_limit_is_413(self, server: PusherServer) -> None:
        # The official client lets up to 30 KB through for trigger; the service says 413.
        with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
            official(server).trigger("orders", "big", "x" * 20000)

    def test_encrypted_channel_alone(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        doc = {"name": "e", "channels": ["private-encrypted-a", "b"], "data": "1"}
        assert post(http, server, "events", doc).status == 400
        doc["channels"] = ["private-encrypted-a", "private-encrypted-a"]  # one channel twice
        assert post(http, server, "events", doc).status == 200
        assert [e.channel for e in server.events] == ["private-encrypted-a"]

    def test_batch_size(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        batch = [{"channel": f"c{i}", "name": "e", "data": str(i)} for i in range(11)]
        assert post(http, server, "batch_events", {"batch": batch[:10]}).status == 200
        r = post(http, server, "batch_events", {"batch": batch})
        assert r.status == 400 and b"Batch too large" in r.data
        assert len(server.events) == 10

    def test_batch_size_is_configurable(self, http: urllib3.PoolManager) -> None:
        with PusherServer(max_batch_size=100) as s:
            batch = [{"channel": "c", "name": "e", "data": str(i)} for i in range(100)]
            assert post(http, s, "batch_events", {"batch": batch}).status == 200

    def test_batch_is_all_or_nothing(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        batch = [
            {"channel": "a", "name": "e", "data": "1"},
            {"channel": "b", "name": "e", "data": "x" * 10241},
        ]
        r = post(http, server, "batch_events", {"batch": batch})
        assert r.status == 413 and b"batch[1]" in r.data
        batch[1] = {"channel": "b c", "name": "e", "data": "1"}
        assert post(http, server, "batch_events", {"batch": batch}).status == 400
        assert server.events == []

    @pytest.mark.parametrize(
        "doc",
        [
            {},
            {"batch": "no"},
            {"batch": [1]},
            {"batch": [{"name": "e", "data": "1"}]},
            {"batch": [{"channel": "a", "data": "1"}]},
            {"batch": [{"channel": "a", "name": "e", "data": 5}]},
            {"batch": [{"channel": "a", "name": "e", "data": "1", "info": "bogus"}]},
        ],
    )
    def test_malformed_batches(
        self, http: urllib3.PoolManager, server: PusherServer, doc: dict[str, Any]
    ) -> None:
        assert post(http, server, "batch_events", doc).status == 400

    def test_official_client_errors_map_to_its_exceptions(self, server: PusherServer) -> None:
        client = official(server)
        with pytest.raises(pusher.errors.PusherBadRequest):
            client.channels_info(attributes=["user_count"])
        bad = pusher.Pusher(**{**server.client_kwargs(), "secret": "wrong"})
        with pytest.raises(pusher.errors.PusherBadAuth):
            bad.trigger("orders", "e", {})


# -- responses and simulated state ---------------------------------------------------------------


class TestState:
    def test_trigger_with_info(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.add_member("presence-room", "u1")
        server.add_member("presence-room", "u1")
        server.add_member("presence-room", "u2")
        server.add_subscriber("news", 5)
        doc = {
            "name": "e",
            "channels": ["presence-room", "news", "empty"],
            "data": "1",
            "info": "user_count,subscription_count",
        }
        r = post(http, server, "events", doc)
        assert r.status == 200
        assert orjson.loads(r.data) == {
            "channels": {
                "presence-room": {"user_count": 2, "subscription_count": 3},
                "news": {"subscription_count": 5},
                "empty": {"subscription_count": 0},
            }
        }
        assert post(http, server, "events", {**doc, "info": ""}).data == b"{}"

    def test_batch_with_info(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.add_member("presence-room", "u1")
        batch = [
            {"channel": "presence-room", "name": "e", "data": "1", "info": "user_count"},
            {"channel": "news", "name": "e", "data": "2"},
            {"channel": "news", "name": "e", "data": "3", "info": "subscription_count"},
        ]
        r = post(http, server, "batch_events", {"batch": batch})
        assert orjson.loads(r.data) == {"batch": [{"user_count": 1}, {}, {"subscription_count": 0}]}
        r = post(http, server, "batch_events", {"batch": batch[1:2]})
        assert r.data == b"{}"

    def test_channels_info(self, server: PusherServer) -> None:
        client = official(server)
        assert client.channels_info() == {"channels": {}}
        server.add_subscriber("news", 2)
        server.add_member("presence-room", "u1", {"name": "One"})
        server.add_member("presence-room", "u2")
        server.add_member("presence-other", "u9")
        assert client.channels_info() == {
            "channels": {"news": {}, "presence-room": {}, "presence-other": {}}
        }
        assert client.channels_info("presence-", ["user_count"]) == {
            "channels": {"presence-room": {"user_count": 2}, "presence-other": {"user_count": 1}}
        }
        assert client.channels_info("presence-r") == {"channels": {"presence-room": {}}}
        with pytest.raises(pusher.errors.PusherBadRequest, match="presence"):
            client.channels_info("news", ["user_count"])
        server.remove_subscriber("news", 2)
        assert "news" not in client.channels_info()["channels"]

    def test_channel_info(self, server: PusherServer) -> None:
        client = official(server)
        assert client.channel_info("news") == {"occupied": False}
        assert client.channel_info("news", ["subscription_count"]) == {
            "occupied": False,
            "subscription_count": 0,
        }
        server.add_subscriber("news", 3)
        assert client.channel_info("news", ["subscription_count"]) == {
            "occupied": True,
            "subscription_count": 3,
        }
        with pytest.raises(pusher.errors.PusherBadRequest):
            client.channel_info("news", ["user_count"])
        server.add_member("presence-room", "u1")
        server.add_member("presence-room", "u1")  # second tab
        assert client.channel_info("presence-room", ["user_count", "subscription_count"]) == {
            "occupied": True,
            "user_count": 1,
            "subscription_count": 2,
        }

    def test_users_info(self, server: PusherServer) -> None:
        client = official(server)
        assert client.users_info("presence-room") == {"users": []}
        server.add_member("presence-room", "u1")
        server.add_member("presence-room", "u2", {"name": "Two"})
        assert client.users_info("presence-room") == {"users": [{"id": "u1"}, {"id": "u2"}]}
        server.remove_member("presence-room", "u1")
        server.remove_member("presence-room", "nobody")  # no-op
        assert client.users_info("presence-room") == {"users": [{"id": "u2"}]}
        with pytest.raises(pusher.errors.PusherBadRequest):
            client.users_info("news")

    def test_terminate_connections(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.add_member("presence-a", "u1")
        server.add_member("presence-b", "u1")
        server.add_member("presence-b", "u2")
        r = post(http, server, "users/u1/terminate_connections", {})
        assert (r.status, r.data) == (200, b"{}")
        assert server.terminated_users == ["u1"]
        assert server.channels() == {
            "presence-b": {"subscription_count": 1, "user_count": 1, "users": ["u2"]}
        }
        assert post(http, server, "users/bad%20id/terminate_connections", {}).status == 400
        assert post(http, server, f"users/{'u' * 201}/terminate_connections", {}).status == 400

    def test_state_helpers_validate(self, server: PusherServer) -> None:
        with pytest.raises(ValueError):
            server.add_member("news", "u1")  # not a presence channel
        with pytest.raises(ValueError):
            server.add_subscriber("bad name")
        with pytest.raises(ValueError):
            server.remove_subscriber("news", 1)
        with pytest.raises(KeyError):
            server.add_subscriber("news", app_id="nope")
        server.add_subscriber("news", 2)
        server.reset_state()
        assert server.channels() == {}

    def test_several_apps_have_separate_state(self) -> None:
        other = App("42", "key-42", "secret-42")
        with PusherServer(apps=[other]) as s:
            s.add_subscriber("news", 1, app_id="42")
            assert official(s).channels_info() == {"channels": {}}
            assert official(s, "42").channels_info() == {"channels": {"news": {}}}
            official(s, "42").trigger("news", "e", "1")
            assert [e.app_id for e in s.events_for("news")] == ["42"]
            assert s.events_for("news", app_id="123456") == []


# -- recording -----------------------------------------------------------------------------------


class TestRecording:
    def test_events_and_requests(self, server: PusherServer) -> None:
        client = official(server)
        client.trigger(["a", "b"], "created", {"id": 1}, socket_id="123.456")
        client.trigger_batch([{"channel": "a", "name": "updated", "data": "x"}])
        client.channels_info()
        events = server.events
        assert [(e.channel, e.name) for e in events] == [
            ("a", "created"),
            ("b", "created"),
            ("a", "updated"),
        ]
        assert events[0].socket_id == "123.456" and events[2].socket_id is None
        assert events[0].json() == {"id": 1}
        assert events[0].time == pytest.approx(time.time(), abs=60)
        assert server.events_for("a") == [events[0], events[2]]
        assert server.events_for(name="created") == events[:2]
        assert server.events_for("a", "updated") == [events[2]]
        reqs = server.requests
        assert [(r.method, r.path, r.status) for r in reqs] == [
            ("POST", "/apps/123456/events", 200),
            ("POST", "/apps/123456/batch_events", 200),
            ("GET", "/apps/123456/channels", 200),
        ]
        assert "auth_signature=" in reqs[0].query and reqs[0].body.startswith(b"{")

    def test_rejections_are_recorded_with_their_reason(
        self, http: urllib3.PoolManager, server: PusherServer
    ) -> None:
        post(http, server, "events", event(), secret="bad")
        (req,) = server.requests
        assert req.status == 401 and req.error is not None and "Invalid signature" in req.error

    def test_clear(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.add_subscriber("news")
        official(server).trigger("news", "e", "1")
        post(http, server, "users/u1/terminate_connections", {})
        server.clear()
        assert (server.events, server.requests, server.terminated_users) == ([], [], [])
        assert server.channels() == {"news": {"subscription_count": 1}}  # state is kept

    def test_send_to_user(self, server: PusherServer) -> None:
        official(server).send_to_user("u-7", "notice", {"text": "hi"})
        (ev,) = server.events
        assert ev.channel == "#server-to-user-u-7" and ev.user_id == "u-7"

    def test_encrypted_events_are_decrypted_with_the_master_key(self) -> None:
        with PusherServer(encryption_master_key_base64=MASTER_KEY) as s:
            assert s.client_kwargs()["encryption_master_key_base64"] == MASTER_KEY
            official(s).trigger("private-encrypted-vault", "secret", {"pin": 1234})
            (ev,) = s.events
            assert set(json.loads(ev.data)) == {"nonce", "ciphertext"}
            assert ev.decrypted_data is not None and json.loads(ev.decrypted_data) == {"pin": 1234}
            assert ev.json() == {"pin": 1234}

    def test_encrypted_event_without_the_key_is_kept_sealed(self) -> None:
        other_key = base64.b64encode(b"k" * 32).decode()
        with PusherServer(encryption_master_key_base64=other_key) as s:
            client = pusher.Pusher(
                **{**s.client_kwargs(), "encryption_master_key_base64": MASTER_KEY}
            )
            client.trigger("private-encrypted-vault", "secret", {"pin": 1})
            assert s.events[0].decrypted_data is None

    def test_bad_master_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            PusherServer(encryption_master_key_base64=base64.b64encode(b"short").decode())

    def test_wait_for_events(self, server: PusherServer) -> None:
        def later() -> None:
            time.sleep(0.2)
            official(server).trigger("late", "e", "1")

        t = threading.Thread(target=later)
        t.start()
        found = server.wait_for_events(1, timeout=10, channel="late")
        t.join()
        assert [e.channel for e in found] == ["late"]
        assert server.wait_for_events(5, timeout=0.05) == found  # times out: what there is

    def test_max_recorded_keeps_the_newest(self) -> None:
        with PusherServer(max_recorded=3) as s:
            client = official(s)
            for i in range(5):
                client.trigger("c", "e", str(i))
            assert [e.data for e in s.events] == ["2", "3", "4"]
            assert len(s.requests) == 3

    def test_recorded_event_is_a_plain_dataclass(self) -> None:
        ev = RecordedEvent("c", "n", '{"a": 1}')
        assert ev.json() == {"a": 1} and ev.user_id is None


# -- faults on demand ----------------------------------------------------------------------------


class TestFaults:
    def test_fail_next(self, server: PusherServer) -> None:
        client = official(server)
        server.fail_next(2)
        assert server.pending_faults == 2
        for _ in range(2):
            with pytest.raises(pusher.errors.PusherBadStatus, match="500"):
                client.trigger("c", "e", "1")
        assert client.trigger("c", "e", "2") == {}
        assert [e.data for e in server.events] == ["2"]  # failed requests did nothing
        assert [r.status for r in server.requests] == [500, 500, 200]

    def test_429_with_retry_after(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.fail_next(1, status=429, retry_after=3)
        r = post(http, server, "events", event())
        assert r.status == 429 and r.headers["Retry-After"] == "3"
        server.fail_next(1, status=503, retry_after=1.5)
        assert post(http, server, "events", event()).headers["Retry-After"] == "1.5"
        with pytest.raises(ValueError):
            server.fail_next(1, status=200)

    def test_stall_next(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.stall_next(1, seconds=0.3)
        started = time.monotonic()
        assert post(http, server, "events", event()).status == 200
        assert time.monotonic() - started >= 0.3
        # a client that gives up early: the request still arrives (the ambiguous case)
        server.stall_next(1, seconds=0.5)
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            post(http, server, "events", event(data='"late"'), timeout=0.1)
        assert server.wait_for_events(2, timeout=5)[-1].data == '"late"'

    def test_reset_next(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.reset_next(1)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            post(http, server, "events", event())
        assert server.events == []
        assert [r.status for r in server.requests] == [0]
        assert post(http, server, "events", event()).status == 200

    def test_faults_apply_in_order(self, http: urllib3.PoolManager, server: PusherServer) -> None:
        server.fail_next(1, status=502)
        server.reset_next(1)
        assert post(http, server, "events", event()).status == 502
        with pytest.raises(urllib3.exceptions.ProtocolError):
            post(http, server, "events", event())
        assert post(http, server, "events", event()).status == 200
        server.fail_next(3)
        server.clear_faults()
        assert post(http, server, "events", event()).status == 200

    def test_concurrent_clients(self, server: PusherServer) -> None:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                client = official(server)
                for i in range(40):
                    client.trigger(f"w{n}", "e", str(i))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(server.events) == 160
        for n in range(4):
            assert [e.data for e in server.events_for(f"w{n}")] == [str(i) for i in range(40)]


# -- our own client ------------------------------------------------------------------------------


class TestPusherFastClient:
    def test_round_trip(self, server: PusherServer) -> None:
        client = pusher_fast_client_class()(**server.client_kwargs())
        server.add_member("presence-room", "u1")
        assert client.trigger("orders", "created", {"id": 1}) == {}
        client.trigger_batch([{"channel": "a", "name": "e", "data": {"k": 1}}])
        assert [e.json() for e in server.events] == [{"id": 1}, {"k": 1}]
        assert client.channels_info("presence-", ["user_count"]) == {
            "channels": {"presence-room": {"user_count": 1}}
        }
        assert client.channel_info("presence-room", ["user_count"])["user_count"] == 1
        assert client.users_info("presence-room") == {"users": [{"id": "u1"}]}
        assert client.terminate_user_connections("u1") == {}
        assert server.terminated_users == ["u1"]
        assert {r.status for r in server.requests} == {200}

    def test_encrypted(self) -> None:
        cls = pusher_fast_client_class()
        with PusherServer(encryption_master_key_base64=MASTER_KEY) as s:
            cls(**s.client_kwargs()).trigger("private-encrypted-x", "e", {"pin": 7})
            assert s.events[0].json() == {"pin": 7}


# -- command line and pytest plugin --------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


class TestCommandLine:
    def test_serve_prints_pusher_url_and_stops_on_ctrl_c(self) -> None:
        code = (
            "from pusher_fast.testing._cli import serve; import sys; sys.exit(serve(sys.argv[1:]))"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "--key", "k1", "--secret", "s1", "--verbose"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("PUSHER_URL=http://k1:s1@127.0.0.1:"), line
            url = urlsplit(line.strip().split("=", 1)[1])
            client = pusher.Pusher(
                app_id="123456", key="k1", secret="s1", host="127.0.0.1", port=url.port, ssl=False
            )
            assert client.trigger("orders", "created", {"id": 1}) == {}
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "200 POST /apps/123456/events" in out
        assert "1 event(s) accepted" in out

    def test_serve_stops_on_sigterm(self) -> None:
        code = "from pusher_fast.testing._cli import serve; import sys; sys.exit(serve([]))"
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env()
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("PUSHER_URL=")
            proc.terminate()
            proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0

    def test_demo_with_the_official_client(self, capsys: pytest.CaptureFixture[str]) -> None:
        from pusher_fast.testing._cli import demo

        assert demo(["--client", "official", "--events", "200"]) == 0
        out = capsys.readouterr().out
        assert "Sent 200 events through 20 trigger_batch calls of 10" in out
        assert "Server accepted 200 events (all)" in out
        assert "signature verifies" in out
        assert "forged signature -> None" in out

    def test_demo_with_pusher_fast(self, capsys: pytest.CaptureFixture[str]) -> None:
        pusher_fast_client_class()
        from pusher_fast.testing._cli import demo

        assert demo(["--events", "200"]) == 0
        assert "Server accepted 200 events (all)" in capsys.readouterr().out


class TestPlugin:
    def test_import_is_light(self) -> None:
        code = (
            "import sys, pusher_fast.testing.plugin as p\n"
            "heavy = [m for m in ('aiohttp', 'pusher', 'requests') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "print(sorted(n for n in dir(p) if n.startswith('pusher_')))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True
        ).stdout
        assert "pusher_client" in out and "pusher_server" in out

    def test_fixtures_in_a_pytest_session(self, tmp_path: Path) -> None:
        has_client = getattr(importlib.import_module("pusher_fast"), "Pusher", None) is not None
        test_file = tmp_path / "test_uses_fixtures.py"
        test_file.write_text(
            textwrap.dedent(
                f"""
                import pusher, pytest

                def test_server(pusher_server):
                    client = pusher.Pusher(**pusher_server.client_kwargs())
                    client.trigger("orders", "created", {{"id": 1}})
                    assert pusher_server.events_for("orders")[0].json() == {{"id": 1}}

                def test_factory(pusher_server_factory):
                    s = pusher_server_factory(max_batch_size=50)
                    assert s.running and s.limits.max_batch_size == 50

                @pytest.mark.skipif(not {has_client}, reason="pusher_fast.Pusher not built yet")
                def test_client(pusher_server, pusher_client):
                    pusher_client.trigger("orders", "created", {{"id": 2}})
                    assert pusher_server.events[0].json() == {{"id": 2}}
                """
            )
        )
        env = _env()
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "pusher_fast.testing.plugin",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(tmp_path),
                str(test_file),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("3 passed" if has_client else "2 passed, 1 skipped") in result.stdout

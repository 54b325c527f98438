"""The scenarios both socket transports share, written once and run on each
(``socket_transport`` in conftest: ``SocketTransport`` and ``AsyncSocketTransport``).

What only one of them does (threads and fork, one ``sendall``; the pool limit, event loops,
cancellation) stays in ``test_fasthttp.py`` / ``test_asynchttp.py``.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any

import pytest

from pusher_fast._request import Request
from pusher_fast.errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherError,
    PusherForbidden,
    PusherTransportError,
)
from tests.faultserver import Close, Reply, Reset
from tests.helpers import (
    Answer,
    chunked,
    data_of,
    echo,
    http11,
    readers_left_for_gc,
    refused_port,
    tls_mini_server,
)

pytestmark = [pytest.mark.usefixtures("clean_proxy_environment"), pytest.mark.timeout(60)]


# -- answers --------------------------------------------------------------------------------


class TestAnswers:
    @pytest.mark.parametrize("status", [200, 202])
    def test_success_returns_the_parsed_json(self, socket_transport, mini, status):
        t = socket_transport
        mini.always(http11(status, b'{"channels":{"a":{"subscription_count":3}}}'))
        client = t.client(mini.port)
        assert t.run(client.trigger("a", "e", {"x": "é"})) == {
            "channels": {"a": {"subscription_count": 3}}
        }
        (seen,) = mini.requests
        assert (seen.method, seen.target.partition("?")[0]) == ("POST", "/apps/123456/events")
        assert json.loads(data_of(seen)) == {"x": "é"}

    @pytest.mark.parametrize(
        ("status", "error"),
        [
            (400, PusherBadRequest),
            (401, PusherBadAuth),
            (403, PusherForbidden),
            (413, PusherBadStatus),
            (500, PusherBadStatus),
        ],
    )
    def test_error_statuses_raise_the_official_errors(self, socket_transport, mini, status, error):
        t = socket_transport
        mini.always(http11(status, b"nope: the reason"))
        client = t.client(mini.port)
        with pytest.raises(error, match="the reason") as info:
            t.run(client.trigger("a", "e", "d"))
        assert info.value.status == status
        # An error answer is an answer: the connection stays in the pool.
        with pytest.raises(error):
            t.run(client.channels_info())
        assert mini.connections == 1 and len(mini.requests) == 2

    def test_send_raw_returns_status_body_and_case_insensitive_headers(
        self, socket_transport, mini
    ):
        t = socket_transport
        mini.always(http11(429, b"slow down", {"Retry-After": "3", "X-Two": "2"}))
        client = t.client(mini.port)
        request = client._trigger_request("a", "e", "d")
        status, body, headers = t.run(t.http(client).send_raw(request))
        assert (status, body) == (429, b"slow down")
        assert headers.get("Retry-After") == headers.get("retry-after") == "3"
        assert headers["x-two"] == "2" and "X-TWO" in headers
        assert headers.get("Missing") is None
        with pytest.raises(KeyError):
            headers["Missing"]
        assert len(headers) == len(list(headers)) == 4

    def test_chunked_answer(self, socket_transport, mini):
        t = socket_transport
        payload = json.dumps({"channels": {f"c{i}": {} for i in range(50)}}).encode()
        mini.always(chunked(payload))
        client = t.client(mini.port)
        for _ in range(3):
            assert t.run(client.trigger("a", "e", "d")) == json.loads(payload)
            assert t.run(client.channels_info()) == json.loads(payload)
        assert mini.connections == 1  # a chunked answer keeps the connection
        assert t.http(client).connections_opened == 1

    @pytest.mark.parametrize("framing", ["length", "chunked"])
    def test_answer_larger_than_64_kb(self, socket_transport, mini, framing):
        t = socket_transport
        big = {"channels": {f"channel-{i:06d}": {"user_count": i} for i in range(6000)}}
        payload = json.dumps(big).encode()
        assert len(payload) > 150_000
        mini.always(http11(200, payload) if framing == "length" else chunked(payload, 9000))
        client = t.client(mini.port)
        assert t.run(client.channels_info()) == big
        assert t.run(client.channels_info()) == big
        assert mini.connections == 1

    def test_answer_without_length_is_read_to_the_close(self, socket_transport, mini):
        t = socket_transport
        mini.always(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}', True)
        client = t.client(mini.port)
        assert t.run(client.trigger("a", "e", "d")) == {"a": 1}
        assert t.run(client.trigger("a", "e", "d")) == {"a": 1}
        assert mini.connections == 2
        assert t.http(client).stale_resends == 0


# -- connections ----------------------------------------------------------------------------


class TestConnections:
    def test_connection_close_is_honoured(self, socket_transport, mini):
        t = socket_transport
        mini.always(http11(headers={"Connection": "close"}), close=True)
        client = t.client(mini.port)
        for i in range(5):
            assert t.run(client.trigger("a", "e", str(i))) == {}
        assert mini.connections == 5 and len(mini.requests) == 5
        backend = t.http(client)
        assert backend.stale_resends == 0 and backend.connections_opened == 5
        assert backend._idle == []
        if t.is_async:
            assert backend._open == 0

    @pytest.mark.parametrize("keep_alive", [False, True], ids=["close", "keep-alive"])
    def test_http_1_0_server(self, socket_transport, mini, keep_alive):
        t = socket_transport
        extra = "Connection: keep-alive\r\n" if keep_alive else ""
        raw = f"HTTP/1.0 200 OK\r\n{extra}Content-Length: 8\r\n\r\n".encode() + b'{"v":10}'
        mini.always(raw, close=not keep_alive)
        client = t.client(mini.port)
        for _ in range(4):
            assert t.run(client.trigger("a", "e", "d")) == {"v": 10}
        assert mini.connections == (1 if keep_alive else 4)
        assert len(mini.requests) == 4
        assert t.http(client).stale_resends == 0

    def test_idle_connection_closed_by_the_server_is_dropped_before_sending(
        self, socket_transport, mini
    ):
        # soketi-style: the server closes silently after each answer.  An idle connection is
        # polled before reuse, so no request goes out on a closed one: nothing to resend.
        t = socket_transport
        mini.always(http11(), close=True)
        client = t.client(mini.port)
        for i in range(4):
            assert t.run(client.trigger("a", "e", str(i))) == {}
            time.sleep(0.05)  # let the FIN arrive
        assert len(mini.requests) == 4 and mini.connections == 4
        backend = t.http(client)
        assert backend.stale_resends == 0 and backend.connections_opened == 4

    def test_server_closing_silently_in_a_tight_loop(self, socket_transport, mini):
        # The FIN may race the next request, written before it arrived: that request may
        # have been processed (ambiguous), so only at_least_once retries it.  The server
        # never read it (it had closed): each request is received once.
        t = socket_transport
        mini.always(http11(), close=True)
        client = t.client(mini.port, retries=3, at_least_once=True)
        for i in range(20):
            assert t.run(client.trigger("a", "e", str(i))) == {}
        assert len(mini.requests) == 20 and mini.connections == 20
        assert [data_of(s) for s in mini.requests] == [str(i) for i in range(20)]
        assert 20 <= t.http(client).connections_opened <= 23


# -- stale keep-alive connections -----------------------------------------------------------

FAULTS = pytest.mark.parametrize("fault", [Reset(), Close()], ids=["reset", "close"])


class TestStaleConnections:
    @FAULTS
    def test_reused_connection_dropped_after_the_request_is_not_resent(
        self, socket_transport, faults, fault
    ):
        # The server read the request, then dropped the connection: it may have processed
        # it, so it is not sent again unasked (it once was: a silent duplicate).
        t = socket_transport
        faults.script(Reply(), fault)
        client = t.client(faults.port)
        assert t.run(client.trigger("c", "e", {"n": 1})) == {}
        with pytest.raises(PusherTransportError) as info:
            t.run(client.trigger("c", "e", {"n": 2}))
        assert info.value.ambiguous is True
        first, dropped = faults.requests
        assert dropped.conn == first.conn
        backend = t.http(client)
        assert backend.stale_resends == 0 and backend.connections_opened == 1

    @FAULTS
    def test_at_least_once_resends_up_to_the_retries(self, socket_transport, faults, fault):
        t = socket_transport
        faults.script(Reply())
        faults.default = fault
        client = t.client(faults.port, retries=1, at_least_once=True)
        assert t.run(client.trigger("c", "e", {"n": 1})) == {}
        with pytest.raises(PusherTransportError) as info:
            t.run(client.trigger("c", "e", {"n": 2}))
        if t.is_async and isinstance(fault, Close):
            assert "without an answer" in str(info.value)
        assert len(faults.requests) == 3
        assert faults.requests[1].body == faults.requests[2].body
        backend = t.http(client)
        assert backend.stale_resends == 0
        if t.is_async:
            assert backend._open == 0

    @FAULTS
    def test_fresh_connection_is_never_resent_on(self, socket_transport, faults, fault):
        t = socket_transport
        faults.default = fault
        client = t.client(faults.port)
        with pytest.raises(PusherTransportError):
            t.run(client.trigger("c", "e", {"n": 1}))
        assert len(faults.requests) == 1
        backend = t.http(client)
        assert backend.stale_resends == 0 and backend.connections_opened == 1

    def test_no_resend_after_a_timeout_on_a_reused_connection(self, socket_transport, faults):
        t = socket_transport
        faults.script(Reply(), Reply(delay=1.0))
        client = t.client(faults.port, timeout=0.3)
        t.run(client.trigger("c", "e", {"n": 1}))
        started = time.monotonic()
        with pytest.raises(PusherTransportError, match="timed out"):
            t.run(client.trigger("c", "e", {"n": 2}))
        assert time.monotonic() - started < 0.9
        faults.wait_idle(5)
        assert len(faults.requests) == 2
        assert t.http(client).stale_resends == 0

    def test_no_resend_after_part_of_an_answer(self, socket_transport, mini):
        t = socket_transport
        answers = iter(
            [Answer(http11()), Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", True)]
        )
        mini.answer = lambda seen: next(answers)
        client = t.client(mini.port)
        t.run(client.trigger("c", "e", "one"))
        with pytest.raises(PusherTransportError, match="closed the connection in the body"):
            t.run(client.trigger("c", "e", "two"))
        assert len(mini.requests) == 2
        assert t.http(client).stale_resends == 0


# -- no answer ------------------------------------------------------------------------------


class TestNoAnswer:
    def test_connection_refused(self, socket_transport):
        t = socket_transport
        port = refused_port()
        client = t.client(port, timeout=2)
        started = time.monotonic()
        with pytest.raises(PusherTransportError, match=r"(?i)refused") as info:
            t.run(client.trigger("a", "e", "d"))
        assert time.monotonic() - started < 1.5
        assert f"127.0.0.1:{port}" in str(info.value)
        assert isinstance(info.value, PusherError)
        if t.is_async:
            assert t.http(client)._open == 0

    def test_connect_timeout(self, socket_transport):
        # A listener that never accepts, with its one-slot backlog full: SYNs are dropped.
        t = socket_transport
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.settimeout(0.2)
                try:
                    filler.connect(("127.0.0.1", port))
                except OSError:
                    filler.close()
                    break
                fillers.append(filler)
            else:
                pytest.skip("the kernel accepted every connection: no way to stall a connect")
            client = t.client(port, timeout=0.5, **({"limit": 1} if t.is_async else {}))
            started = time.monotonic()
            with pytest.raises(PusherTransportError, match="TimeoutError") as info:
                t.run(client.trigger("a", "e", "d"))
            assert 0.4 < time.monotonic() - started < 1.5
            if t.is_async:
                assert t.http(client)._open == 0
            else:
                assert "timed out" in str(info.value)
        finally:
            for filler in fillers:
                filler.close()
            listener.close()

    def test_garbage_answer_is_a_transport_error(self, socket_transport, mini):
        t = socket_transport
        mini.always(b"SSH-2.0-OpenSSH\r\n\r\n", close=True)
        with pytest.raises(PusherTransportError, match="malformed answer"):
            t.run(t.client(mini.port).trigger("a", "e", "d"))

    def test_unsafe_request_target_is_refused_before_sending(self, socket_transport, mini):
        t = socket_transport
        client = t.client(mini.port)
        request = Request(client, "POST", "/apps/1/events", None, b"{}", "a=1 HTTP/1.1\r\nX: y")
        with pytest.raises(ValueError):
            t.run(t.http(client).send_request(request))
        assert mini.requests == [] and mini.connections == 0


# -- HTTPS ----------------------------------------------------------------------------------


class TestHTTPS:
    def test_unknown_certificate_is_refused(self, socket_transport, tls_server):
        t = socket_transport
        client = t.client(tls_server.port, ssl=True)
        with pytest.raises(PusherTransportError, match="certificate") as info:
            t.run(client.trigger("a", "e", "d"))
        assert f"https://127.0.0.1:{tls_server.port}" in str(info.value)
        assert tls_server.requests == []
        if t.is_async:
            assert t.http(client)._open == 0

    def test_ca_certs_verifies_and_keeps_the_connection(
        self, socket_transport, tls_server, certificates
    ):
        t = socket_transport
        tls_server.answer = echo
        client = t.client(tls_server.port, ssl=True, ca_certs=str(certificates.ca))
        results: list[Any] = [t.run(client.trigger("a", "e", i)) for i in range(5)]
        assert results == [{"echo": str(i)} for i in range(5)]
        assert len(tls_server.requests) == 5 and tls_server.connections == 1
        context = t.http(client).ssl_context
        assert context is not None
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2

    def test_host_name_is_verified(self, socket_transport, certificates):
        t = socket_transport
        if certificates.wrong_cert is None or certificates.wrong_key is None:
            pytest.skip("needs the cryptography package")
        server = tls_mini_server(certificates.wrong_cert, certificates.wrong_key)  # other.example
        try:
            client = t.client(server.port, ssl=True, ca_certs=str(certificates.ca))
            with pytest.raises(PusherTransportError, match="certificate") as info:
                t.run(client.trigger("a", "e", "d"))
            assert "127.0.0.1" in str(info.value)
            assert server.requests == []
        finally:
            server.stop()

    def test_plain_http_has_no_context(self, socket_transport, mini):
        t = socket_transport
        assert t.http(t.client(mini.port)).ssl_context is None


class TestGarbage:
    def test_answers_leave_no_reader_for_the_garbage_collector(self, socket_transport, mini):
        # A reader and its parser refer to each other: one per request would leave a cycle
        # per request for the collector.  Each connection keeps one, reset for each answer.
        t = socket_transport
        mini.always(http11())
        client = t.client(mini.port)
        t.run(client.trigger("a", "e", "warm"))

        def send() -> None:
            for i in range(30):
                assert t.run(client.trigger("a", "e", str(i))) == {}

        readers = readers_left_for_gc(send)
        assert mini.connections == 1 and len(mini.requests) == 31
        assert readers == 0, f"{readers} readers left for the garbage collector"

"""``PusherServer``: the local Pusher HTTP API on a real HTTP server in a background thread.

The HTTP side is the standard library's ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1
with keep-alive (one thread per connection), so it runs with the core install only. Each
response is written with a single ``send`` (status line, headers and body together) and
``TCP_NODELAY`` set: two small writes per response would meet Nagle's algorithm and the
client's delayed ACK, and cost ~40 ms a request on a keep-alive connection.

A slow or hostile client cannot hold it: at most ``max_connections`` connections are served at
once (one more is answered ``503`` and closed); each request (head and body) must arrive within
``request_timeout`` seconds of its first byte, or the connection is cut; an idle keep-alive
connection is closed after ``idle_timeout`` seconds.  ``Content-Length`` is read strictly: digits
only, and when it is repeated (two header lines, or a ``42, 42`` list) every value must be the
same, as RFC 9110 §8.6 allows; anything else is a ``400``.
"""

from __future__ import annotations

import http
import io
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, Optional, Union
from urllib.parse import quote

from ._core import (
    MAX_REQUEST_BYTES,
    App,
    Core,
    Fault,
    Limits,
    RecordedEvent,
    RecordedRequest,
    Reply,
)

__all__ = ["DEFAULT_APP_ID", "DEFAULT_KEY", "DEFAULT_SECRET", "PusherServer"]

DEFAULT_APP_ID = "123456"
DEFAULT_KEY = "pusher-fast-key"
DEFAULT_SECRET = "pusher-fast-secret"  # noqa: S105 - a well-known local-only default

DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 60.0

_PHRASES = {s.value: s.phrase for s in http.HTTPStatus}
_DIGITS = re.compile(r"[0-9]{1,18}")
# A connection over the cap: answered at once, its request drained (so closing does not reset
# the connection before the client read the answer) for at most this long, then closed.
_REJECT_LINGER = 1.0
_MAX_LINGERING = 256
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: pusher_fast.testing\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 47\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\n"
    b"Too many connections to pusher_fast.testing now"
)


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes, each request within one deadline from its first byte.

    Between requests the wait is ``idle`` seconds; once a request's first byte arrived, every
    read gets only what is left of ``limit`` seconds, so dripping bytes cannot extend it.
    """

    def __init__(self, sock: socket.socket, idle: float, limit: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle = idle
        self._limit = limit
        self.deadline: Optional[float] = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self._sock.settimeout(self._idle)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive within its deadline")
            self._sock.settimeout(left)
        count = self._sock.recv_into(buffer)
        if self.deadline is None and count:
            self.deadline = time.monotonic() + self._limit
        return count

    def next_request(self) -> None:
        self.deadline = None


_LINGER_RESET = struct.pack("ii", 1, 0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pusher_fast.testing"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the makefile() one: ours replaces it
        self._deadline = _DeadlineReader(
            self.connection, self.server.idle_timeout, self.server.request_timeout
        )
        self.rfile = io.BufferedReader(self._deadline, 65536)

    def handle_one_request(self) -> None:
        self._deadline.next_request()
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded (and optionally logged) by the core

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        core = self.server.core
        body = self._read_body(method)
        if body is None:
            return
        fault = core.take_fault()
        if fault is not None:
            if fault.kind == "stall":
                if self.server.stopping.wait(fault.seconds):
                    self.close_connection = True
                    return
            elif fault.kind == "reset":
                core.record_request(method, self.path, body, 0, "connection reset (injected)")
                self._reset()
                return
            else:
                reply = core.fault_reply(fault)
                core.record_request(method, self.path, body, reply.status, reply.text)
                self._write(reply)
                return
        try:
            reply = core.handle(method, self.path, body)
        except Exception:
            self.close_connection = True
            self._write(Reply(500, b"Internal error in pusher_fast.testing", "text/plain"))
            raise
        self._write(reply)

    def _read_body(self, method: str) -> Optional[bytes]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._refuse(method, 411, "Send a Content-Length: chunked bodies are not supported")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return b""
        lengths = {v.strip() for value in values for v in value.split(",")}
        if len(lengths) != 1 or not _DIGITS.fullmatch(next(iter(lengths))):
            self.close_connection = True
            shown = ", ".join(values)[:100]
            rule = "digits only, and one value when repeated"
            self._refuse(method, 400, f"Invalid Content-Length: {shown!r} ({rule})")
            return None
        length = int(lengths.pop())
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True  # the body is left unread
            self._refuse(method, 413, f"Request body too large: the limit is {MAX_REQUEST_BYTES}")
            return None
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            self._refuse(method, 408, "The request body did not arrive in time")
            return None
        if len(body) < length:  # the client went away (or the server is stopping)
            self.close_connection = True
            return None
        return body

    def _refuse(self, method: str, status: int, message: str) -> None:
        self.server.core.record_request(method, self.path, b"", status, message)
        self._write(Reply(status, message.encode(), "text/plain; charset=utf-8"))

    def _reset(self) -> None:
        self.close_connection = True
        try:
            # SO_LINGER 0: closing sends RST, so the client sees a reset, not a clean close.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass

    def _write(self, reply: Reply) -> None:
        status = reply.status
        lines = [
            f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}",
            "Server: pusher_fast.testing",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
        ]
        for name, value in reply.headers:
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.connection.settimeout(self.server.request_timeout)  # reads left it at their deadline
        self.wfile.write(head + reply.body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        core: Core,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.core = core
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        #: Connections answered 503 over the cap so far.
        self.rejected = 0
        # Rejected sockets being drained before they close: (socket, close-at).
        self._lingering: list[tuple[socket.socket, float]] = []
        self.stopping = threading.Event()
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        # Every connection thread not known to have ended: a thread leaves ``_conns`` (in
        # shutdown_request) a moment before it ends, and stop() must join it all the same.
        self._conn_threads: list[threading.Thread] = []
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves getfqdn(host), a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            full = len(self._conns) >= self.max_connections
        if full:
            self._reject(request)
            return
        # Our own thread registry: stop() must be able to unblock and join every connection.
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"pusher_fast.testing connection {client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._conns[request] = thread
            self._conn_threads = [t for t in self._conn_threads if t.is_alive()]
            self._conn_threads.append(thread)
        thread.start()

    def _reject(self, sock: socket.socket) -> None:
        """Over the cap: 503 without a thread; the socket lingers in the accept loop."""
        self.rejected += 1
        try:
            sock.setblocking(False)
            sock.send(_BUSY)  # a fresh socket's send buffer takes it whole
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self._lingering.append((sock, time.monotonic() + _REJECT_LINGER))
        if len(self._lingering) > _MAX_LINGERING:
            oldest, _ = self._lingering.pop(0)
            oldest.close()

    def service_actions(self) -> None:
        # Runs in the accept loop: drain rejected sockets, close those done or past their time.
        if not self._lingering:
            return
        now = time.monotonic()
        keep: list[tuple[socket.socket, float]] = []
        for sock, close_at in self._lingering:
            done = now >= close_at
            while not done:
                try:
                    if not select.select([sock], [], [], 0)[0]:
                        break
                    done = not sock.recv(65536)
                except OSError:
                    done = True
            if done:
                sock.close()
            else:
                keep.append((sock, close_at))
        self._lingering = keep

    def close_lingering(self) -> None:
        lingering, self._lingering = self._lingering, []
        for sock, _ in lingering:
            sock.close()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if self.stopping.is_set() or isinstance(exc, (ConnectionError, TimeoutError)):
            return  # a client went away, or we are closing its connection
        super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> list[threading.Thread]:
        """Shut down every open connection, join their threads; return those still alive."""
        with self._conn_lock:
            socks = list(self._conns)
            threads = list(self._conn_threads)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]


class PusherServer:
    """A local Pusher Channels HTTP API that behaves like the service.

    It checks signatures, timestamps and body MD5s, enforces the service's limits and answers
    with its status codes; it records what it accepted and simulates channel occupancy and
    presence members, so ``channels_info``/``channel_info``/``users_info`` return what they
    would in production::

        with PusherServer() as server:
            client = pusher_fast.Pusher(**server.client_kwargs())
            client.trigger("orders", "created", {"id": 1})
            assert server.events_for("orders")[0].json() == {"id": 1}

    ``apps`` adds more apps (:class:`App`) next to the one given by ``app_id``/``key``/``secret``.
    """

    def __init__(
        self,
        app_id: str = DEFAULT_APP_ID,
        key: str = DEFAULT_KEY,
        secret: str = DEFAULT_SECRET,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_timestamp_skew: float = 600,
        max_payload_bytes: int = 10240,
        max_batch_size: int = 10,
        max_channels: int = 100,
        encryption_master_key_base64: Optional[str] = None,
        apps: Optional[Sequence[App]] = None,
        disabled: bool = False,
        max_recorded: Optional[int] = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections should be a positive int, got {max_connections!r}")
        for name, value in (("request_timeout", request_timeout), ("idle_timeout", idle_timeout)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} should be a positive number of seconds, got {value!r}")
        self._max_connections = max_connections
        self._request_timeout = float(request_timeout)
        self._idle_timeout = float(idle_timeout)
        primary = App(str(app_id), key, secret, disabled, encryption_master_key_base64)
        limits = Limits(max_timestamp_skew, max_payload_bytes, max_batch_size, max_channels)
        self._core = Core([primary, *(apps or ())], limits, max_recorded=max_recorded)
        self._bind = (host, int(port))
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._lifecycle = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PusherServer:
        """Bind and serve in a background thread (idempotent); returns ``self``."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            httpd = _HTTPServer(
                self._bind,
                self._core,
                self._max_connections,
                self._request_timeout,
                self._idle_timeout,
            )
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"pusher_fast.testing server :{httpd.server_port}",
                daemon=True,
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
            return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection, join every thread (idempotent)."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            if httpd is None or thread is None:
                return
            httpd.stopping.set()  # wakes stalled requests
            httpd.shutdown()  # the accept loop ends; no new connections after this
            thread.join(timeout)
            stuck = httpd.close_connections(timeout)
            httpd.close_lingering()
            httpd.server_close()
            self._httpd = self._thread = None
        if stuck:
            raise RuntimeError(f"{len(stuck)} connection thread(s) did not finish: {stuck}")

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> PusherServer:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"<PusherServer {where} app_id={self.app_id}>"

    # -- addresses and credentials ---------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._bind[0]

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running: call start() or use `with`")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``"""
        return f"http://{self.host}:{self.port}"

    @property
    def app_id(self) -> str:
        return self._core.default_app_id

    @property
    def key(self) -> str:
        return self._core.app().key

    @property
    def secret(self) -> str:
        return self._core.app().secret

    @property
    def apps(self) -> list[App]:
        return self._core.apps

    @property
    def limits(self) -> Limits:
        return self._core.limits

    @property
    def pusher_url(self) -> str:
        """``http://KEY:SECRET@127.0.0.1:PORT/apps/ID``, the ``PUSHER_URL`` format."""
        app = self._core.app()
        key, secret = quote(app.key, safe=""), quote(app.secret, safe="")
        return f"http://{key}:{secret}@{self.host}:{self.port}/apps/{app.app_id}"

    def client_kwargs(self, app_id: Optional[str] = None) -> dict[str, Any]:
        """Keyword arguments for ``pusher_fast.Pusher(**kwargs)`` (or ``pusher.Pusher``)."""
        app = self._core.app(app_id)
        kwargs: dict[str, Any] = {
            "app_id": app.app_id,
            "key": app.key,
            "secret": app.secret,
            "host": self.host,
            "port": self.port,
            "ssl": False,
        }
        if app.encryption_master_key_base64 is not None:
            kwargs["encryption_master_key_base64"] = app.encryption_master_key_base64
        return kwargs

    def set_disabled(self, disabled: bool = True, app_id: Optional[str] = None) -> None:
        """Disable (403 on every authenticated request) or re-enable an app."""
        self._core.set_disabled(disabled, app_id)

    # -- what happened ---------------------------------------------------------------------------

    @property
    def events(self) -> list[RecordedEvent]:
        """Accepted events, oldest first, one per channel triggered (a snapshot)."""
        return self._core.events

    def events_for(
        self,
        channel: Optional[str] = None,
        name: Optional[str] = None,
        app_id: Optional[str] = None,
    ) -> list[RecordedEvent]:
        """Accepted events on ``channel`` and/or named ``name`` (None matches any)."""
        return self._core.events_for(channel, name, app_id)

    def wait_for_events(
        self,
        count: int,
        timeout: float = 5.0,
        channel: Optional[str] = None,
        name: Optional[str] = None,
    ) -> list[RecordedEvent]:
        """Block until ``count`` matching events arrived (or ``timeout``); return them."""
        return self._core.wait_for_events(count, timeout, channel, name)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered (method, path, status, ...), oldest first."""
        return self._core.requests

    @property
    def terminated_users(self) -> list[str]:
        """User ids whose connections were terminated, in order."""
        return self._core.terminated_users

    def clear(self) -> None:
        """Forget recorded events, requests and terminated users (channel state is kept)."""
        self._core.clear()

    # -- simulated channel state -----------------------------------------------------------------

    def add_subscriber(self, channel: str, count: int = 1, *, app_id: Optional[str] = None) -> None:
        """``count`` more connections subscribed to ``channel``."""
        self._core.add_subscriber(channel, count, app_id)

    def remove_subscriber(
        self, channel: str, count: int = 1, *, app_id: Optional[str] = None
    ) -> None:
        self._core.remove_subscriber(channel, count, app_id)

    def add_member(
        self,
        channel: str,
        user_id: str,
        user_info: Any = None,
        *,
        app_id: Optional[str] = None,
    ) -> None:
        """One connection of ``user_id`` joins presence ``channel``."""
        self._core.add_member(channel, user_id, user_info, app_id)

    def remove_member(self, channel: str, user_id: str, *, app_id: Optional[str] = None) -> None:
        """``user_id`` (all its connections) leaves presence ``channel``."""
        self._core.remove_member(channel, user_id, app_id)

    def channels(self, *, app_id: Optional[str] = None) -> dict[str, dict[str, Any]]:
        """The simulated occupied channels: ``{name: {"subscription_count", ...}}``."""
        return self._core.channel_snapshot(app_id)

    def reset_state(self) -> None:
        """Empty every simulated channel."""
        self._core.reset_state()

    # -- faults on demand ------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, status: int = 500, retry_after: Union[float, str, None] = None
    ) -> None:
        """Answer the next ``n`` requests with ``status`` (e.g. 500, 503, 429), unprocessed."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an error status (400-599), got {status}")
        header: Optional[str] = None
        if retry_after is not None:
            if isinstance(retry_after, str):
                header = retry_after
            else:
                header = f"{retry_after:g}" if retry_after % 1 else str(int(retry_after))
        self._core.add_faults(Fault("fail", status=status, retry_after=header), n)

    def stall_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Wait ``seconds`` before processing each of the next ``n`` requests."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._core.add_faults(Fault("stall", seconds=seconds), n)

    def reset_next(self, n: int = 1) -> None:
        """Close the connection of each of the next ``n`` requests without answering."""
        self._core.add_faults(Fault("reset"), n)

    @property
    def pending_faults(self) -> int:
        return self._core.pending_faults

    def clear_faults(self) -> None:
        self._core.clear_faults()

    # -- hooks -----------------------------------------------------------------------------------

    def on_request(self, listener: Optional[Callable[[RecordedRequest], None]]) -> None:
        """Call ``listener(request)`` after each answered request (from server threads)."""
        self._core.listener = listener

    def handle(self, method: str, target: str, body: bytes = b"") -> Reply:
        """Answer one request without HTTP (``target`` is path plus query string)."""
        return self._core.handle(method, target, body)

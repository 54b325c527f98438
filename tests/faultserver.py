"""A small fault-injecting HTTP server on 127.0.0.1 for transport and bulk-sender tests.

Standard library only.  Every request is recorded (arrival order, TCP connection, method, path,
query, body, arrival time, what the server did).  What the server does with each request is
decided, in this order, by: the scripted actions (``server.script(a, b, ...)``, consumed one per
request), then ``server.responder(request) -> action or None``, then ``server.default``.

Actions:

- ``Reply(status=200, body=b"{}", headers=None, delay=0.0, hold=False, trickle=0.0)``: answer.
  ``delay`` sleeps first; ``hold`` waits until ``server.open_gate()`` (or the server stops);
  ``trickle`` writes the body one byte at a time with that many seconds between bytes;
  ``stray`` is written ``stray_delay`` seconds after the answer, unasked (an unsolicited
  answer, a 408 before closing), while the connection is idle on the client's side;
  ``after="close"`` / ``after="reset"`` closes the connection (FIN / RST) right after the
  answer without announcing it (no ``Connection: close``).
- ``Reset(delay=0.0, hold=False)``: close the connection with a TCP RST (``SO_LINGER`` 0),
  no answer.
- ``Close(delay=0.0, hold=False)``: close the connection cleanly (FIN), no answer.

A request counts as *processed* only when it was answered with a 2xx status (``accepted``), which
is what the tests compare a client's account against.

Usage::

    with FaultServer() as server:
        server.script(Reply(500), Reset(), Reply(200))
        client = pusher_fast.Pusher(**server.client_kwargs())
        ...
        assert [r.status for r in server.requests] == [500, None, 200]

``disable_nagle_algorithm`` and a buffered ``wfile`` (``wbufsize = -1``) keep keep-alive
responses in one segment; otherwise Nagle + delayed ACK costs ~40 ms a request.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
APP_ID = "123456"
KEY = "fault-key"
SECRET = "fault-secret"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: Optional[dict[str, str]] = None
    delay: float = 0.0
    hold: bool = False
    trickle: float = 0.0
    trickle_head: bool = False  # trickle the head too (from its first byte), not only the body
    stray: bytes = b""
    stray_delay: float = 0.02
    after: Optional[str] = None  # "close" (FIN) or "reset" (RST) once answered, unannounced


@dataclass(frozen=True)
class Reset:
    delay: float = 0.0
    hold: bool = False


@dataclass(frozen=True)
class Close:
    delay: float = 0.0
    hold: bool = False


Action = Union[Reply, Reset, Close]


def json_reply(status: int, payload: Any, headers: Optional[dict[str, str]] = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), headers)


@dataclass
class Recorded:
    index: int
    conn: int
    method: str
    path: str
    query_string: str
    body: bytes
    t: float
    action: Optional[Action] = None
    status: Optional[int] = None  # None: no answer (reset, close, or still pending)
    done: bool = False
    t_done: float = 0.0

    @property
    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.query_string.split("&") if self.query_string else ():
            k, _, v = item.partition("=")
            out[k] = v
        return out

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def batch(self) -> list[dict[str, Any]]:
        """The events of a ``batch_events`` body."""
        return list(self.json()["batch"])

    def signature_ok(self, secret: str = SECRET) -> bool:
        """The query signs exactly this method, path and body (computed independently)."""
        q = self.query
        if q.get("body_md5") != hashlib.md5(self.body).hexdigest():
            return False
        unsigned = "&".join(f"{k}={q[k]}" for k in sorted(q) if k != "auth_signature")
        expected = hmac.new(
            secret.encode(), f"{self.method}\n{self.path}\n{unsigned}".encode(), hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, q.get("auth_signature", ""))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    timeout = 60.0
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self._gone = False
        self.conn_id = self.server.owner._connection_opened()

    def finish(self) -> None:
        try:
            if not self._gone:
                super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._connection_closed()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        rec = owner._record(self.conn_id, self.command, parts.path, parts.query, body)
        action = owner._decide(rec)
        rec.action = action
        if action.hold:
            owner._gate.wait(owner.max_hold)
        if action.delay:
            owner._stopping.wait(action.delay)
        if isinstance(action, Reset):
            self._reset()
        elif isinstance(action, Close):
            self.close_connection = True
        else:
            self._reply(action, rec)
        rec.t_done = time.monotonic()
        rec.done = True

    def _reset(self) -> None:
        sock = self.connection
        self.close_connection = True
        self._gone = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            sock.close()
        except OSError:
            pass
        self.wfile = io.BytesIO()  # BaseHTTPRequestHandler flushes wfile after the method

    def _reply(self, reply: Reply, rec: Recorded) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body))}
        headers.update(reply.headers or {})
        head = f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('X',))[0]}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        rec.status = reply.status  # decided; a client may still give up before reading it
        try:
            if reply.trickle:
                drip = reply.body
                if reply.trickle_head:
                    drip = head.encode("latin-1") + reply.body
                else:
                    self.wfile.write(head.encode("latin-1"))
                    self.wfile.flush()
                for i in range(len(drip)):
                    self.server.owner._stopping.wait(reply.trickle)
                    self.wfile.write(drip[i : i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(head.encode("latin-1") + reply.body)
                self.wfile.flush()
            if reply.stray:
                self.server.owner._stopping.wait(reply.stray_delay)
                self.wfile.write(reply.stray)
                self.wfile.flush()
            if reply.after == "reset":
                self._reset()
            elif reply.after == "close":
                self.close_connection = True
        except OSError:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256  # the default backlog of 5 drops SYNs of concurrent clients
    owner: FaultServer


class FaultServer:
    """See the module docstring."""

    def __init__(self, default: Action | None = None, *, max_hold: float = 30.0) -> None:
        self.default: Action = default or Reply()
        self.responder: Optional[Callable[[Recorded], Optional[Action]]] = None
        self.max_hold = max_hold
        self.requests: list[Recorded] = []
        self.connections_opened = 0
        self.connections_open = 0
        self._script: deque[Action] = deque()
        self._lock = threading.Condition()
        self._gate = threading.Event()
        self._stopping = threading.Event()
        self._httpd = _Server((LOOPBACK, 0), _Handler)
        self._httpd.owner = self
        self.host = LOOPBACK
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # -- configuration -----------------------------------------------------------------------
    def script(self, *actions: Action) -> None:
        with self._lock:
            self._script.extend(actions)

    def open_gate(self) -> None:
        """Release every held request (and let later ``hold`` actions through)."""
        self._gate.set()

    def close_gate(self) -> None:
        self._gate.clear()

    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "app_id": APP_ID,
            "key": KEY,
            "secret": SECRET,
            "host": self.host,
            "port": self.port,
            "ssl": False,
        }
        kwargs.update(overrides)
        return kwargs

    # -- what happened ----------------------------------------------------------------------
    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Recorded]:
        """Wait until at least ``n`` requests arrived; returns them all (raises on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.requests)} requests arrived, wanted {n}")
                self._lock.wait(left)
            return list(self.requests)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every request that arrived has been dealt with."""
        deadline = time.monotonic() + timeout
        while not all(r.done for r in list(self.requests)):
            if time.monotonic() > deadline:
                raise TimeoutError("requests still pending")
            time.sleep(0.01)

    def accepted_events(self) -> list[dict[str, Any]]:
        """The batch events of every request answered 2xx, in arrival order."""
        out: list[dict[str, Any]] = []
        for r in list(self.requests):
            if r.accepted and r.path.endswith("/batch_events"):
                out.extend(r.batch())
        return out

    def batch_sizes(self) -> list[int]:
        return [len(r.batch()) for r in list(self.requests) if r.path.endswith("/batch_events")]

    # -- internals ---------------------------------------------------------------------------
    def _connection_opened(self) -> int:
        with self._lock:
            self.connections_opened += 1
            self.connections_open += 1
            return self.connections_opened

    def _connection_closed(self) -> None:
        with self._lock:
            self.connections_open -= 1
            self._lock.notify_all()

    def _record(self, conn: int, method: str, path: str, query: str, body: bytes) -> Recorded:
        with self._lock:
            rec = Recorded(len(self.requests), conn, method, path, query, body, time.monotonic())
            self.requests.append(rec)
            self._lock.notify_all()
            return rec

    def _decide(self, rec: Recorded) -> Action:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            action = self.responder(rec)
            if action is not None:
                return action
        return self.default

    # -- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        self._gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Account:
    """What the server processed, per event sequence number (``data["seq"]``)."""

    accepted: dict[int, int] = field(default_factory=dict)  # seq -> times accepted

    @classmethod
    def of(cls, server: FaultServer) -> Account:
        acc = cls()
        for ev in server.accepted_events():
            seq = json.loads(ev["data"])["seq"]
            acc.accepted[seq] = acc.accepted.get(seq, 0) + 1
        return acc

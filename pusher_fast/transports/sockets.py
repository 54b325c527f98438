"""The sync socket transport: keep-alive HTTP/1.1 on plain sockets, the wire format from
``_http11`` (one ``sendall`` per request, answers parsed by httptools), a small
thread-safe LIFO pool that a forked child starts afresh, and one deadline per request.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Optional

from .._http11 import ProtocolError, ResponseHeaders, ResponseReader
from .._observe import CONNECTION, DEBUG, debug_enabled, log_resend
from .._request import Request
from . import base
from .base import PolicyTransport, Raw, SocketSetup, process_response

if TYPE_CHECKING:
    from ..client import Pusher

#: Errors that mean "no (complete) answer": every one discards the connection.
_NO_ANSWER = (OSError, ProtocolError)

# socket.timeout is TimeoutError from Python 3.10 only.
_TIMEOUTS = (TimeoutError, socket.timeout)
_READ_BUFFER = 65536
_monotonic = time.monotonic
_HAS_POLL = hasattr(select, "poll")


#: The keywords :class:`SocketSetup` takes (TLS, proxies, the delivery policy).
_SHARED_OPTIONS = frozenset(
    ("ca_certs", "retries", "at_least_once", "verify", "cert", "proxies", "on_request")
)


#: What an exchange returns: the answer's status, body and header fields.
_Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


class _Connection:
    __slots__ = ("generation", "poller", "reader", "served", "sock")

    def __init__(self, sock: socket.socket, generation: int) -> None:
        self.sock = sock
        self.generation = generation
        self.served = 0
        self.poller: Any = None
        #: The reader of this connection's last answer (reused for the next).
        self.reader: Optional[ResponseReader] = None
        if _HAS_POLL:
            self.poller = select.poll()
            self.poller.register(sock, select.POLLIN)

    def dropped(self) -> bool:
        """True when the idle connection is readable: the server closed it (or broke protocol)."""
        try:
            if self.poller is not None:
                return bool(self.poller.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass  # closing a broken socket: nothing more to do


class SocketTransport(SocketSetup, PolicyTransport):
    """Sends requests over a pool of keep-alive sockets.

    Options: ``maxsize`` (idle connections kept, default 10), ``ca_certs`` (a
    CA bundle to verify the server with instead of the system store), requests'
    ``verify`` and ``cert`` (:mod:`pusher_fast._options`), ``proxies`` as long
    as none applies to the client's host, ``retries`` and ``at_least_once`` (the
    delivery policy, :mod:`pusher_fast._retry`), ``on_request`` (a hook called after each
    attempt, :mod:`pusher_fast._observe`).  Proxies are not used:
    :func:`default_backend` picks the urllib3 transport when one applies.
    """

    _name = "SocketTransport"
    _instead = "Urllib3Backend (default_backend picks it when a proxy applies)"

    def __init__(self, client: Pusher, *, maxsize: int = 10, **options: Any) -> None:
        unknown = set(options) - _SHARED_OPTIONS
        if unknown:
            raise TypeError(
                f"SocketTransport does not take {', '.join(sorted(unknown))}: "
                "those are urllib3 options (Urllib3Backend; default_backend picks it for them)"
            )
        super().__init__(client, **options)
        base.check_positive("maxsize", maxsize)
        self.maxsize = maxsize
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        _BACKENDS.add(self)

    # -- the backend interface ------------------------------------------------------------

    def send_request(self, request: Request) -> Any:
        """Send ``request``; the parsed JSON, or the ``PusherError`` for the answer."""
        if not self.policy.total and self.on_request is None and not debug_enabled(DEBUG):
            status, body, _ = self._send(request)
            return process_response(status, body)
        return super().send_request(request)

    def send_once(self, request: Request) -> Raw:
        """One attempt, without ``retries=`` (the bulk senders apply their own policy)."""
        status, body, fields = self._send(request)
        return status, body, ResponseHeaders(fields)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back.

        The backend stays usable: a later request opens a new connection.
        """
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for conn in idle:
            conn.close()

    def __del__(self) -> None:
        # A client dropped without close(): its idle sockets go with it, not to the GC later
        # (where each would be an "unclosed socket" ResourceWarning).
        idle = getattr(self, "_idle", None)
        if idle:
            self._idle = []
            for conn in idle:
                conn.close()

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections (closing our copies of the
        descriptors sends nothing), and the lock another thread may have held."""
        self._lock = threading.Lock()
        idle, self._idle = self._idle, []
        self._generation += 1
        for conn in idle:
            conn.close()

    # -- sending ---------------------------------------------------------------------------

    def _send(self, request: Request) -> _Answer:
        data = self._encoder.encode(request)
        # One deadline for the whole request: connecting, sending and the complete answer
        # (a server dripping bytes cannot stretch it, as a per-read timeout would let it).
        deadline = _monotonic() + self.timeout
        conn = self._checkout(request, deadline)
        try:
            return self._exchange(conn, data, request, deadline)
        except base.NotWritten:
            pass
        with self._lock:
            self.stale_resends += 1
        log_resend(request)
        conn = self._open(request, deadline)
        return self._exchange(conn, data, request, deadline)  # fresh: never _NotWritten

    def _exchange(
        self, conn: _Connection, data: bytes, request: Request, deadline: float
    ) -> _Answer:
        sock = conn.sock
        if (box := CONNECTION.get()) is not None:  # an observed attempt: reused or new?
            box.append(conn.served > 0)
        # One reader per connection, reset for each answer (no parser made per request).
        reader = conn.reader
        reader = conn.reader = ResponseReader() if reader is None else reader.next_answer()
        send_error: OSError | None = None
        written = False
        try:
            left = _remaining(deadline)
            try:
                current = sock.gettimeout()
                if current is None or abs(current - left) > 0.005:  # else: as good, no syscall
                    sock.settimeout(left)
                sock.sendall(data)  # the socket timeout bounds the whole sendall
                written = True
            except base.CONNECTION_CLOSED as exc:
                # The server may have answered before closing (a 413 for a body it will not
                # read): look for that answer before calling it a failure.
                send_error = exc
            recv = sock.recv
            # The socket's timeout is what was left before sending: set it again (a system
            # call) only if sending took a noticeable part of it, and before later reads.
            reset = deadline - _monotonic() < left - 0.005
            while True:
                try:
                    if reset:
                        sock.settimeout(_remaining(deadline))
                    chunk = recv(_READ_BUFFER)
                    reset = True
                except _NO_ANSWER:
                    if send_error is not None and not reader.started:
                        raise send_error from None
                    raise
                if not chunk and not reader.started:
                    raise send_error or base.ClosedByServer(
                        "the server closed the connection without answering"
                    )
                if reader.feed(chunk):
                    break
        except BaseException as exc:
            conn.close()
            if not isinstance(exc, _NO_ANSWER):
                raise
            # Fully written (into the kernel: the server may have read it) or answered in
            # part: it may have been processed.  Otherwise it surely was not.
            ambiguous = written or reader.started
            if not ambiguous and conn.served and not isinstance(exc, _TIMEOUTS):
                raise base.NotWritten from exc  # a stale kept-alive connection: send once more
            raise base.connection_error(request, exc, ambiguous) from exc
        conn.served += 1
        # Read before the connection goes back to the pool, where another thread may take it
        # and reset its reader.
        answer = (reader.status, reader.body, reader.fields)
        if send_error is not None or not reader.keep_alive:
            conn.close()
        else:
            self._checkin(conn)
        return answer

    # -- the pool --------------------------------------------------------------------------

    def _checkout(self, request: Request, deadline: float) -> _Connection:
        lock, idle = self._lock, self._idle
        while True:
            with lock:
                if not idle:
                    break
                conn = idle.pop()
            if conn.dropped():
                conn.close()
                continue
            return conn
        return self._open(request, deadline)

    def _checkin(self, conn: _Connection) -> None:
        with self._lock:
            if conn.generation == self._generation and len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def _open(self, request: Request, deadline: float) -> _Connection:
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((self._host, self._port), _remaining(deadline))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock.settimeout(_remaining(deadline))  # bounds the TLS handshake
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self._host)
        except BaseException as exc:
            if sock is not None:
                sock.close()
            if isinstance(exc, _NO_ANSWER):
                raise base.connection_error(request, exc) from exc
            raise
        with self._lock:
            self.connections_opened += 1
            generation = self._generation
        return _Connection(sock, generation)


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; past it, the request has timed out."""
    left = deadline - _monotonic()
    if left <= 0:
        raise TimeoutError("timed out: the request's deadline passed")
    return left


# Every live backend, so that a forked child can drop the connections it inherited.
_BACKENDS: weakref.WeakSet[SocketTransport] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for backend in list(_BACKENDS):
        backend._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)

#: The name this transport had when it was built on ``http.client`` (kept for imports).
HTTPClientBackend = SocketTransport

__all__ = ["HTTPClientBackend", "SocketTransport"]

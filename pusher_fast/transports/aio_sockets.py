"""The asyncio socket transport: keep-alive HTTP/1.1 on asyncio protocols (no third-party
client), the wire format from ``_http11`` read straight from ``data_received``, a pool
per client and event loop bounded by ``limit``, and one deadline per request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select
import weakref
from typing import TYPE_CHECKING, Any, Optional

from .._http11 import ProtocolError, ResponseReader
from .._observe import CONNECTION, DEBUG, debug_enabled, log_resend
from .._request import Request
from . import base
from .base import AsyncPolicyTransport, Raw, SocketSetup, process_response

if TYPE_CHECKING:
    from ..client import Pusher


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request on it at a time."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.reader: Optional[ResponseReader] = None  # the current request's, else None
        #: The last complete answer's reader, reset for the next (no parser made per request).
        self.spare: Optional[ResponseReader] = None
        self.waiter: Optional[asyncio.Future[None]] = None
        self.closed = False
        self.served = 0
        self.generation = 0
        self.sock: Any = None
        self.fd = -1
        self.poller: Any = None
        #: The deadline of the request this connection was opened for (None once taken).
        self.deadline: Optional[float] = None
        #: Whether the current request was handed whole to the kernel (it may be processed).
        self.written = False
        #: Whether any byte of the current (or last) request's answer arrived.
        self.answered = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sock = transport.get_extra_info("socket")
        # Told (pause_writing / resume_writing) whenever bytes wait in the transport's
        # buffer and when it empties: that is when a request is fully written.
        transport.set_write_buffer_limits(high=0)  # type: ignore[attr-defined]
        if self.sock is not None:
            self.fd = self.sock.fileno()
            if hasattr(select, "poll"):  # select() cannot take descriptors >= FD_SETSIZE
                self.poller = select.poll()
                self.poller.register(self.fd, select.POLLIN)

    def pause_writing(self) -> None:
        pass  # the request is still in the buffer: ``written`` stays False

    def resume_writing(self) -> None:
        if self.reader is not None:
            self.written = True

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        if reader is None or reader.complete:
            # Bytes nobody asked for (an unsolicited answer, a 408 before closing): they
            # must never be read as the next request's answer, so the connection goes.
            self.close()
            return
        try:
            done = reader.feed(data)
        except ProtocolError as exc:
            self._finish(exc)
            return
        if done:
            self._finish(None)

    def eof_received(self) -> bool:
        reader = self.reader
        if reader is not None:
            if not reader.started:
                self._finish(base.ClosedByServer("closed by the server without an answer"))
            else:
                try:
                    reader.feed(b"")  # completes a body that runs to the end of the connection
                    self._finish(None)
                except ProtocolError as exc:
                    self._finish(exc)
        self.closed = True
        return False  # let the transport close itself

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        reader = self.reader
        if reader is not None:
            if exc is None or (isinstance(exc, base.CONNECTION_CLOSED) and not reader.started):
                # Closed (FIN or RST) before any byte of answer: a stale connection if
                # it served before, and the request was not read.
                exc = base.ClosedByServer(
                    str(exc) if exc else "closed by the server without an answer"
                )
            self._finish(exc)

    # -- requests ----------------------------------------------------------------------------

    def _finish(self, error: Optional[BaseException]) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _timed_out(self) -> None:
        self._finish(TimeoutError("timed out waiting for the answer"))
        self.close()

    async def exchange(self, data: bytes, timeout: float) -> ResponseReader:
        """Write a request, return its complete answer (raises OSError/ProtocolError)."""
        transport = self.transport
        if transport is None or self.closed:
            raise base.ClosedByServer("closed by the server before the request was written")
        loop = asyncio.get_running_loop()
        spare = self.spare
        reader = self.reader = ResponseReader() if spare is None else spare.next_answer()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, self._timed_out)
        self.written = False
        try:
            transport.write(data)
            # Written unless the write failed (the transport is closing) or bytes wait
            # in its buffer (then resume_writing says when they are gone).
            self.written = not transport.is_closing() and not transport.get_write_buffer_size()
            await waiter
        finally:
            timer.cancel()
            self.answered = reader.started
            self.reader = None
            self.waiter = None
            if not reader.complete:  # failed or cancelled: its answer must not be read later
                self.close()
        self.served += 1
        if not reader.keep_alive:
            self.close()
        else:
            self.spare = reader  # read by the caller before this connection serves again
        return reader

    def dropped(self) -> bool:
        """True when the idle connection is unusable: closed, or bytes (or EOF) wait on its
        socket that the event loop has not delivered yet (the caller kept the loop busy)."""
        if self.closed:
            return True
        if self.fd < 0:
            return False
        try:
            if self.poller is not None:
                return bool(self.poller.poll(0))
            return bool(select.select([self.fd], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.closed = True
        transport = self.transport
        if transport is not None:
            try:
                transport.abort()
            except RuntimeError:
                # Its event loop is closed, and a closed loop leaves its sockets open.
                base.close_transport_without_loop(transport)


class AsyncSocketTransport(SocketSetup, AsyncPolicyTransport):
    """Sends requests over a pool of keep-alive asyncio connections (see the module doc).

    Options: ``limit`` (connections open at once, default 100), ``ca_certs`` (a CA bundle
    to verify the server with instead of the system store), ``retries`` and
    ``at_least_once`` (the delivery policy, as for the sync client).
    """

    _name = "AsyncSocketTransport"
    _instead = "AsyncIOBackend (default_async_backend picks it when a proxy applies)"

    def __init__(self, client: Pusher, *, limit: int = 100, **options: Any) -> None:
        super().__init__(client, **options)
        base.check_positive("limit", limit)
        self.limit = limit
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: collections.deque[asyncio.Future[Optional[_Connection]]] = (
            collections.deque()
        )
        self._shutdown_guard: Any = None

    # -- the backend interface ---------------------------------------------------------------

    async def send_request(self, request: Request) -> Any:
        """Send ``request``; the parsed JSON, or the ``PusherError`` for the answer."""
        if not self.policy.total and self.on_request is None and not debug_enabled(DEBUG):
            reader = await self._send(request)
            return process_response(reader.status, reader.body)
        return await super().send_request(request)

    async def send_once(self, request: Request) -> Raw:
        """One attempt, without ``retries=`` (the bulk senders apply their own policy)."""
        reader = await self._send(request)
        return reader.status, reader.body, reader.headers

    async def aclose(self) -> None:
        """Close the idle connections; those in use close when their request ends.

        The backend stays usable: a later request opens a new connection.
        """
        idle, self._idle = self._idle, []
        self._generation += 1
        self._open -= len(idle)
        for conn in idle:
            conn.close()
        for _ in idle:
            self._wake()

    async def __aenter__(self) -> AsyncSocketTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, request: Request) -> ResponseReader:
        data = self._encoder.encode(request)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # checked inline: no coroutine per request
            await self._adopt_loop(loop)
        # One deadline for connecting, writing and the complete answer (waiting for a pool
        # slot is not counted: no byte has left then).
        conn = await self._checkout(request)
        deadline, conn.deadline = conn.deadline, None
        if deadline is None:  # a kept-alive connection: the request starts now
            deadline = loop.time() + self.timeout
        try:
            return await self._exchange(conn, data, request, deadline)
        except base.NotWritten:
            pass
        self.stale_resends += 1
        log_resend(request)
        conn = await self._checkout(request, fresh=True, deadline=deadline)
        return await self._exchange(conn, data, request, deadline)  # fresh: never stale

    async def _exchange(
        self, conn: _Connection, data: bytes, request: Request, deadline: float
    ) -> ResponseReader:
        reused = conn.served > 0
        if (box := CONNECTION.get()) is not None:
            box.append(reused)
        conn.written = conn.answered = False
        try:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("timed out: the request's deadline passed")
            return await conn.exchange(data, left)
        except (OSError, ProtocolError) as exc:
            # Fully written, or answered in part: it may have been processed.
            ambiguous = conn.written or conn.answered
            if not ambiguous and reused and not isinstance(exc, TimeoutError):
                raise base.NotWritten from exc  # a stale kept-alive connection: send once more
            raise base.connection_error(request, exc, ambiguous) from exc
        finally:
            self._release(conn)

    # -- the pool ----------------------------------------------------------------------------

    async def _adopt_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections belong to the loop that made them: close the old loop's (its
        shutdown normally did) and start afresh in ``loop``."""
        for conn in self._idle:
            conn.close()
        self._idle = []
        self._open = 0
        self._waiting = collections.deque()
        self._generation += 1
        self._loop = loop
        # Closed by asyncio.run() as it shuts the loop down, before the loop is closed
        # (a closed loop can no longer close its connections cleanly).  Weakly: the
        # loop must not keep a dropped client alive.
        this = weakref.ref(self)

        async def close_at_shutdown() -> None:
            transport = this()
            if transport is not None and transport._loop is loop:
                await transport.aclose()

        self._shutdown_guard = await base.close_at_loop_shutdown(close_at_shutdown)

    def __del__(self) -> None:
        # Dropped without aclose(): close the idle connections now rather than leave
        # them to the collector, which warns (the loop may be closed: see _Connection.close).
        for conn in getattr(self, "_idle", ()):
            with contextlib.suppress(Exception):  # nothing can be raised from __del__
                conn.close()

    async def _checkout(
        self, request: Request, fresh: bool = False, deadline: Optional[float] = None
    ) -> _Connection:
        """A connection for one request: an idle one (unless ``fresh``), a new one while
        fewer than ``limit`` are open, else the first one to come back (first come, first
        served: a released connection, or the slot of a closed one, is handed to the
        longest-waiting request, never taken by a later one)."""
        idle = self._idle
        while not fresh and idle:
            conn = idle.pop()
            if not conn.dropped():
                return conn
            conn.close()
            self._open -= 1
        if self._open < self.limit and not self._waiting:
            self._open += 1
            return await self._connect_counted(request, deadline)
        waiter: asyncio.Future[Optional[_Connection]] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            handed_to_us = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()  # handed to us as we were cancelled: pass it on
                if handed is not None:
                    self._release(handed)
                else:
                    self._open -= 1
                    self._wake()
            raise
        if handed_to_us is None:
            return await self._connect_counted(request, deadline)  # a slot was reserved for us
        if fresh or handed_to_us.dropped():
            handed_to_us.close()  # its slot is ours: open a new connection in it
            return await self._connect_counted(request, deadline)
        return handed_to_us

    async def _connect_counted(self, request: Request, deadline: Optional[float]) -> _Connection:
        """Open a connection in a slot already counted in ``_open``; the request's deadline
        (``deadline``, or from now) goes with it."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            conn = await self._connect(request, deadline)
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        conn.generation = self._generation
        conn.deadline = deadline
        return conn

    async def _connect(self, request: Request, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self.ssl_context
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if context is not None else None,
                ),
                max(0.0, deadline - loop.time()),
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise base.connection_error(request, exc) from exc
        self.connections_opened += 1
        return conn

    def _release(self, conn: _Connection) -> None:
        """A request is done with ``conn``: hand it to the first waiter, or keep it idle."""
        if not conn.closed and conn.generation != self._generation:
            conn.close()  # aclose() was called while it was in use
        if conn.closed:
            self._open -= 1
            self._wake()
            return
        waiting = self._waiting
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _wake(self) -> None:
        """A slot is free: reserve it for the first waiter, which opens a connection in it."""
        waiting = self._waiting
        while waiting and self._open < self.limit:
            waiter = waiting.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return


#: The earlier name (it read as if it were the aiohttp one; kept for imports).
AsyncHTTPBackend = AsyncSocketTransport

__all__ = ["AsyncHTTPBackend", "AsyncSocketTransport"]

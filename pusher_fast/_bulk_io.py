"""The sync bulk sender's I/O engine for the default socket transport.

One thread drives up to ``concurrency`` keep-alive connections without blocking (a
selector), instead of one blocking thread per connection: the producer then shares the GIL
with one thread, not ``concurrency`` of them, and each answer costs one hand-over of the GIL
instead of several (measured: less CPU per event than the threads, and steadier).

It takes batches as a worker thread does (:meth:`BulkSender._next_batch`'s rules: the queue,
then the open batch before going idle, lingering on a partial batch), sends each attempt as
the socket transport's ``send_once`` would (the same bytes, one deadline per request, a stale
kept-alive connection resent once on a new one, ambiguous when fully written or answered in
part), reports it to ``on_request``, and settles through the sender's policy and account.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import selectors
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Optional

from ._http11 import ProtocolError, ResponseReader
from ._observe import ATTEMPT, DEBUG, _report, debug_enabled, log_resend
from ._request import Request
from ._retry import Outcome, classify, error_outcome
from .errors import PusherError
from .transports import base
from .transports.sockets import _Connection

if TYPE_CHECKING:
    from ._events import Item
    from .bulk import BulkSender
    from .transports.sockets import SocketTransport

_log = logging.getLogger("pusher_fast.bulk")
_monotonic = time.monotonic
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_READ_BUFFER = 65536
#: What a non-blocking socket raises when it must wait (TLS: for the other direction too).
_WAIT_READ = (BlockingIOError, ssl.SSLWantReadError)
_WAIT_WRITE = (ssl.SSLWantWriteError,)
_NO_ANSWER = (OSError, ProtocolError)
_NEVER = float("inf")


class _Exchange:
    """One attempt of one batch on one connection."""

    __slots__ = (
        "attempt",
        "conn",
        "data",
        "deadline",
        "ident",
        "items",
        "reader",
        "request",
        "send_error",
        "sent",
        "started",
        "waiting_for",
        "written",
    )

    def __init__(self, ident: int, items: list[Item], attempt: int) -> None:
        self.ident = ident
        self.items = items
        self.attempt = attempt
        self.conn: Optional[_Connection] = None
        self.request: Any = None
        self.data = b""
        self.sent = 0
        self.written = False
        self.send_error: Optional[OSError] = None
        self.reader: Any = None  # a ResponseReader per connection tried
        self.deadline = 0.0
        self.started = 0.0
        self.waiting_for = 0


class IOEngine:
    """Runs in the sender's one I/O thread (:meth:`run`)."""

    def __init__(self, sender: BulkSender, transport: SocketTransport, concurrency: int) -> None:
        self.sender = sender
        self.transport = transport
        self.concurrency = concurrency
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, _READ, None)
        #: True while the engine may sleep in select(): a producer posting work wakes it.
        self.sleeping = False
        self._idle_conns: list[_Connection] = []
        self._active: dict[_Connection, _Exchange] = {}
        self._starting: list[_Exchange] = []  # attempts due now, no connection yet
        # (when, order, exchange): retries after their backoff, and partial batches lingering.
        self._timers: list[tuple[float, int, _Exchange, bool]] = []
        self._order = itertools.count()
        self._idents = itertools.count(1)
        self._stopping = False
        self._closed = False
        #: Batches waiting for a retry: each keeps its connection slot meanwhile, as a
        #: worker thread does (with concurrency=1, batches stay in order).
        self._retrying = 0
        self._earliest = _NEVER  # the earliest deadline in _active, as _timeout saw it
        from .bulk import _STOP  # bulk imports this module when it makes a sender

        self._stop = _STOP

    # -- the producer's side -------------------------------------------------------------------

    def wake(self) -> None:
        """Called after posting work: interrupt select() if the engine sleeps in it."""
        if self.sleeping:
            self.sleeping = False
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass  # the pipe is full (already woken) or closed (the engine has ended)

    def interrupt(self) -> None:
        """Wake the engine whatever it waits for (shutdown has timed out)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # already woken, or ended

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # never lose a batch, whatever happened
            _log.exception("bulk: the I/O engine failed; carrying on with one worker thread")
            self._fail_all(f"unexpected error: {exc!r}")
            self._shutdown()
            if isinstance(exc, Exception) and not self._stopping:
                self.sender._work()  # the queue still has a consumer
            return
        self._shutdown()

    def _loop(self) -> None:
        sender = self.sender
        while True:
            if sender._abandon.is_set():
                self._abandon()
                return
            self._take_batches()
            self._start_due()
            busy = self._active or self._starting or self._timers
            if self._stopping and not busy:
                return
            timeout = self._timeout()
            if not busy:
                if not self._go_idle():
                    continue  # work turned up while going idle
                timeout = None
            elif not self._stopping and self._slots_used() < self.concurrency:
                # Room for more: idle as a free worker thread is, so the producer posts a
                # partial batch at once (a trickle is not held back by a slow request), and
                # whatever is posted from now on wakes the select() below.
                with sender._qlock:
                    if not sender._queue.empty():
                        continue
                    sender._idle = 1
                    self.sleeping = True
            for key, _ in self.selector.select(timeout):
                conn = key.data
                if conn is None:
                    self._drain_wake()
                else:
                    self._progress(conn)
            self.sleeping = False
            self._expire()

    def _slots_used(self) -> int:
        return len(self._active) + len(self._starting) + self._retrying

    def _timeout(self) -> Optional[float]:
        """Seconds until the next deadline or timer, None when there is none.

        Notes the earliest deadline for :meth:`_expire` (no attempt that starts before it
        runs has an earlier one: a resend keeps its attempt's deadline)."""
        earliest = _NEVER
        for exchange in self._active.values():
            if exchange.deadline < earliest:
                earliest = exchange.deadline
        self._earliest = earliest
        when = earliest
        if self._timers and self._timers[0][0] < when:
            when = self._timers[0][0]
        if when == _NEVER:
            return None
        return max(0.0, when - _monotonic())

    def _go_idle(self) -> bool:
        """No work: take the open batch (as a worker would), else mark the engine idle for
        the producer (it then posts a partial batch at once) and sleep.  False when work
        turned up."""
        sender = self.sender
        with sender._qlock:  # batches are posted under it: the queue is known empty
            if not sender._queue.empty():
                return False
            if sender._open and not self._stopping:
                batch, sender._open = sender._open, []  # the oldest events
                sender._taken(batch)
                self._begin(batch)
                return False
            sender._idle = 1
            self.sleeping = True
        return True

    def _take_batches(self) -> None:
        """Batches from the queue while there are free connections (and the stop marker).

        The queue's lock and the account's are taken once for all the batches taken."""
        if self._stopping:
            return
        sender = self.sender
        get = sender._queue.get_nowait
        size = sender.batch_size
        free = self.concurrency - self._slots_used()
        taken: list[list[Item]] = []
        stop = False
        while free > 0:
            try:
                item = get()
            except queue.Empty:
                break
            if item is self._stop:
                self._stopping = stop = True
                break
            free -= 1
            if len(item) < size and sender.linger > 0:
                # A partial batch posted for an idle engine: let events added meanwhile join.
                exchange = _Exchange(0, item, 1)
                heapq.heappush(
                    self._timers, (_monotonic() + sender.linger, next(self._order), exchange, True)
                )
                self._starting.append(exchange)  # holds a connection slot while it lingers
                continue
            taken.append(item)
        if taken:
            with sender._qlock:
                for item in taken:
                    if len(item) < size:
                        sender._partial_posted = False
                    sender._taken(item)
            self._begin_all(taken)
        if not stop:
            return
        if any(lingered for _, _, _, lingered in self._timers):
            # No event can come any more: lingering batches take what they can of
            # the open one now, rather than after their linger.
            self._timers = [
                (0.0 if lingered else when, order, exchange, lingered)
                for when, order, exchange, lingered in self._timers
            ]
            heapq.heapify(self._timers)
            self._start_due()
        with sender._qlock:
            if not sender._open:
                return
            batch, sender._open = sender._open, []
            sender._taken(batch)
        self._begin(batch)  # the last partial batch

    def _begin(self, items: list[Item]) -> None:
        """A batch taken: registered in flight, its first attempt due now."""
        self._begin_all([items])

    def _begin_all(self, batches: list[list[Item]]) -> None:
        """:meth:`_begin` for each of ``batches``, in order, under one lock."""
        exchanges = [_Exchange(next(self._idents), items, 1) for items in batches]
        in_flight = self.sender._in_flight
        with self.sender._lock:
            for exchange in exchanges:
                in_flight[exchange.ident] = exchange.items
        self._starting += exchanges

    def _start_due(self) -> None:
        """Timers that are due (lingering batches complete, retries), then every attempt due."""
        sender = self.sender
        now = _monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, exchange, lingered = heapq.heappop(timers)
            if lingered:
                self._starting.remove(exchange)
                batch = exchange.items
                with sender._qlock:
                    room = sender.batch_size - len(batch)
                    batch.extend(sender._open[:room])
                    del sender._open[:room]
                    sender._partial_posted = False
                    sender._taken(batch)
                self._begin(batch)
            else:
                self._retrying -= 1
                self._starting.append(exchange)
        starting, self._starting = self._starting, []
        for exchange in starting:
            if exchange.ident == 0:  # still lingering
                self._starting.append(exchange)
                continue
            try:
                self._start(exchange)
            except BaseException as exc:
                self._unexpected(exchange, exc)

    # -- one attempt ------------------------------------------------------------------------

    def _start(self, exchange: _Exchange) -> None:
        sender = self.sender
        if sender._abandon.is_set():
            sender._settle(
                exchange.ident, exchange.items, False, "not sent: shutdown timed out", None,
                exchange.attempt - 1,
            )  # fmt: skip
            return
        transport = self.transport
        exchange.request = request = sender._encoder.request(exchange.items)
        exchange.started = time.perf_counter()
        exchange.deadline = _monotonic() + transport.timeout
        try:
            exchange.data = transport._encoder.encode(request)
            conn = self._checkout(request, exchange.deadline)
        except PusherError as exc:
            self._observe(exchange, None, exc, None)
            self._outcome(exchange, error_outcome(exc))
            return
        self._send_on(exchange, conn)

    def _checkout(self, request: Request, deadline: float) -> _Connection:
        idle = self._idle_conns
        while idle:
            conn = idle.pop()
            if not conn.dropped():
                return conn
            self._discard(conn)
        return self._open(request, deadline)

    def _open(self, request: Request, deadline: float) -> _Connection:
        # Connecting (and the TLS handshake) blocks this thread, within the deadline: rare,
        # the connections are kept alive.
        conn = self.transport._open(request, deadline)
        conn.sock.setblocking(False)
        # Registered for reading as long as it lives: an idle connection that turns
        # readable was closed by the server (or sent what nobody asked for), and goes.
        self.selector.register(conn.sock, _READ, conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass  # not registered (or its descriptor is already closed)
        conn.close()

    def _send_on(self, exchange: _Exchange, conn: _Connection) -> None:
        exchange.conn = conn
        exchange.sent = 0
        exchange.written = False
        exchange.send_error = None
        # One reader per connection, reset for each answer (no parser made per request).
        reader = conn.reader
        exchange.reader = conn.reader = ResponseReader() if reader is None else reader.next_answer()
        self._active[conn] = exchange
        exchange.waiting_for = _READ
        self._write(exchange)

    def _wait(self, exchange: _Exchange, mask: int) -> None:
        """Wait for the socket to be writable (``_WRITE``) or readable only (``_READ``)."""
        conn = exchange.conn
        assert conn is not None
        mask |= _READ
        if exchange.waiting_for != mask:
            self.selector.modify(conn.sock, mask, conn)
            exchange.waiting_for = mask

    def _write(self, exchange: _Exchange) -> None:
        conn = exchange.conn
        assert conn is not None
        data = exchange.data
        try:
            while exchange.sent < len(data):
                # The rest of a partly written request as a view, not a copy.
                rest = memoryview(data)[exchange.sent :] if exchange.sent else data
                exchange.sent += conn.sock.send(rest)
        except (BlockingIOError, *_WAIT_WRITE):
            self._wait(exchange, _WRITE)
            return
        except ssl.SSLWantReadError:
            self._wait(exchange, _READ)
            return
        except base.CONNECTION_CLOSED as exc:
            # The server may have answered before closing (a 413 for a body it will not
            # read): look for that answer before calling it a failure.
            exchange.send_error = exc
        except _NO_ANSWER as exc:
            self._failed(exchange, exc)
            return
        else:
            exchange.written = True
        if exchange.waiting_for != _READ:
            self._wait(exchange, _READ)

    def _progress(self, conn: _Connection) -> None:
        exchange = self._active.get(conn)
        if exchange is None:  # an idle connection turned readable: closed, or a stray answer
            if conn in self._idle_conns:
                self._idle_conns.remove(conn)
            self._discard(conn)
            return
        try:
            if not exchange.written and exchange.send_error is None:
                self._write(exchange)
            else:
                self._read(exchange)
        except BaseException as exc:
            self._unexpected(exchange, exc)

    def _read(self, exchange: _Exchange) -> None:
        conn = exchange.conn
        assert conn is not None
        reader = exchange.reader
        recv = conn.sock.recv
        try:
            while True:
                try:
                    chunk = recv(_READ_BUFFER)
                except _WAIT_READ:
                    return  # more later
                except _WAIT_WRITE:
                    self._wait(exchange, _WRITE)
                    return
                if not chunk and not reader.started:
                    raise exchange.send_error or base.ClosedByServer(
                        "the server closed the connection without answering"
                    )
                if reader.feed(chunk):
                    break
        except _NO_ANSWER as exc:
            cause: BaseException = exc
            if exchange.send_error is not None and not reader.started:
                cause = exchange.send_error
            self._failed(exchange, cause)
            return
        self._answered(exchange)

    def _release(self, exchange: _Exchange) -> _Connection:
        conn = exchange.conn
        assert conn is not None
        del self._active[conn]
        if exchange.waiting_for != _READ:
            self._wait(exchange, _READ)
        return conn

    def _answered(self, exchange: _Exchange) -> None:
        conn = self._release(exchange)
        conn.served += 1
        reader = exchange.reader
        if exchange.send_error is not None or not reader.keep_alive:
            self._discard(conn)
        else:
            self._idle_conns.append(conn)
        status = reader.status
        if self.transport.on_request is not None or debug_enabled(DEBUG):
            self._observe(exchange, status, None, conn.served > 1)
        outcome = classify(status, reader.body, reader.headers)
        if outcome.delivered:  # most answers: settled as _wait_or_settle would
            self.sender._settle(exchange.ident, exchange.items, True, "", None, exchange.attempt, 1)
        else:
            self._outcome(exchange, outcome)

    def _failed(self, exchange: _Exchange, exc: BaseException) -> None:
        """No (complete) answer: the connection goes; a stale kept-alive one that surely
        was not read is replaced once, else the attempt failed."""
        conn = self._release(exchange)
        self._discard(conn)
        reused = conn.served > 0
        ambiguous = exchange.written or exchange.reader.started
        timed_out = isinstance(exc, (TimeoutError, socket.timeout))
        request = exchange.request
        if not ambiguous and reused and not timed_out:
            with self.transport._lock:
                self.transport.stale_resends += 1
            log_resend(request)
            try:
                fresh = self._open(request, exchange.deadline)
            except PusherError as refused:
                self._observe(exchange, None, refused, False)
                self._outcome(exchange, error_outcome(refused))
                return
            self._send_on(exchange, fresh)
            return
        error = base.connection_error(request, exc, ambiguous)
        self._observe(exchange, None, error, reused)
        self._outcome(exchange, error_outcome(error))

    def _expire(self) -> None:
        """Attempts past their deadline fail (ambiguous when written or answered in part)."""
        now = _monotonic()
        if now < self._earliest:
            return
        late = [ex for ex in self._active.values() if ex.deadline <= now]
        for exchange in late:
            self._failed(exchange, TimeoutError("timed out: the request's deadline passed"))

    def _observe(
        self,
        exchange: _Exchange,
        status: Optional[int],
        error: Optional[BaseException],
        reused: Optional[bool],
    ) -> None:
        """The attempt's record for ``on_request`` and the DEBUG log, as ``observed`` makes."""
        transport = self.transport
        if transport.on_request is None and not debug_enabled(DEBUG):
            return
        token = ATTEMPT.set(exchange.attempt)
        try:
            box = [] if reused is None else [reused]
            _report(transport, exchange.request, exchange.started, status, error, box)
        finally:
            ATTEMPT.reset(token)

    def _outcome(self, exchange: _Exchange, outcome: Outcome) -> None:
        """Settle the attempt's batch, or set the timer of its next attempt."""
        sender = self.sender
        delay = sender._wait_or_settle(
            sender._policy(), exchange.ident, exchange.items, outcome, exchange.attempt, 1
        )
        if delay is None:
            return
        with sender._lock:
            sender.report.requests += 1
            sender.report.retries += 1
        retry = _Exchange(exchange.ident, exchange.items, exchange.attempt + 1)
        retry.request = outcome  # what the wait is for, should shutdown cut it short
        heapq.heappush(self._timers, (_monotonic() + delay, next(self._order), retry, False))
        self._retrying += 1

    def _unexpected(self, exchange: _Exchange, exc: BaseException) -> None:
        conn = exchange.conn
        if conn is not None and self._active.get(conn) is exchange:
            self._release(exchange)
            self._discard(conn)
        self._settle_failed(exchange, f"unexpected error: {exc!r}")
        if not isinstance(exc, Exception):
            raise exc

    def _settle_failed(self, exchange: _Exchange, reason: str) -> None:
        """Report a batch this engine gave up on: ambiguous once any byte of it was sent or
        any of its answer came (it may have been delivered)."""
        reader = exchange.reader
        sent = exchange.sent > 0 or (reader is not None and reader.started)
        if sent:
            reason += " (after sending: it may have been delivered)"
        attempts = exchange.attempt if sent else exchange.attempt - 1
        self.sender._settle(exchange.ident, exchange.items, False, reason, None, attempts, 0, sent)

    # -- the end ----------------------------------------------------------------------------

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass  # drained

    def _abandon(self) -> None:
        """Shutdown timed out: waiting retries and lingering batches are reported now; the
        batches on the wire stay in flight, for close() to report as possibly delivered."""
        sender = self.sender
        for _, _, exchange, lingered in self._timers:
            if lingered:
                with sender._qlock:
                    sender._taken(exchange.items)
                sender._fail(exchange.items, "not sent: shutdown timed out", None, 0)
            else:
                outcome = exchange.request
                reason = f"not sent: shutdown timed out ({outcome.reason})"
                sender._settle(
                    exchange.ident, exchange.items, False, reason, outcome.status,
                    exchange.attempt - 1,
                )  # fmt: skip
        self._timers = []
        self._retrying = 0
        for exchange in self._starting:
            if exchange.ident:
                sender._settle(
                    exchange.ident, exchange.items, False, "not sent: shutdown timed out", None,
                    exchange.attempt - 1,
                )  # fmt: skip
        self._starting = []
        for exchange in list(self._active.values()):
            self._discard(self._release(exchange))

    def _fail_all(self, reason: str) -> None:
        """The engine itself failed: every batch it holds is reported."""
        sender = self.sender
        every = [ex for _, _, ex, _ in self._timers] + self._starting
        every += list(self._active.values())
        held = list({id(ex): ex for ex in every}.values())  # a lingering batch is in two
        self._timers, self._starting = [], []
        self._retrying = 0
        for exchange in held:
            if exchange.ident:
                self._settle_failed(exchange, reason)
            else:
                with sender._qlock:
                    sender._taken(exchange.items)
                sender._fail(exchange.items, reason, None, 0)

    def _shutdown(self) -> None:
        """Close the connections in use; hand the idle ones to the transport's pool."""
        if self._closed:
            return
        self._closed = True
        for exchange in list(self._active.values()):
            self._discard(self._release(exchange))
        for conn in self._idle_conns:
            try:
                self.selector.unregister(conn.sock)
                conn.sock.setblocking(True)
            except (KeyError, ValueError, OSError):
                conn.close()
                continue
            self.transport._checkin(conn)
        self._idle_conns = []
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()


def usable(http: Any) -> bool:
    """Whether the engine can drive ``http``: the default socket transport itself (not a
    subclass, which may send differently)."""
    from .transports.sockets import SocketTransport

    return type(http) is SocketTransport


__all__ = ["IOEngine", "usable"]

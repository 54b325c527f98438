"""Bulk sending: events queued, grouped into ``batch_events`` requests, sent
concurrently with retries, and accounted for (:class:`BulkSender`; the asyncio
twin is :class:`pusher_fast.aio.AsyncBulkSender`).  The README's "Bulk
sending" section gives the rules.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

from . import _bulk_io
from . import _validation as v
from ._events import EventEncoder, replay_data
from ._events import Item as _Item
from ._observe import ATTEMPT
from ._request import Request
from ._retry import RETRY_STATUSES, DeliveryPolicy, Outcome, classify, error_outcome
from .errors import PusherError
from .transports.base import Raw, single_attempt
from .types import BulkReportDict, FailedEventData

if TYPE_CHECKING:
    from .client import Pusher
    from .transports.sockets import SocketTransport

_log = logging.getLogger("pusher_fast.bulk")
#: The reason given for an event still waiting for room when its sender was closed.
_CLOSED_WHILE_WAITING = "not sent: the sender was closed while it waited for room"


@dataclass(frozen=True)
class FailedEvent:
    """An event that was not delivered, with why, so it can be stored or replayed."""

    event: FailedEventData
    """``{"channel", "name", "data", "socket_id"?}``; ``data`` is the JSON text before
    encryption, so ``sender.add(**failed.event)`` replays it."""
    reason: str
    status: Optional[int]
    attempts: int
    ambiguous: bool = False
    """True when the last attempt may have been processed (sent whole, then no answer):
    the event may have been delivered although it is reported failed."""


@dataclass
class BulkReport:
    """The account of a bulk run: every event submitted is delivered or in ``failed``."""

    submitted: int = 0
    delivered: int = 0
    failed: list[FailedEvent] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    ambiguous: int = 0
    """Attempts whose outcome was ambiguous (may have been processed), retried or not."""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and self.delivered == self.submitted

    def as_dict(self) -> BulkReportDict:
        return {
            "submitted": self.submitted,
            "delivered": self.delivered,
            "failed": len(self.failed),
            "requests": self.requests,
            "retries": self.retries,
            "ambiguous": self.ambiguous,
            "elapsed_s": round(self.elapsed, 3),
            "events_per_s": round(self.delivered / self.elapsed, 1) if self.elapsed else None,
        }


def _replay(item: _Item) -> FailedEventData:
    _, channel, name, _, socket_id = item
    event: FailedEventData = {
        "channel": channel,
        "name": name,
        "data": replay_data(item),
    }
    if socket_id:
        event["socket_id"] = socket_id
    return event


_STOP: Any = object()


@dataclass(frozen=True)
class BulkOptions:
    """What a bulk sender (sync or async) is told, checked once.

    ``BulkSender(client, batch_size=20)`` and ``BulkSender(client,
    options=BulkOptions(batch_size=20))`` are the same; keywords given with
    ``options`` replace its fields.
    """

    batch_size: int = v.MAX_BATCH_EVENTS
    """Events per request (10: the multi-tenant limit; raise it on dedicated clusters)."""
    concurrency: int = 4
    """Requests in flight (the async sender's default is 8)."""
    max_queue: int = 10000
    """Events waiting before ``add()`` blocks."""
    retries: int = 5
    """Further attempts per batch."""
    backoff_base: float = 0.1
    backoff_max: float = 10.0
    """Backoff starts at ``backoff_base`` seconds and doubles up to ``backoff_max``."""
    shutdown_timeout: float = 30.0
    """Seconds ``close()`` has to finish."""
    on_failure: Optional[Callable[[FailedEvent], None]] = None
    """Called with each :class:`FailedEvent` as it fails (its exceptions are logged)."""
    at_least_once: bool = True
    """Retry a batch whose outcome is ambiguous (it may have been delivered)."""

    def __post_init__(self) -> None:
        if not isinstance(self.at_least_once, bool):
            raise TypeError(f"at_least_once should be a bool, got {self.at_least_once!r}")
        counts = (self.batch_size, self.concurrency, self.max_queue, self.retries)
        if min(counts[:3]) < 1 or self.retries < 0:
            raise ValueError(
                "batch_size, concurrency and max_queue must be >= 1 and retries >= 0; got "
                f"{self.batch_size}, {self.concurrency}, {self.max_queue}, {self.retries}"
            )


class _BulkBase:
    """What the sync and async bulk senders share: options, the account, and
    recording a batch's outcome exactly once."""

    _DEFAULTS: ClassVar[BulkOptions]

    def __init__(
        self, client: Pusher, options: BulkOptions | None, overrides: dict[str, Any]
    ) -> None:
        options = options or self._DEFAULTS
        if overrides:
            options = dataclasses.replace(options, **overrides)
        self.client = client
        self.options = options
        self._encoder = EventEncoder(client.event_settings)
        self.batch_size = options.batch_size
        self._max_queue = options.max_queue
        self.retries = options.retries
        self.backoff_base = options.backoff_base
        self.backoff_max = options.backoff_max
        self.shutdown_timeout = options.shutdown_timeout
        self.at_least_once = options.at_least_once
        self._on_failure = options.on_failure
        # Uncontended under asyncio; guards the account across worker threads.
        self._lock = threading.Lock()
        self._closed = False
        self._in_flight: dict[int, list[_Item]] = {}
        self.report = BulkReport()
        self._started = time.monotonic()

    def _settle(
        self,
        ident: int,
        items: list[_Item],
        delivered: bool,
        reason: str,
        status: int | None,
        attempts: int,
        requests: int = 0,
        ambiguous: bool = False,
    ) -> None:
        """Record a batch's outcome once: not if close() already reported it.

        ``requests`` (the attempt that settled it) is counted in the same step.
        """
        with self._lock:
            self.report.requests += requests
            if self._in_flight.get(ident) is not items:
                return
            del self._in_flight[ident]
            if delivered:
                self.report.delivered += len(items)
                return
        self._fail(items, reason, status, attempts, ambiguous)

    #: The delivery policy of this sender's options, made when the first batch is sent.
    _delivery: Optional[DeliveryPolicy] = None

    def _policy(self) -> DeliveryPolicy:
        policy = self._delivery
        if policy is None:  # workers racing here make equal policies: no lock needed
            policy = self._delivery = DeliveryPolicy.for_bulk(
                self.retries, self.backoff_base, self.backoff_max, self.at_least_once
            )
        return policy

    def _wait_or_settle(
        self,
        policy: DeliveryPolicy,
        ident: int,
        items: list[_Item],
        outcome: Outcome,
        attempt: int,
        requests: int,
    ) -> float | None:
        """The wait before retrying after ``outcome``; None when it stands (delivered, or
        not to be retried), and then the batch is settled.  Counts ambiguous outcomes."""
        if outcome.delivered:
            self._settle(ident, items, True, "", None, attempt, requests)
            return None
        if outcome.ambiguous:
            with self._lock:
                self.report.ambiguous += 1
        delay = policy.retry_outcome(attempt, outcome)
        if delay is None:
            self._settle(
                ident, items, False, outcome.reason, outcome.status, attempt, requests,
                outcome.ambiguous,
            )  # fmt: skip
        else:
            _log.warning(
                "bulk: batch of %d event(s), attempt %d failed (%s), retrying in %.2f s",
                len(items), attempt, outcome.reason, delay,
            )  # fmt: skip
        return delay

    def _fail(
        self,
        items: list[_Item],
        reason: str,
        status: int | None = None,
        attempts: int = 0,
        ambiguous: bool = False,
    ) -> None:
        failures = [
            FailedEvent(_replay(item), reason, status, attempts, ambiguous) for item in items
        ]
        # One line per batch; the reason is the server's answer or the transport error
        # (no event data: the channels and payloads stay in the FailedEvents).
        _log.error("bulk: %d event(s) failed after %d attempt(s): %s", len(items), attempts, reason)
        with self._lock:
            self.report.failed.extend(failures)
        if self._on_failure is not None:
            for failure in failures:
                self._call_on_failure(failure)

    def _call_on_failure(self, failure: FailedEvent) -> None:
        """The user's ``on_failure``; what it raises is logged, never lost in a worker."""
        assert self._on_failure is not None
        try:
            self._on_failure(failure)
        except Exception:
            _log.exception("pusher_fast: on_failure callback raised")

    def _abandoned_in_flight(self) -> None:
        """Report the batches still on the wire; a late answer is no longer counted."""
        with self._lock:
            stuck = list(self._in_flight.values())
            self._in_flight.clear()
        for items in stuck:
            reason = "in flight when shutdown timed out: may have been delivered"
            self._fail(items, reason, None, 1, True)


class BulkSender(_BulkBase):
    """Send many events through ``batch_events``, concurrently, with an account.

    Keywords (or ``options=``) are the fields of :class:`BulkOptions`.  A
    worker that would send a partial batch first waits ``linger`` seconds
    (2 ms) for more events: under load batches are full anyway, and a trickle
    of events is delayed by at most that.

    The account is final when :meth:`close` returns: every event that
    :meth:`add` accepted is counted in ``report.delivered`` or listed in
    ``report.failed``, exactly once.
    """

    _DEFAULTS = BulkOptions()

    def __init__(
        self,
        client: Pusher,
        *,
        options: BulkOptions | None = None,
        linger: float = 0.002,
        _transport: Optional[SocketTransport] = None,
        **overrides: Any,
    ) -> None:
        super().__init__(client, options, overrides)
        #: The transport sent on: the client's, or the asyncio sender's own (see aio).
        self._http: Any = client.http if _transport is None else _transport
        concurrency = self.options.concurrency
        max_queue = self._max_queue
        self.linger = linger
        # Events are grouped on the producer side: add() fills ``_open`` and
        # hands whole batches to the workers through ``_queue`` (one handoff
        # per batch, not per event), or a partial batch at once when a worker
        # is idle, so a trickle of events is not held back.  The queue is
        # unbounded so that close() can always post its stop markers;
        # ``_room`` bounds the events accepted and not yet taken by a worker
        # (backpressure: add() waits on ``_cond`` while there is none).
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # The queue's own lock, apart from the account's (``_lock``): the producer takes it
        # per event, so workers take it only once per batch (in ``_next_batch``).
        self._qlock = threading.Lock()
        self._cond = threading.Condition(self._qlock)
        self._encode = self._encoder.encode
        self._blocked = 0  # producers waiting for room
        self._resume_room = max_queue // 2
        self._room = max_queue
        self._open: list[_Item] = []
        self._idle = 0
        self._partial_posted = False
        self._abandon = threading.Event()
        #: Called after posting batches: wakes the I/O engine (None with worker threads).
        self._wake: Optional[Callable[[], None]] = None
        self._interrupt: Optional[Callable[[], None]] = None
        if _bulk_io.usable(self._http):
            # The default transport: one thread drives every connection (see _bulk_io).
            engine = _bulk_io.IOEngine(self, self._http, concurrency)
            self._wake = engine.wake
            self._interrupt = engine.interrupt
            self._workers = [
                threading.Thread(target=engine.run, name="pusher-bulk-io", daemon=True)
            ]
        else:
            self._workers = [
                threading.Thread(target=self._work, name=f"pusher-bulk-{i}", daemon=True)
                for i in range(concurrency)
            ]
        for worker in self._workers:
            worker.start()

    # -- producer side ----------------------------------------------------------

    def add(
        self,
        channel: str | Iterable[str],
        name: str,
        data: Any,
        socket_id: str | None = None,
        *,
        channels: str | Iterable[str] | None = None,
    ) -> int:
        """Queue one event (fanned out per channel); returns how many batch events it made.

        Blocks while the queue is full.  Raises ValueError/TypeError for bad
        input, and RuntimeError after :meth:`close`.  An event still waiting
        for room when the sender is closed is reported failed.
        """
        if self._closed:
            raise RuntimeError("BulkSender is closed")
        items = self._encode(channel if channels is None else channels, name, data, socket_id)
        count = len(items)
        # A ``with`` statement, not acquire() then try: a KeyboardInterrupt (Ctrl-C) can land
        # right after a call returns, and between acquire() and the try it would leave the lock
        # taken for good (close() and the I/O thread would wait on it forever).
        with self._qlock:
            room = self._room - count
            if room < 0 or self._closed:
                posted = -1  # no room: _add_slow() below
            else:
                self._room = room
                self.report.submitted += count
                pending = self._open
                pending += items
                if len(pending) < self.batch_size and (self._partial_posted or not self._idle):
                    return count  # the common case: the open batch is not ready yet
                # Posted under the lock: whoever holds it and finds the queue empty knows
                # that ``_open`` holds the oldest events (with one sender, batches stay in
                # order).
                posted = self._post_ready()
        if posted < 0:
            return self._add_slow(items)
        if posted and self._wake is not None:
            self._wake()
        return count

    def _add_slow(self, items: list[_Item]) -> int:
        """add() when there was no room or the sender is closed: waits for room
        (:meth:`_wait_for_room`); an event still waiting when the sender is closed is
        counted and reported failed."""
        count = len(items)
        with self._qlock:
            # An event fanned out wider than the whole queue goes in once the queue is empty.
            while self._room < min(count, self._max_queue) and not self._closed:
                self._wait_for_room()
            closed = self._closed
            posted = 0
            if not closed:
                self.report.submitted += count
                self._room -= count
                self._open.extend(items)
                posted = self._post_ready()
        if closed:
            return self._refuse_waiting(items)
        if posted and self._wake is not None:
            self._wake()
        return count

    def _refuse_waiting(self, items: list[_Item]) -> int:
        """Events that waited for room until the sender was closed: counted, reported failed."""
        with self._qlock:
            self.report.submitted += len(items)
        self._fail(items, _CLOSED_WHILE_WAITING, None, 0)
        return len(items)

    def _wait_for_room(self) -> None:
        """Wait (``_qlock`` held) until a batch is taken, the sender is closed, or 0.1 s."""
        self._blocked += 1
        try:
            self._cond.wait(0.1)
        finally:
            self._blocked -= 1

    def _post_ready(self) -> int:
        """Post the full batches in ``_open``, and a partial one for an idle worker, to the
        queue (lock held); returns how many were posted.

        Each batch leaves ``_open`` and enters the queue with no call in between: a
        KeyboardInterrupt, raised only as a call returns, a function starts or a loop jumps
        back, finds every event either still open or queued, never in neither (the account
        stays exact).
        """
        size = self.batch_size
        put = self._queue.put
        posted = 0
        while len(self._open) >= size:
            batch = self._open[:size]
            del self._open[:size]
            put(batch)
            posted += 1
        if self._open and not self._partial_posted and self._idle > posted:
            batch = self._open
            self._open = []
            self._partial_posted = True  # its worker lingers; later events join it
            put(batch)
            posted += 1
        # Each batch posted wakes one idle worker: count it woken now, so that
        # the next add() does not wake another for one more event.
        self._idle = self._idle - posted if self._idle > posted else 0
        return posted

    def add_many(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Queue ``{"channel"|"channels", "name", "data", "socket_id"?}`` dicts."""
        total = 0
        for event in events:
            total += self.add(
                event.get("channel", ()),
                event["name"],
                event["data"],
                event.get("socket_id"),
                channels=event.get("channels"),
            )
        return total

    def close(self, timeout: float | None = None) -> BulkReport:
        """Send what is queued and stop; past ``timeout`` report the rest failed.

        Returns once every worker has finished, or at the latest ``timeout``
        plus twice the client's timeout plus a second (for requests already
        on the wire); the report is final then.
        """
        with self._qlock:
            first = not self._closed
            self._closed = True
            self._cond.notify_all()  # producers waiting for room give up
            if first:  # the last partial batch is taken by a worker at its stop marker
                for _ in self._workers:
                    self._queue.put(_STOP)
        if self._wake is not None:
            self._wake()
        limit = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(w.is_alive() for w in self._workers):
            self._abandon.set()
            if self._interrupt is not None:
                self._interrupt()
            self._drain("not sent: shutdown timed out")
            grace = deadline + self.client.timeout * 2 + 1
            for worker in self._workers:
                worker.join(max(0.0, grace - time.monotonic()))
            self._abandoned_in_flight()
        self._drain("not sent: the sender was closed")  # nothing can remain unaccounted
        self.report.elapsed = time.monotonic() - self._started
        return self.report

    def __enter__(self) -> BulkSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Events accepted and not yet taken by a worker."""
        return self._max_queue - self._room

    # -- worker side -------------------------------------------------------------

    def _taken(self, batch: list[_Item]) -> None:
        """A worker took ``batch``: its events no longer count against the queue (lock held)."""
        self._room += len(batch)
        # Producers waiting for room are woken once half the queue is free, not for every
        # batch taken: one wake-up (and GIL hand-over) per many batches under load.  No
        # stall: workers keep taking batches while any are queued, and an empty queue
        # (room == max_queue) always wakes them.
        if self._blocked and self._room >= self._resume_room:
            self._cond.notify_all()

    def _drain(self, reason: str) -> None:
        """Report every waiting event failed; stop markers are put back for the workers."""
        stops = 0
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                break
            if batch is _STOP:
                stops += 1
            else:
                with self._qlock:
                    self._taken(batch)
                self._fail(batch, reason, None, 0)
        with self._qlock:
            left, self._open = self._open, []
            self._taken(left)
        if left:
            self._fail(left, reason, None, 0)
        for _ in range(stops):
            self._queue.put(_STOP)

    def _next_batch(self) -> Any:
        """The next batch to send, or the stop marker; waits (as idle) when there is none."""
        try:
            batch = self._queue.get_nowait()
        except queue.Empty:
            with self._qlock:
                if self._queue.empty():  # else a batch was posted meanwhile: older events
                    if self._open:
                        batch, self._open = self._open, []
                        self._taken(batch)
                        return batch
                    self._idle += 1  # add() takes it back when it posts for us
            batch = self._queue.get()
        if batch is _STOP:
            with self._qlock:
                if not self._open:
                    return batch
                batch, self._open = self._open, []
                self._taken(batch)
            self._queue.put(_STOP)  # send this last partial batch, then stop
            return batch
        partial = len(batch) < self.batch_size
        if partial and self.linger > 0:
            time.sleep(self.linger)  # let events added meanwhile join this batch
        with self._qlock:
            if partial:
                room = self.batch_size - len(batch)
                batch.extend(self._open[:room])
                del self._open[:room]
                self._partial_posted = False
            self._taken(batch)
        return batch

    def _work(self) -> None:
        ident = threading.get_ident()
        # Looked up once per worker, not per batch: the backend's one-attempt method, the
        # request builder, the batch source.
        send = single_attempt(self._http)  # one attempt: the retries are ours
        request = self._encoder.request
        next_batch = self._next_batch
        abandoned = self._abandon.is_set
        in_flight = self._in_flight
        lock = self._lock
        while True:
            items = next_batch()
            if items is _STOP:
                return
            with lock:
                in_flight[ident] = items
            try:
                if abandoned():
                    self._settle(ident, items, False, "not sent: shutdown timed out", None, 0)
                    continue
                # The first attempt inline: most batches are delivered by it.
                try:
                    outcome = classify(*send(request(items)))
                except PusherError as exc:
                    outcome = error_outcome(exc)
                if outcome.delivered:
                    self._settle(ident, items, True, "", None, 1, 1)
                else:
                    self._send(ident, items, send, outcome)
            except BaseException as exc:  # never lose a batch, whatever happened
                self._settle(ident, items, False, f"unexpected error: {exc!r}", None, 1)

    def _send(
        self, ident: int, items: list[_Item], send: Callable[[Request], Raw], outcome: Outcome
    ) -> None:
        """Retry a batch whose first attempt came to ``outcome``, until it is settled."""
        policy = self._policy()
        attempt = 1
        while True:
            delay = self._wait_or_settle(policy, ident, items, outcome, attempt, requests=1)
            if delay is None:
                return
            with self._lock:
                self.report.requests += 1
                self.report.retries += 1
            if self._abandon.wait(delay):
                reason = f"not sent: shutdown timed out ({outcome.reason})"
                self._settle(ident, items, False, reason, outcome.status, attempt)
                return
            attempt += 1
            outcome = self._attempt(send, items, attempt)

    def _attempt(
        self, send: Callable[[Request], Raw], items: list[_Item], attempt: int = 1
    ) -> Outcome:
        # The attempt number reaches the on_request records and logs (1 when unset).
        token = ATTEMPT.set(attempt) if attempt > 1 else None
        try:
            return classify(*send(self._encoder.request(items)))
        except PusherError as exc:
            return error_outcome(exc)
        finally:
            if token is not None:
                ATTEMPT.reset(token)


#: The statuses retried (one set for every sender: :data:`pusher_fast._retry.RETRY_STATUSES`).
RETRYABLE_STATUSES = RETRY_STATUSES

"""High-volume triggering: group events into ``batch_events`` requests, send
them concurrently over the client's keep-alive pool, retry what is safe to
retry, and account for every event.

>>> with client.bulk() as sender:                      # doctest: +SKIP
...     for order in orders:
...         sender.add("orders", "created", order)
>>> sender.report.delivered, sender.report.failed      # doctest: +SKIP
(10000, [])

Rules:
- Events are validated and encoded in :meth:`BulkSender.add`, so bad input
  raises there, in the caller, before anything is queued.
- An event for several channels is fanned out: one batch event per channel
  (the batch endpoint takes one channel per event); each counts separately.
- Retried: connection errors, timeouts, 5xx and 429 (honouring
  ``Retry-After``), with capped exponential backoff and jitter.  Never retried:
  any other 4xx.  A batch whose response was lost (reset, read timeout) may
  have been delivered: retrying it gives at-least-once delivery.
- The queue is bounded: :meth:`add` blocks when it is full (backpressure).
- :meth:`close` (or leaving the ``with`` block, also on an exception) sends
  what is queued; past ``shutdown_timeout`` whatever is left is reported
  failed with the reason, never dropped silently.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import orjson

from . import _json
from . import _validation as v
from ._fallback import FRAME_BATCH
from ._request import POST, Request
from .errors import PusherError, PusherTransportError

if TYPE_CHECKING:
    from .client import Pusher

_log = logging.getLogger("pusher_fast.bulk")
_orjson_dumps = orjson.dumps

#: Statuses worth another try: the service did not take the request.
RETRYABLE_STATUSES = frozenset((408, 429, 500, 502, 503, 504))


@dataclass(frozen=True)
class FailedEvent:
    """An event that was not delivered, with why, so it can be stored or replayed."""

    event: dict[str, Any]
    """``{"channel", "name", "data", "socket_id"?}``; ``data`` is the JSON text before
    encryption, so ``sender.add(**failed.event)`` replays it."""
    reason: str
    status: Optional[int]
    attempts: int


@dataclass
class BulkReport:
    """The account of a bulk run: every event submitted is delivered or in ``failed``."""

    submitted: int = 0
    delivered: int = 0
    failed: list[FailedEvent] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and self.delivered == self.submitted

    def as_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "delivered": self.delivered,
            "failed": len(self.failed),
            "requests": self.requests,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed, 3),
            "events_per_s": round(self.delivered / self.elapsed, 1) if self.elapsed else None,
        }


# One queued event: its JSON fragment as sent, then what replaying it takes
# (channel, name, data before encryption, socket id), kept raw: the dict a
# FailedEvent shows is only built for events that fail.
_Item = tuple[bytes, str, str, Union[str, bytes], Optional[str]]


def _replay(item: _Item) -> dict[str, Any]:
    _, channel, name, data, socket_id = item
    event: dict[str, Any] = {
        "channel": channel,
        "name": name,
        "data": data if isinstance(data, str) else data.decode("utf-8"),
    }
    if socket_id:
        event["socket_id"] = socket_id
    return event


_STOP: Any = object()


@dataclass(frozen=True)
class Outcome:
    """What one attempt at sending a batch came to."""

    delivered: bool
    status: Optional[int]
    reason: str
    retryable: bool
    retry_after: Optional[float] = None


def classify(status: int, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """Map an HTTP answer to an outcome (shared by the sync and async senders)."""
    if status in (200, 202):
        # soketi (and other Pusher-protocol servers) answer errors with 200 and
        # {"error": ..., "code": N}; the official service never does.
        if body[:1] == b"{" and b'"error"' in body:
            try:
                parsed = _json.loads(body)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "error" in parsed:
                code = parsed.get("code")
                status = code if isinstance(code, int) else 400
                return _failure(status, str(parsed.get("error")), headers)
        return Outcome(True, status, "", False)
    return _failure(status, body.decode("utf-8", "replace")[:300], headers)


def _failure(status: int, text: str, headers: Mapping[str, str]) -> Outcome:
    retry_after = None
    if status == 429:
        value = headers.get("Retry-After") if headers else None
        if value is not None:
            try:
                retry_after = max(0.0, float(value))
            except ValueError:
                retry_after = None
    return Outcome(False, status, f"{status}: {text}", status in RETRYABLE_STATUSES, retry_after)


class _EventEncoder:
    """Validates and encodes events for the batch endpoint (shared sync/async)."""

    _HEAD_CACHE_SIZE = 1024

    def __init__(self, client: Pusher) -> None:
        self.client = client
        # (channel, name) -> b'{"channel":"..","name":..,"data":' when the short
        # path may take them (plain channel, default JSON), else b"".
        self._heads: dict[tuple[str, str], bytes] = {}

    def encode(
        self, channels: str | Iterable[str], name: str, data: Any, socket_id: str | None
    ) -> list[_Item]:
        if socket_id is None and type(channels) is str and type(name) is str:
            head = self._heads.get((channels, name))
            if head is None:
                head = self._head(channels, name)
            if head:
                limit = self.client._batch_limit
                kind = type(data)
                if kind is dict or kind is list:
                    try:
                        text = _orjson_dumps(data, option=_json.OPTIONS)
                    except TypeError:  # the general path below explains
                        text = b"null"
                    if b"null" not in text and len(text) <= limit:
                        literal = text.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                        return [(head + b'"' + literal + b'"}', channels, name, text, None)]
                elif kind is str and len(data) * 4 <= limit:
                    return [(head + _orjson_dumps(data) + b"}", channels, name, data, None)]
        return self._encode(channels, name, data, socket_id)

    def _head(self, channel: str, name: str) -> bytes:
        head = b""
        if (
            len(name) <= v.MAX_EVENT_NAME_LENGTH
            and self.client._json_encoder is None
            and not channel.startswith(v.ENCRYPTED_PREFIX)
            and v.channel_is_valid(channel)
        ):
            head = (
                b'{"channel":"'
                + channel.encode("ascii")
                + b'","name":'
                + _json.dumps_bytes(name)
                + b',"data":'
            )
        if len(self._heads) >= self._HEAD_CACHE_SIZE:
            self._heads.clear()
        self._heads[(channel, name)] = head
        return head

    def _encode(
        self, channels: str | Iterable[str], name: str, data: Any, socket_id: str | None
    ) -> list[_Item]:
        client = self.client
        chans = [channels] if isinstance(channels, str) else list(channels)
        if not chans:
            raise ValueError("No channels given: an event needs 1 to 100 channels")
        if len(chans) > v.MAX_CHANNELS_PER_TRIGGER:
            raise ValueError(
                f"Too many channels: {len(chans)} given; the limit is {v.MAX_CHANNELS_PER_TRIGGER}"
            )
        chans = [v.validate_channel(c) for c in chans]
        name = v.validate_event_name(name)
        text = client._data_to_string(data)
        if len(chans) > 1 and any(v.is_encrypted_channel(c) for c in chans):
            raise ValueError(
                "You cannot send to multiple channels when using encrypted channels: "
                f"{chans!r:.300}"
            )
        sid = v.validate_socket_id(socket_id) if socket_id else None
        items: list[_Item] = []
        for channel in chans:
            sent = client._encrypt(channel, text) if v.is_encrypted_channel(channel) else text
            v.check_data_size(sent, client._batch_limit, "")
            wire: dict[str, Any] = {"channel": channel, "name": name, "data": sent}
            if sid:
                wire["socket_id"] = sid
            items.append((_json.dumps_bytes(wire), channel, name, text, sid))
        return items

    def request(self, items: list[_Item]) -> Request:
        """A signed batch_events request for ``items`` (signed afresh on every try)."""
        client = self.client
        body, query = client._event_batch(
            FRAME_BATCH, b'{"batch":[', b",".join([item[0] for item in items])
        )
        return Request(client, POST, client._batch_path, None, body, query)


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter, capped; ``Retry-After`` wins (capped too)."""
    if retry_after is not None:
        return min(retry_after, cap)
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.random() * ceiling / 2


class _BulkBase:
    """What the sync and async bulk senders share: options, the account, and
    recording a batch's outcome exactly once."""

    def __init__(
        self,
        client: Pusher,
        batch_size: int,
        concurrency: int,
        max_queue: int,
        retries: int,
        backoff_base: float,
        backoff_max: float,
        shutdown_timeout: float,
        on_failure: Callable[[FailedEvent], None] | None,
    ) -> None:
        if batch_size < 1 or concurrency < 1 or max_queue < 1 or retries < 0:
            raise ValueError(
                "batch_size, concurrency and max_queue must be >= 1 and retries >= 0; got "
                f"{batch_size}, {concurrency}, {max_queue}, {retries}"
            )
        self.client = client
        self._encoder = _EventEncoder(client)
        self.batch_size = batch_size
        self._max_queue = max_queue
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.shutdown_timeout = shutdown_timeout
        self._on_failure = on_failure
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
        self._fail(items, reason, status, attempts)

    def _fail(
        self, items: list[_Item], reason: str, status: int | None = None, attempts: int = 0
    ) -> None:
        failures = [FailedEvent(_replay(item), reason, status, attempts) for item in items]
        with self._lock:
            self.report.failed.extend(failures)
        if self._on_failure is not None:
            for failure in failures:
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
            self._fail(items, "in flight when shutdown timed out: may have been delivered", None, 1)


class BulkSender(_BulkBase):
    """Send many events through ``batch_events``, concurrently, with an account.

    ``batch_size`` events per request (10: the multi-tenant limit; raise it on
    dedicated clusters), ``concurrency`` requests in flight, ``max_queue``
    events waiting before :meth:`add` blocks, ``retries`` further attempts per
    batch, backoff from ``backoff_base`` doubling up to ``backoff_max``
    seconds, and ``shutdown_timeout`` seconds for :meth:`close` to finish.
    ``on_failure`` is called with each :class:`FailedEvent` as it fails (its
    exceptions are logged, never allowed to disturb the account).  A worker
    that would send a partial batch first waits ``linger`` seconds (2 ms) for
    more events: under load batches are full anyway, and a trickle of events
    is delayed by at most that.

    The account is final when :meth:`close` returns: every event that
    :meth:`add` accepted is counted in ``report.delivered`` or listed in
    ``report.failed``, exactly once.
    """

    def __init__(
        self,
        client: Pusher,
        *,
        batch_size: int = v.MAX_BATCH_EVENTS,
        concurrency: int = 4,
        max_queue: int = 10000,
        retries: int = 5,
        backoff_base: float = 0.1,
        backoff_max: float = 10.0,
        shutdown_timeout: float = 30.0,
        on_failure: Callable[[FailedEvent], None] | None = None,
        linger: float = 0.002,
    ) -> None:
        super().__init__(
            client, batch_size, concurrency, max_queue, retries,
            backoff_base, backoff_max, shutdown_timeout, on_failure,
        )  # fmt: skip
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
        self._blocked = 0  # producers waiting for room
        self._resume_room = max_queue // 2
        self._room = max_queue
        self._open: list[_Item] = []
        self._idle = 0
        self._partial_posted = False
        self._abandon = threading.Event()
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
        items = self._encoder.encode(
            channels if channels is not None else channel, name, data, socket_id
        )
        count = len(items)
        with self._qlock:  # the Condition's lock, entered without its Python-level wrapper
            if self._room < count or self._closed:
                ready, closed = self._add_slow(items)
            else:
                closed = False
                self.report.submitted += count
                self._room -= count
                pending = self._open
                pending.extend(items)
                if len(pending) < self.batch_size and (self._partial_posted or not self._idle):
                    return count  # the common case: the open batch is not ready yet
                ready = self._ready_batches()
        if closed:
            self._fail(items, "not sent: the sender was closed while it waited for room", None, 0)
        for batch in ready:
            self._queue.put(batch)
        return count

    def _add_slow(self, items: list[_Item]) -> tuple[list[list[_Item]], bool]:
        """add() when there is no room or the sender is closed (``_qlock`` held).

        Returns the batches to post and whether the sender was closed meanwhile (then
        ``items`` were not queued: the caller reports them, outside the lock).
        """
        count = len(items)
        # Wait for room; an event fanned out wider than the whole queue
        # goes in once the queue is empty.
        while self._room < min(count, self._max_queue) and not self._closed:
            self._blocked += 1
            try:
                self._cond.wait(0.1)
            finally:
                self._blocked -= 1
        self.report.submitted += count
        if self._closed:
            return [], True
        self._room -= count
        self._open.extend(items)
        return self._ready_batches(), False

    def _ready_batches(self) -> list[list[_Item]]:
        """Full batches out of ``_open``, and a partial one for an idle worker (lock held)."""
        size = self.batch_size
        ready = []
        while len(self._open) >= size:
            ready.append(self._open[:size])
            del self._open[:size]
        if self._open and not self._partial_posted and self._idle > len(ready):
            ready.append(self._open)
            self._open = []
            self._partial_posted = True  # its worker lingers; later events join it
        # Each batch posted wakes one idle worker: count it woken now, so that
        # the next add() does not wake another for one more event.
        self._idle -= min(self._idle, len(ready))
        return ready

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
        limit = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        if any(w.is_alive() for w in self._workers):
            self._abandon.set()
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
        while True:
            items = self._next_batch()
            if items is _STOP:
                return
            with self._lock:
                self._in_flight[ident] = items
            try:
                self._send(ident, items)
            except BaseException as exc:  # never lose a batch, whatever happened
                self._settle(ident, items, False, f"unexpected error: {exc!r}", None, 1)

    def _send(self, ident: int, items: list[_Item]) -> None:
        attempt = 0
        while True:
            if self._abandon.is_set():
                self._settle(ident, items, False, "not sent: shutdown timed out", None, attempt)
                return
            attempt += 1
            outcome = self._attempt(items)
            if outcome.delivered:
                self._settle(ident, items, True, "", None, attempt, requests=1)
                return
            if not outcome.retryable or attempt > self.retries:
                self._settle(ident, items, False, outcome.reason, outcome.status, attempt, 1)
                return
            with self._lock:
                self.report.requests += 1
                self.report.retries += 1
            delay = backoff_delay(attempt, self.backoff_base, self.backoff_max, outcome.retry_after)
            if self._abandon.wait(delay):
                reason = f"not sent: shutdown timed out ({outcome.reason})"
                self._settle(ident, items, False, reason, outcome.status, attempt)
                return

    def _attempt(self, items: list[_Item]) -> Outcome:
        request = self._encoder.request(items)
        http = self.client.http
        try:
            if hasattr(http, "send_raw"):
                status, body, headers = http.send_raw(request)
                return classify(status, body, headers)
            http.send_request(request)  # a user's backend: only exceptions tell
            return Outcome(True, 200, "", False)
        except PusherError as exc:
            return error_outcome(exc)


def error_outcome(exc: PusherError) -> Outcome:
    """The outcome of an attempt that raised (transport failure or an API error status)."""
    if isinstance(exc, PusherTransportError):
        return Outcome(False, None, f"transport: {exc}", True)
    status = exc.status or 400
    return Outcome(False, status, str(exc), status in RETRYABLE_STATUSES)

"""The asyncio client (:class:`AsyncPusher`) and bulk sender (:class:`AsyncBulkSender`)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, Callable, Optional

from . import _validation as v
from ._events import Item as _Item
from ._observe import ATTEMPT
from ._request import Request
from ._retry import Outcome, classify, error_outcome
from .bulk import _CLOSED_WHILE_WAITING, BulkOptions, BulkReport, BulkSender, FailedEvent, _BulkBase
from .client import Pusher
from .errors import PusherError
from .transports import AsyncHTTPBackend, AsyncSocketTransport, default_async_backend
from .transports.base import Raw, async_single_attempt
from .transports.sockets import SocketTransport
from .types import (
    BatchResult,
    ChannelInfo,
    ChannelsInfo,
    TerminateResult,
    TriggerResult,
    UsersInfo,
)


class AsyncPusher(Pusher):
    """``Pusher`` whose HTTP calls are coroutines, on a pooled keep-alive transport.

    Same constructor as :class:`~pusher_fast.Pusher`; ``backend`` defaults to
    :func:`default_async_backend` (:class:`AsyncSocketTransport`, or aiohttp's
    :class:`~pusher_fast.aiohttp.AsyncIOBackend` when a proxy applies), and
    ``backend=AsyncIOBackend`` picks aiohttp explicitly.  ``authenticate``,
    ``authenticate_user`` and ``validate_webhook`` do no I/O and stay plain methods.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("backend", default_async_backend)
        super().__init__(*args, **kwargs)

    async def trigger(  # type: ignore[override]
        self,
        channels: str | Iterable[str],
        event_name: str,
        data: Any,
        socket_id: str | None = None,
        info: str | Iterable[str] | None = None,
    ) -> TriggerResult:
        return await self._send(self._trigger_request(channels, event_name, data, socket_id, info))

    async def trigger_batch(  # type: ignore[override]
        self, batch: Iterable[Mapping[str, Any]] = (), already_encoded: bool = False
    ) -> BatchResult:
        return await self._send(self._batch_request(batch, already_encoded))

    async def channels_info(  # type: ignore[override]
        self, prefix_filter: str | None = None, attributes: str | Iterable[str] = ()
    ) -> ChannelsInfo:
        return await self._send(self._channels_info_request(prefix_filter, attributes))

    async def channel_info(  # type: ignore[override]
        self, channel: str, attributes: str | Iterable[str] = ()
    ) -> ChannelInfo:
        return await self._send(self._channel_info_request(channel, attributes))

    async def users_info(self, channel: str) -> UsersInfo:  # type: ignore[override]
        return await self._send(self._users_info_request(channel))

    async def send_to_user(  # type: ignore[override]
        self, user_id: str, event_name: str, data: Any
    ) -> TriggerResult:
        user_id = v.validate_user_id(user_id)
        return await self.trigger([v.SERVER_TO_USER_PREFIX + user_id], event_name, data)

    async def terminate_user_connections(self, user_id: str) -> TerminateResult:  # type: ignore[override]
        return await self._send(self._terminate_request(user_id))

    def bulk(self, **options: Any) -> AsyncBulkSender:  # type: ignore[override]
        """An :class:`AsyncBulkSender` (``async with client.bulk() as sender``)."""
        return AsyncBulkSender(self, **options)

    async def aclose(self) -> None:
        """Close the transport's pooled connections (``async with`` does it on leaving)."""
        close = getattr(self.http, "aclose", None)
        if close is not None:
            await close()

    def close(self) -> None:
        raise TypeError("an AsyncPusher is closed with `await client.aclose()` or `async with`")

    def __enter__(self) -> AsyncPusher:
        raise TypeError("use `async with AsyncPusher(...)`, not `with`")

    async def __aenter__(self) -> AsyncPusher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_STOP: Any = object()


class _NoRoom(Exception):
    """Internal: the queue has no room for ``items`` (the loop must not block)."""

    def __init__(self, items: list[_Item]) -> None:
        self.items = items


class _LoopFedSender(BulkSender):
    """:class:`BulkSender`'s queue and I/O thread, fed from one event loop: where the sync
    sender would block for room, :meth:`add` raises :class:`_NoRoom` instead, and the I/O
    thread signals freed room through ``room_freed``."""

    #: (room wanted, callable) while an ``AsyncBulkSender.add()`` waits; set under ``_qlock``.
    room_freed: Optional[tuple[int, Callable[[], None]]] = None

    def _add_slow(self, items: list[_Item]) -> int:
        # Read without the lock: only this loop's add() takes room, the I/O thread only
        # frees it, so room found here is still there in the base method.
        if not self._closed and self._room < min(len(items), self._max_queue):
            raise _NoRoom(items)
        return super()._add_slow(items)

    def _taken(self, batch: list[_Item]) -> None:
        super()._taken(batch)
        waiting = self.room_freed
        if waiting is not None and self._room >= waiting[0]:
            self.room_freed = None
            waiting[1]()


class AsyncBulkSender(_BulkBase):
    """The asyncio twin of :class:`pusher_fast.bulk.BulkSender`, same guarantees.

    ``await sender.add(...)`` waits while the queue is full; ``await
    sender.close()`` (or leaving ``async with``) flushes and returns the
    :class:`~pusher_fast.bulk.BulkReport`, final when it returns.

    On the default transport (:class:`AsyncSocketTransport`) batches are sent by
    :class:`~pusher_fast.bulk.BulkSender`'s I/O thread, on connections of its own: ``add()``
    only encodes and queues, and never blocks the loop.  On any other backend (aiohttp's,
    yours) the sender's tasks send through it.  ``on_failure`` is called in the loop either way.
    """

    _DEFAULTS = BulkOptions(concurrency=8)

    def __init__(
        self, client: AsyncPusher, *, options: BulkOptions | None = None, **overrides: Any
    ) -> None:
        super().__init__(client, options, overrides)
        self._concurrency = self.options.concurrency
        # The asyncio primitives are made by _start(), in the running loop: on Python 3.9
        # they bind to asyncio.get_event_loop() when constructed (3.10+ binds on first use),
        # so making them here, outside a coroutine, breaks the sender (or raises).
        self._bound = False
        # Unbounded, so close() can always post its stop markers; _slots bounds events.
        self._queue: asyncio.Queue[Any]
        self._slots: asyncio.Semaphore
        self._abandon: asyncio.Event
        self._workers: list[asyncio.Task[None]] = []
        # The I/O-thread mode (the default transport): a _LoopFedSender does the work.
        self._fed: Optional[_LoopFedSender] = None
        self._twin: Optional[SocketTransport] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._room_event: Optional[asyncio.Event] = None
        self._adders = 0  # add() calls waiting for room
        # Made by the first add(): a sender that is never used holds no thread.
        self._threaded = type(client.http) is AsyncSocketTransport

    def _start_fed(self) -> _LoopFedSender:
        """The I/O-thread mode's sender (and its transport), made in the running loop."""
        self._loop = asyncio.get_running_loop()
        http = self.client.http
        self._twin = SocketTransport(self.client, maxsize=self._concurrency, **http.setup_options)
        on_failure = self._relay_failure if self._on_failure is not None else None
        fed_options = dataclasses.replace(self.options, on_failure=on_failure)
        fed = _LoopFedSender(self.client, options=fed_options, _transport=self._twin)
        fed.report = self.report  # one account, whoever holds it
        fed._started = self._started
        self._fed = fed
        return fed

    def _relay_failure(self, failure: FailedEvent) -> None:
        """``on_failure`` from the I/O thread: called in the loop (before close() returns:
        the loop runs callbacks in the order they were scheduled)."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._call_on_failure, failure)
                return
            except RuntimeError:
                pass  # the loop is closed: called here instead
        self._call_on_failure(failure)

    def _start(self) -> None:
        if not self._bound:
            self._queue = asyncio.Queue()
            self._slots = asyncio.Semaphore(self._max_queue)
            self._abandon = asyncio.Event()
            self._bound = True
        if not self._workers:
            self._workers = [asyncio.ensure_future(self._work(i)) for i in range(self._concurrency)]

    async def add(
        self,
        channel: str | Iterable[str],
        name: str,
        data: Any,
        socket_id: str | None = None,
        *,
        channels: str | Iterable[str] | None = None,
    ) -> int:
        if self._closed:
            raise RuntimeError("AsyncBulkSender is closed")
        fed = self._fed
        if fed is None and self._threaded:
            fed = self._start_fed()
        if fed is not None:
            try:
                return fed.add(channel, name, data, socket_id, channels=channels)
            except _NoRoom as full:
                return await self._add_when_room(fed, full.items)
        self._start()
        items = self._encoder.encode(
            channels if channels is not None else channel, name, data, socket_id
        )
        for item in items:
            await self._slots.acquire()  # cancelled here: this item was never submitted
            self.report.submitted += 1
            if self._closed:
                self._slots.release()
                self._fail([item], _CLOSED_WHILE_WAITING)
            else:
                self._queue.put_nowait(item)
        return len(items)

    async def _add_when_room(self, fed: _LoopFedSender, items: list[_Item]) -> int:
        """Wait (without blocking the loop) until the queue has room for ``items``; an
        event still waiting when the sender is closed is counted and reported failed."""
        event = self._room_event
        if event is None:
            event = self._room_event = asyncio.Event()
        loop = asyncio.get_running_loop()

        def signal() -> None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop is closed: nobody waits any more

        needed = min(len(items), fed._max_queue)
        # Woken once half the queue is free, as the sync sender's producers are.
        wanted = max(needed, fed._resume_room)
        self._adders += 1
        try:
            while True:
                event.clear()
                if self._closed:
                    return fed._refuse_waiting(items)
                with fed._qlock:
                    room = fed._room >= needed
                    if not room:
                        fed.room_freed = (wanted, signal)
                if room:
                    try:
                        return fed._add_slow(items)
                    except _NoRoom:
                        continue
                try:  # the 0.1 s bound: as the sync sender, never rely on the signal alone
                    await asyncio.wait_for(event.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._adders -= 1

    @property
    def pending(self) -> int:
        """Events queued and not yet taken by a worker (approximate while closing)."""
        if self._fed is not None:
            return self._fed.pending
        if not self._bound:
            return 0
        return max(0, self._queue.qsize() - (len(self._workers) if self._closed else 0))

    async def close(self, timeout: float | None = None) -> BulkReport:
        if self._threaded:
            return await self._close_fed(self._fed, timeout)
        if not self._closed:
            self._closed = True
            self._start()
            for _ in self._workers:
                self._queue.put_nowait(_STOP)
        limit = self.shutdown_timeout if timeout is None else timeout
        _, pending = await asyncio.wait(self._workers, timeout=limit)
        if pending:
            self._abandon.set()
            self._drain("not sent: shutdown timed out")
            # Unlike threads, tasks can be stopped: requests on the wire are
            # cancelled now and their batches reported as possibly delivered.
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._abandoned_in_flight()
        self._drain("not sent: the sender was closed")
        self.report.elapsed = time.monotonic() - self._started
        return self.report

    async def _close_fed(self, fed: _LoopFedSender | None, timeout: float | None) -> BulkReport:
        self._closed = True
        if fed is None:  # nothing was ever added
            self.report.elapsed = time.monotonic() - self._started
            return self.report
        self._loop = asyncio.get_running_loop()
        if self._room_event is not None:
            self._room_event.set()  # waiting add() calls report their events failed
        # BulkSender.close() joins the I/O thread: in the loop's executor, not in the loop.
        report = await self._loop.run_in_executor(None, fed.close, timeout)
        while self._adders:
            await asyncio.sleep(0)
        twin, self._twin = self._twin, None
        if twin is not None:
            twin.close()
            # The client's transport counts what was done on its behalf.
            http = self.client.http
            http.stale_resends += twin.stale_resends
            http.connections_opened += twin.connections_opened
        return report

    async def __aenter__(self) -> AsyncBulkSender:
        if not self._threaded:
            self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _drain(self, reason: str) -> None:
        if not self._bound:
            return
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP:
                self._slots.release()
                self._fail([item], reason)

    async def _work(self, ident: int) -> None:
        stop = False
        while not stop:
            item = await self._queue.get()
            if item is _STOP:
                return
            self._slots.release()
            items = [item]
            while len(items) < self.batch_size and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stop = True
                    break
                self._slots.release()
                items.append(item)
            self._in_flight[ident] = items
            try:
                await self._send(ident, items)
            except asyncio.CancelledError:
                raise  # close() reports the in-flight batch
            except Exception as exc:
                self._settle(ident, items, False, f"unexpected error: {exc!r}", None, 1)

    async def _send(self, ident: int, items: list[_Item]) -> None:
        policy = self._policy()
        send = async_single_attempt(self.client.http)  # one attempt: the retries are ours
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(send, items, attempt)
            self.report.requests += 1
            delay = self._wait_or_settle(policy, ident, items, outcome, attempt, requests=0)
            if delay is None:
                return
            self.report.retries += 1
            try:
                await asyncio.wait_for(self._abandon.wait(), delay)
            except asyncio.TimeoutError:
                continue
            reason = f"not sent: shutdown timed out ({outcome.reason})"
            self._settle(ident, items, False, reason, outcome.status, attempt)
            return

    async def _attempt(
        self, send: Callable[[Request], Awaitable[Raw]], items: list[_Item], attempt: int = 1
    ) -> Outcome:
        token = ATTEMPT.set(attempt) if attempt > 1 else None
        try:
            return classify(*await send(self._encoder.request(items)))
        except PusherError as exc:
            return error_outcome(exc)
        finally:
            if token is not None:
                ATTEMPT.reset(token)


__all__ = [
    "AsyncBulkSender",
    "AsyncHTTPBackend",
    "AsyncPusher",
    "AsyncSocketTransport",
    "default_async_backend",
]

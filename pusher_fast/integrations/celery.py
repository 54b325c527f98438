"""Celery tasks that trigger Pusher events, on Celery's own retries, acks and worker lifecycle.

>>> from celery import Celery                                   # doctest: +SKIP
>>> app = Celery("shop", broker="redis://127.0.0.1:6379/0")      # doctest: +SKIP
>>> pusher_tasks = install(app)  # credentials from PUSHER_URL    # doctest: +SKIP
>>> pusher_tasks.trigger.delay("orders", "created", {"id": 1})  # doctest: +SKIP

What :func:`install` sets up:
- One client per worker process, built when the process starts (``worker_process_init``: after
  the fork, so no connection is shared between processes) and closed when it stops
  (``worker_process_shutdown``).  A process that runs tasks without that signal (the ``solo``
  or ``threads`` pool, eager tasks) builds its client on first use; a client is never used in a
  process other than the one that built it.
- ``trigger(channels, event_name, data, socket_id=None)`` and ``trigger_batch(batch)``:
  ``acks_late`` (the message is acknowledged after the task ran) and
  ``reject_on_worker_lost`` (a task whose process died is given back to the broker), so the
  broker redelivers the events of a killed worker: delivery is **at least once**.  Retried by
  Celery (``autoretry_for`` :class:`PusherRetryableError`, exponential backoff with jitter):
  no answer, 408, 429, 5xx.  ``Retry-After`` is honoured when the error carries it (attribute
  ``retry_after``); otherwise the backoff applies.  Any other 4xx and bad input fail the task.
- ``trigger_grouped(channel, event_name, data, socket_id=None)``: a celery-batches task that
  collects many small calls and sends them as ``batch_events`` requests of up to 10 events,
  storing each call's own result (``{}`` or the error) in the result backend.

Where duplicates come from: a task that triggered its event but whose process died before the
message was acknowledged is delivered again (by ``reject_on_worker_lost``, or by the redis
transport once ``visibility_timeout`` has passed), and runs again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

from ..bulk import RETRYABLE_STATUSES
from ..errors import PusherError, PusherTransportError
from ._credentials import PusherCredentials, close_client

if TYPE_CHECKING:
    from celery import Celery, Task

    from ..client import Pusher

__all__ = [
    "PusherRetryableError",
    "PusherTasks",
    "get_client",
    "install",
]

_log = logging.getLogger("pusher_fast.integrations.celery")

#: Most events one ``batch_events`` request takes on the multi-tenant clusters.
MAX_BATCH = 10


class PusherRetryableError(PusherError):
    """A failure worth another try (no answer, 408, 429, 5xx); ``__cause__`` is the original."""

    def __init__(
        self, message: str, status: Optional[int] = None, retry_after: Optional[float] = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _retry_after(exc: BaseException) -> Optional[float]:
    """The server's ``Retry-After`` in seconds, when the error carries it."""
    value = getattr(exc, "retry_after", None)
    if value is None:
        headers = getattr(exc, "headers", None)
        if isinstance(headers, Mapping):
            value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date or garbage: the backoff decides


def _is_retryable(exc: PusherError) -> bool:
    return isinstance(exc, PusherTransportError) or exc.status in RETRYABLE_STATUSES


def _retryable(exc: PusherError) -> PusherRetryableError:
    error = PusherRetryableError(str(exc), exc.status, _retry_after(exc))
    error.__cause__ = exc
    return error


# -- the per-process client ------------------------------------------------------------------


@dataclass
class _Config:
    credentials: Optional[PusherCredentials]
    env: str
    client_options: dict[str, Any]


_config: Optional[_Config] = None
_lock = threading.Lock()
_client: Optional[Pusher] = None
_client_pid = 0


def _build_client() -> Pusher:
    if _config is None:
        raise RuntimeError("pusher_fast.integrations.celery.install(app) was not called")
    if _config.credentials is not None:
        return _config.credentials.client(**_config.client_options)
    from ..client import Pusher

    return Pusher.from_env(_config.env, **_config.client_options)


def get_client() -> Pusher:
    """This worker process's client (built now if the process start did not build it)."""
    global _client, _client_pid
    pid = os.getpid()
    client = _client
    if client is not None and _client_pid == pid:
        return client
    with _lock:
        if _client is None or _client_pid != pid:
            # A client inherited through fork shares its sockets with the parent: never use it.
            _client = _build_client()
            _client_pid = pid
        return _client


def _on_process_init(**_: Any) -> None:
    global _client, _client_pid
    with _lock:
        _client = None  # whatever the parent had is not ours
        try:
            _client = _build_client()
            _client_pid = os.getpid()
        except Exception:
            # A worker must still start: tasks will raise the same error, where it is seen.
            _log.exception("pusher_fast: building the Pusher client at process start failed")


def _on_process_shutdown(**_: Any) -> None:
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None and _client_pid == os.getpid():
        close_client(client)


# -- the tasks -------------------------------------------------------------------------------


def _call(fn: Any, *args: Any) -> Any:
    """Call the API; retryable failures become :class:`PusherRetryableError`."""
    try:
        return fn(*args)
    except PusherError as exc:
        if _is_retryable(exc):
            raise _retryable(exc) from exc
        raise


def _retry_now(task: Task, exc: PusherRetryableError) -> None:
    """Honour ``Retry-After``: retry after it (Celery's autoretry would use the backoff)."""
    if exc.retry_after is not None and task.request.retries < (task.max_retries or 0):
        raise task.retry(exc=exc, countdown=exc.retry_after)


@dataclass
class PusherTasks:
    """The tasks :func:`install` registered."""

    trigger: Any
    trigger_batch: Any
    trigger_grouped: Any


def install(
    app: Celery,
    *,
    credentials: Union[PusherCredentials, str, None] = None,
    env: str = "PUSHER_URL",
    client_options: Optional[dict[str, Any]] = None,
    max_retries: int = 8,
    retry_backoff: Union[int, bool] = True,
    retry_backoff_max: int = 60,
    group_flush_every: int = 100,
    group_flush_interval: float = 0.05,
    group_attempts: int = 5,
) -> PusherTasks:
    """Register the pusher_fast tasks on ``app`` and the worker-process client.

    ``credentials`` (a :class:`PusherCredentials` or a ``PUSHER_URL`` string) or, when None,
    the URL in environment variable ``env``, read by each worker process when it starts.
    ``client_options``: extra keyword arguments of :class:`~pusher_fast.Pusher`.
    ``max_retries``, ``retry_backoff``, ``retry_backoff_max``: Celery's retry of ``trigger``
    and ``trigger_batch``.  ``group_flush_every`` / ``group_flush_interval``: when
    celery-batches hands the collected ``trigger_grouped`` calls over (they are sent 10 per
    request); ``group_attempts``: tries per request for those (a batch task cannot be retried
    per call), with the same backoff, honouring ``Retry-After``.
    """
    global _config
    from celery.signals import worker_process_init, worker_process_shutdown

    if isinstance(credentials, str):
        credentials = PusherCredentials(credentials)
    _config = _Config(credentials, env, dict(client_options or {}))
    # A client built for an earlier install() has that install's credentials: drop it.
    _on_process_shutdown()
    worker_process_init.connect(_on_process_init, weak=False)
    worker_process_shutdown.connect(_on_process_shutdown, weak=False)

    retry_options: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (PusherRetryableError,),
        "retry_backoff": retry_backoff,
        "retry_backoff_max": retry_backoff_max,
        "retry_jitter": True,
        "max_retries": max_retries,
    }

    @app.task(name="pusher_fast.trigger", **retry_options)  # type: ignore[untyped-decorator]
    def trigger(
        self: Task,
        channels: Union[str, Sequence[str]],
        event_name: str,
        data: Any,
        socket_id: Optional[str] = None,
    ) -> Any:
        """Trigger one event (``Pusher.trigger``), retried by Celery."""
        try:
            return _call(get_client().trigger, channels, event_name, data, socket_id)
        except PusherRetryableError as exc:
            _retry_now(self, exc)
            raise

    @app.task(name="pusher_fast.trigger_batch", **retry_options)  # type: ignore[untyped-decorator]
    def trigger_batch(self: Task, batch: list[dict[str, Any]]) -> Any:
        """Trigger a batch of events (``Pusher.trigger_batch``), retried by Celery."""
        try:
            return _call(get_client().trigger_batch, batch)
        except PusherRetryableError as exc:
            _retry_now(self, exc)
            raise

    trigger_grouped = _grouped_task(
        app, group_flush_every, group_flush_interval, group_attempts, retry_backoff_max
    )
    return PusherTasks(trigger, trigger_batch, trigger_grouped)


def _grouped_task(app: Celery, every: int, interval: float, attempts: int, backoff_max: int) -> Any:
    """The celery-batches task ``pusher_fast.trigger_grouped``."""
    from celery_batches import Batches

    @app.task(  # type: ignore[untyped-decorator]
        name="pusher_fast.trigger_grouped",
        base=Batches,
        flush_every=every,
        flush_interval=interval,
        acks_late=True,
    )
    def trigger_grouped(requests: Sequence[Any]) -> None:
        """Send the collected calls as batch requests of up to 10 events; each call gets its
        own result (``{}``) or failure in the result backend."""
        _send_grouped(app, requests, attempts, backoff_max)

    return trigger_grouped


def _event_of(request: Any) -> dict[str, Any]:
    """The batch event a ``trigger_grouped(channel, event_name, data, socket_id=None)`` call
    stands for (positional or keyword arguments)."""
    args = list(request.args or ())
    kwargs = dict(request.kwargs or {})
    names = ("channel", "event_name", "data", "socket_id")
    values = dict(zip(names, args))
    values.update({k: v for k, v in kwargs.items() if k in names})
    missing = [n for n in names[:3] if n not in values]
    if missing or len(args) > len(names) or set(kwargs) - set(names):
        raise TypeError(
            "trigger_grouped takes (channel, event_name, data, socket_id=None); got "
            f"args={len(args)} kwargs={sorted(kwargs)}"
        )
    event = {"channel": values["channel"], "name": values["event_name"], "data": values["data"]}
    if values.get("socket_id"):
        event["socket_id"] = values["socket_id"]
    return event


def _send_grouped(app: Celery, requests: Sequence[Any], attempts: int, backoff_max: float) -> None:
    backend = app.backend
    ready: list[tuple[Any, dict[str, Any]]] = []
    for request in requests:
        try:
            ready.append((request, _event_of(request)))
        except (TypeError, ValueError) as exc:
            backend.mark_as_failure(request.id, exc, request=request)
    client = get_client()
    for start in range(0, len(ready), MAX_BATCH):
        chunk = ready[start : start + MAX_BATCH]
        error = _send_chunk(client, [event for _, event in chunk], attempts, backoff_max)
        if error is None:
            for request, _ in chunk:
                backend.mark_as_done(request.id, {}, request=request)
        elif isinstance(error, PusherRetryableError) or len(chunk) == 1:
            for request, _ in chunk:
                backend.mark_as_failure(request.id, error, request=request)
        else:
            # Refused as a whole (bad input, a 4xx): send one by one, so only the bad calls fail.
            for request, event in chunk:
                single = _send_chunk(client, [event], attempts, backoff_max)
                if single is None:
                    backend.mark_as_done(request.id, {}, request=request)
                else:
                    backend.mark_as_failure(request.id, single, request=request)


def _send_chunk(
    client: Pusher, events: list[dict[str, Any]], attempts: int, backoff_max: float
) -> Optional[Exception]:
    """Send one batch request, retrying what is retryable; the final error, or None."""
    for attempt in range(1, attempts + 1):
        try:
            _call(client.trigger_batch, events)
            return None
        except PusherRetryableError as exc:
            if attempt == attempts:
                return exc
            delay = exc.retry_after
            if delay is None:
                ceiling = min(backoff_max, 0.1 * 2 ** (attempt - 1))
                delay = ceiling / 2 + random.random() * ceiling / 2
            time.sleep(min(delay, backoff_max))
        except (PusherError, ValueError, TypeError) as exc:
            return exc
    return None  # pragma: no cover - the loop always returns

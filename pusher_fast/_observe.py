"""Logs and metrics: the ``pusher_fast`` logger and the ``on_request=`` hook.

Every transport's ``send_once`` is wrapped (:func:`observed`, applied by the
``PolicyTransport`` mixins): when neither a hook is set nor DEBUG enabled on the logger, the
wrapper costs one ``is None`` test and one ``isEnabledFor`` call (cached by logging).
Otherwise it times the attempt and makes one :class:`RequestRecord`.  Records and log lines
carry the path without its query (the query holds ``auth_signature``), never the body.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

logger = logging.getLogger("pusher_fast")
# A library stays silent unless the application configures logging.
logger.addHandler(logging.NullHandler())

DEBUG = _DEBUG = logging.DEBUG
#: ``debug_enabled(DEBUG)``: the logger's own check, cached by logging (about 50 ns).
debug_enabled = _is_enabled = logger.isEnabledFor

#: The attempt number of the request being sent, set by the retry loops from the second
#: attempt on (unset: the first).
ATTEMPT: ContextVar[int] = ContextVar("pusher_fast_attempt")
#: While an attempt is observed: a list the socket transports append to, for each
#: connection the attempt used, whether it was kept-alive (True) or new (False).
CONNECTION: ContextVar[Optional[list[bool]]] = ContextVar("pusher_fast_connection", default=None)


@dataclass(frozen=True)
class RequestRecord:
    """One request attempt, as given to ``on_request=`` (immutable).

    ``path`` has no query string; ``status`` is None when no answer came, and ``error``
    then names the exception's class; ``duration`` is in seconds; ``attempt`` counts from 1;
    ``bytes_sent`` is the size of the request body; ``reused`` says whether a kept-alive
    connection carried it (None when the transport does not know).
    """

    method: str
    path: str
    status: Optional[int]
    error: Optional[str]
    duration: float
    attempt: int
    bytes_sent: int
    reused: Optional[bool] = None


OnRequest = Callable[[RequestRecord], Any]


def check_hook(on_request: object) -> Optional[OnRequest]:
    """``on_request`` if it is None or callable, else a ``TypeError``."""
    if on_request is not None and not callable(on_request):
        raise TypeError(
            f"on_request should be a callable taking a RequestRecord, got {on_request!r}"
        )
    return on_request


def _report(
    transport: Any,
    request: Any,
    started: float,
    status: Optional[int],
    error: Optional[BaseException],
    box: Optional[list[bool]],
) -> None:
    duration = time.perf_counter() - started
    record = RequestRecord(
        request.method,
        request.path,
        status,
        None if error is None else type(error).__name__,
        duration,
        ATTEMPT.get(1),
        len(request.body),
        box[-1] if box else None,
    )
    if _is_enabled(_DEBUG):
        connection = "unknown" if record.reused is None else "reused" if record.reused else "new"
        logger.debug(
            "%s %s -> %s in %.1f ms (attempt %d, %s connection)",
            record.method,
            record.path,
            record.status if error is None else record.error,
            duration * 1000.0,
            record.attempt,
            connection,
            extra={"pusher_request": record},
        )
    hook = getattr(transport, "on_request", None)
    if hook is not None:
        try:
            hook(record)
        except Exception:
            logger.exception("on_request hook raised (the request itself is unaffected)")


R = TypeVar("R")


class _Observation:
    """One observed attempt, shared by both wrappers: ``with`` it around ``send_once``
    and pass the answer through :meth:`done`.  It gives the transport a fresh
    :data:`CONNECTION` box, times the attempt and reports it (an ``Exception`` as an
    error; a cancellation or other ``BaseException`` is not reported)."""

    __slots__ = ("_box", "_raw", "_request", "_started", "_token", "_transport")

    def __init__(self, transport: Any, request: Any) -> None:
        self._transport = transport
        self._request = request

    def __enter__(self) -> _Observation:
        self._box: list[bool] = []
        self._token = CONNECTION.set(self._box)
        self._started = time.perf_counter()
        return self

    def done(self, raw: R) -> R:
        """``raw``, kept to report its status when the ``with`` block ends."""
        self._raw: Any = raw
        return raw

    def __exit__(self, exc_type: object, exc: Optional[BaseException], tb: object) -> None:
        if exc is None:
            CONNECTION.reset(self._token)
            _report(self._transport, self._request, self._started, self._raw[0], None, self._box)
            return
        try:
            if isinstance(exc, Exception):
                _report(self._transport, self._request, self._started, None, exc, self._box)
        finally:
            CONNECTION.reset(self._token)


def _marked(send_once: Callable[..., Any], send: Callable[..., Any]) -> None:
    functools.update_wrapper(send, send_once)
    send.__wrapped_for_observation__ = True  # type: ignore[attr-defined]


def observed(send_once: Callable[[Any, Any], R]) -> Callable[[Any, Any], R]:
    """Wrap a blocking transport's ``send_once`` to log and report each attempt."""

    def send(self: Any, request: Any) -> R:
        if self.on_request is None and not _is_enabled(_DEBUG):
            return send_once(self, request)
        with _Observation(self, request) as seen:
            return seen.done(send_once(self, request))

    _marked(send_once, send)
    return send


def async_observed(
    send_once: Callable[[Any, Any], Awaitable[R]],
) -> Callable[[Any, Any], Awaitable[R]]:
    """:func:`observed` for an asyncio transport's ``send_once``."""

    async def send(self: Any, request: Any) -> R:
        if self.on_request is None and not _is_enabled(_DEBUG):
            return await send_once(self, request)
        with _Observation(self, request) as seen:
            return seen.done(await send_once(self, request))

    _marked(send_once, send)
    return send


def log_retry(request: Any, attempt: int, outcome: object, delay: float) -> None:
    """WARNING: attempt ``attempt`` of ``request`` failed and is retried after ``delay``."""
    if isinstance(outcome, tuple):
        what = f"status {outcome[0]}"
    else:
        what = type(outcome).__name__
    logger.warning(
        "%s %s: attempt %d failed (%s), retrying in %.2f s",
        request.method,
        request.path,
        attempt,
        what,
        delay,
    )


def log_resend(request: Any) -> None:
    """WARNING: a kept-alive connection was stale; the request is sent on a new one."""
    logger.warning(
        "%s %s: kept-alive connection closed by the server before the request was written, "
        "sending it on a new connection",
        request.method,
        request.path,
    )


__all__ = [
    "ATTEMPT",
    "CONNECTION",
    "DEBUG",
    "OnRequest",
    "RequestRecord",
    "async_observed",
    "check_hook",
    "debug_enabled",
    "log_resend",
    "log_retry",
    "logger",
    "observed",
]

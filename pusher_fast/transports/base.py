"""What every transport shares: the declared interfaces, the TLS context and proxy lookup
(requests' ``verify``/``cert``/``proxies``, from :mod:`pusher_fast._options`), the
connection errors, the one ``PusherTransportError`` builder, and :func:`process_response`,
which turns any transport's (status, body) into a result or a ``PusherError``.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Mapping
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

from .._options import (
    CertArg,
    ProxiesArg,
    VerifyArg,
    is_default_tls,
    select_proxy,
)
from .._options import ssl_context as make_ssl_context
from .._request import Request, process_response
from ..errors import PusherTransportError

#: (status, body, headers) of one answer.
Raw = tuple[int, bytes, Mapping[str, str]]


@runtime_checkable
class SyncTransport(Protocol):
    """A blocking transport: what ``Pusher`` and ``BulkSender`` call."""

    def send_request(self, request: Request) -> Any:
        """The parsed answer, or the ``PusherError`` for it, under the delivery policy."""

    def send_raw(self, request: Request) -> Raw:
        """(status, body, headers) under the delivery policy; no answer raises
        ``PusherTransportError``."""

    def send_once(self, request: Request) -> Raw:
        """One attempt, without ``retries=`` (the bulk senders apply their own policy)."""

    def close(self) -> None:
        """Close pooled connections; the transport stays usable."""


@runtime_checkable
class AsyncTransport(Protocol):
    """An asyncio transport: what ``AsyncPusher`` and ``AsyncBulkSender`` await."""

    async def send_request(self, request: Request) -> Any: ...

    async def send_raw(self, request: Request) -> Raw: ...

    async def send_once(self, request: Request) -> Raw: ...

    async def aclose(self) -> None: ...


# What sending raises when the server closed (or reset) the connection: a kept-alive
# connection gone stale, or a server that answered and closed.
CONNECTION_CLOSED = (
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class ClosedByServer(ConnectionResetError):
    """The server closed the connection before any byte of an answer."""


class NotWritten(Exception):
    """Internal to the socket transports: a kept-alive connection failed before the
    request was fully written, so it surely was not processed (sent once more)."""


def transport_error(
    request: Request, exc: object, ambiguous: bool = False, detail: Optional[str] = None
) -> PusherTransportError:
    """The ``PusherTransportError`` for ``request`` that got no answer because of ``exc``
    (``detail``: how to show it, ``str(exc)`` by default)."""
    shown = str(exc) if detail is None else detail
    return PusherTransportError(
        f"{request.method} {request.base_url}{request.path} failed: {shown}",
        ambiguous=ambiguous,
    )


def connection_error(
    request: Request, exc: BaseException, ambiguous: bool = False
) -> PusherTransportError:
    """:func:`transport_error` naming the exception's class (the socket transports)."""
    return transport_error(request, exc, ambiguous, f"{type(exc).__name__}: {exc}")


def _attempt_method(http: Any) -> Optional[Callable[..., Any]]:
    """The backend's one-attempt method: ``send_once``, unless the nearest class defining
    ``send_raw`` does not define it (a subclass changed ``send_raw``: that is what it wants
    called); ``send_raw`` if only that exists; None for a backend with ``send_request`` only."""
    for klass in type(http).__mro__:
        if "send_raw" in vars(klass):
            return http.send_once if "send_once" in vars(klass) else http.send_raw  # type: ignore[no-any-return]
    return getattr(http, "send_raw", None)


_DELIVERED: Raw = (200, b"", {})


def single_attempt(http: Any) -> Callable[[Request], Raw]:
    """One attempt with a blocking backend, as (status, body, headers); a user backend with
    only ``send_request`` is adapted (an answer counts as a 200, errors raise)."""
    method = _attempt_method(http)
    if method is not None:
        return method

    def send(request: Request) -> Raw:
        http.send_request(request)
        return _DELIVERED

    return send


def async_single_attempt(http: Any) -> Callable[[Request], Awaitable[Raw]]:
    """:func:`single_attempt` for an asyncio backend."""
    method = _attempt_method(http)
    if method is not None:
        return method

    async def send(request: Request) -> Raw:
        await http.send_request(request)
        return _DELIVERED

    return send


Transport = Union[SyncTransport, AsyncTransport]

__all__ = [
    "CONNECTION_CLOSED",
    "AsyncTransport",
    "CertArg",
    "ClosedByServer",
    "NotWritten",
    "ProxiesArg",
    "Raw",
    "SyncTransport",
    "Transport",
    "VerifyArg",
    "async_single_attempt",
    "connection_error",
    "is_default_tls",
    "make_ssl_context",
    "process_response",
    "select_proxy",
    "single_attempt",
    "transport_error",
]

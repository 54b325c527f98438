"""What every transport shares: the declared interfaces, the TLS context and proxy lookup
(requests' ``verify``/``cert``/``proxies``, from :mod:`pusher_fast._options`), the
connection errors, the one ``PusherTransportError`` builder, and :func:`process_response`,
which turns any transport's (status, body) into a result or a ``PusherError``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Awaitable
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union, runtime_checkable

from .._http11 import RequestEncoder, host_header
from .._observe import OnRequest, async_observed, check_hook, observed
from .._options import (
    CertArg,
    ProxiesArg,
    VerifyArg,
    is_default_tls,
    select_proxy,
)
from .._options import ssl_context as make_ssl_context
from .._request import Request, process_response
from .._retry import (
    DeliveryPolicy,
    Raw,
    RetriesArg,
    async_send_with_policy,
    make_policy,
    send_with_policy,
)
from ..errors import PusherTransportError

if TYPE_CHECKING:
    from ..client import Pusher


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


class _Observed:
    """Wraps each subclass's ``send_once`` with ``_observe_with`` (:mod:`pusher_fast._observe`)
    so every attempt is logged and reported to ``self.on_request``."""

    policy: DeliveryPolicy
    #: Called with a ``RequestRecord`` after each attempt (the ``on_request=`` option).
    on_request: Optional[OnRequest] = None
    _observe_with: Callable[[Any], Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        method = vars(cls).get("send_once")
        if method is not None and not hasattr(method, "__wrapped_for_observation__"):
            cls.send_once = cls._observe_with(method)  # type: ignore[attr-defined]


class PolicyTransport(_Observed):
    """``send_raw`` and ``send_request`` of a blocking transport from its ``send_once``,
    under its delivery policy (``self.policy``), each attempt observed."""

    _observe_with = staticmethod(observed)

    def send_once(self, request: Request) -> Raw:
        raise NotImplementedError

    def send_raw(self, request: Request) -> Raw:
        """Send and return (status, body, headers) under the delivery policy; no answer
        raises PusherTransportError."""
        if not self.policy.total:
            return self.send_once(request)
        return send_with_policy(self.policy, self.send_once, request)

    def send_request(self, request: Request) -> Any:
        """Send ``request``; the parsed JSON, or the ``PusherError`` for the answer."""
        status, body, _ = self.send_raw(request)
        return process_response(status, body)


class AsyncPolicyTransport(_Observed):
    """:class:`PolicyTransport` for an asyncio transport."""

    _observe_with = staticmethod(async_observed)

    async def send_once(self, request: Request) -> Raw:
        raise NotImplementedError

    async def send_raw(self, request: Request) -> Raw:
        """Send and return (status, body, headers) under the delivery policy; no answer
        raises PusherTransportError."""
        if not self.policy.total:
            return await self.send_once(request)
        return await async_send_with_policy(self.policy, self.send_once, request)

    async def send_request(self, request: Request) -> Any:
        """Send ``request``; the parsed JSON, or the ``PusherError`` for the answer."""
        status, body, _ = await self.send_raw(request)
        return process_response(status, body)


class SocketSetup:
    """The configuration both socket transports share: no proxy (the selection functions
    pick another transport when one applies), the policy, TLS, the request encoder."""

    #: How the transport is named in errors, and what to use instead when a proxy applies.
    _name = ""
    _instead = ""

    def __init__(
        self,
        client: Pusher,
        *,
        ca_certs: Optional[str] = None,
        retries: RetriesArg = None,
        at_least_once: bool = False,
        verify: VerifyArg = True,
        cert: CertArg = None,
        proxies: ProxiesArg = None,
        on_request: Optional[OnRequest] = None,
    ) -> None:
        # The environment's proxies are the selection function's business; explicit ones
        # here would be silently ignored.
        if select_proxy(proxies, client.scheme, client.host, environment=False) is not None:
            raise ValueError(f"{self._name} does not speak to proxies: use {self._instead}")
        self.policy = make_policy(retries, at_least_once)
        self.on_request = check_hook(on_request)
        #: The options as given, for a twin transport of the same setup (see ``aio``).
        self.setup_options: dict[str, Any] = {
            "ca_certs": ca_certs, "retries": retries, "at_least_once": at_least_once,
            "verify": verify, "cert": cert, "proxies": proxies, "on_request": on_request,
        }  # fmt: skip
        self.client = client
        self.timeout = float(client.timeout)
        self.ssl_context: Optional[ssl.SSLContext] = (
            make_ssl_context(ca_certs, verify, cert) if client.ssl else None
        )
        self._host = client.host
        self._port = client.port
        self._encoder = RequestEncoder(
            host_header(client.host, client.port, 443 if client.ssl else 80)
        )
        self._generation = 0
        #: Requests sent a second time because their kept-alive connection was stale.
        self.stale_resends = 0
        #: Connections opened so far (TCP, and TLS handshakes for https).
        self.connections_opened = 0


def check_positive(name: str, value: object) -> None:
    """``ValueError`` unless ``value`` is a positive int (a pool size)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} should be a positive int, got {value!r}")


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


# -- connections tied to an event loop ----------------------------------------------------------


def close_transport_without_loop(transport: Any) -> None:
    """Close an asyncio transport whose event loop is closed.

    A closed loop can no longer run the transport's own closing (``abort()`` raises), and
    the transport would warn (ResourceWarning) when collected: run that closing here, which
    closes its socket, then close the socket itself in case the transport kept it.
    """
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    # A TLS transport wraps the loop's socket transport, which owns the socket.
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    for t in (inner, transport):
        if t is None:
            continue
        if hasattr(t, "_closed"):
            t._closed = True  # the TLS wrapper's "closed" flag (no socket of its own)
        lost = getattr(t, "_call_connection_lost", None)
        if lost is not None and getattr(t, "_sock", None) is not None:
            try:
                lost(None)  # closes the socket; the protocol's callback may need the loop
            except Exception:
                t._sock = None
    raw = getattr(sock, "_sock", sock)  # asyncio hands out a wrapper of the socket
    close = getattr(raw, "close", None)
    if close is not None:
        close()


async def _run_at_shutdown(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()


async def close_at_loop_shutdown(
    close: Callable[[], Awaitable[None]],
) -> AsyncGenerator[None, None]:
    """Arrange for ``close()`` to run in the running loop when ``asyncio.run()`` (or
    ``loop.shutdown_asyncgens()``) shuts it down, while it can still close connections
    properly.  Keep the returned object: the loop holds it weakly."""
    guard = _run_at_shutdown(close)
    await guard.asend(None)  # started: the loop now knows it, and closes it at shutdown
    return guard


def _attempt_method(http: Any) -> Optional[Callable[..., Any]]:
    """The backend's one-attempt method: ``send_once``, unless a subclass overrides
    ``send_raw`` below it (then ``send_raw`` is what it wants called); ``send_raw`` if it
    has only that; None for a backend with ``send_request`` only."""
    for klass in type(http).__mro__:
        if "send_once" in vars(klass):
            return http.send_once  # type: ignore[no-any-return]
        if "send_raw" in vars(klass):
            return http.send_raw  # type: ignore[no-any-return]
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
    "AsyncPolicyTransport",
    "AsyncTransport",
    "CertArg",
    "ClosedByServer",
    "NotWritten",
    "PolicyTransport",
    "ProxiesArg",
    "Raw",
    "SocketSetup",
    "SyncTransport",
    "Transport",
    "VerifyArg",
    "async_single_attempt",
    "check_positive",
    "close_at_loop_shutdown",
    "close_transport_without_loop",
    "connection_error",
    "is_default_tls",
    "make_ssl_context",
    "process_response",
    "select_proxy",
    "single_attempt",
    "transport_error",
]

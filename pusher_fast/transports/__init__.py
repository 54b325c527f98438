"""The transports, and which one a client gets.

``base`` declares the interface and what every transport shares; ``sockets`` and
``aio_sockets`` are the defaults (sync and asyncio); ``urllib3_pool`` and
``aiohttp_session`` take over when a proxy applies or a pool/session of the user's is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from .._options import check_options
from .aio_sockets import AsyncHTTPBackend, AsyncSocketTransport
from .base import AsyncTransport, SyncTransport, select_proxy
from .sockets import HTTPClientBackend, SocketTransport
from .urllib3_pool import Urllib3Backend

if TYPE_CHECKING:
    from ..client import Pusher

#: The keywords ``Pusher(...)`` takes for its default transport.
ACCEPTED_OPTIONS = frozenset(
    (
        "maxsize",
        "ca_certs",
        "retries",
        "at_least_once",
        "verify",
        "cert",
        "proxies",
        "pool_manager",
        "on_request",
    )
)
#: The keywords ``AsyncPusher(...)`` takes for its default transport.
ACCEPTED_ASYNC_OPTIONS = frozenset(
    (
        "limit",
        "ca_certs",
        "retries",
        "at_least_once",
        "session",
        "verify",
        "cert",
        "proxies",
        "on_request",
    )
)

Backend = Union[SocketTransport, Urllib3Backend]


def default_backend(client: Pusher, **options: Any) -> Backend:
    """The transport a ``Pusher`` gets by default: :class:`SocketTransport`, unless a proxy
    applies (``proxies=``, else the environment's ``https_proxy``/``http_proxy`` and
    ``no_proxy``) or ``pool_manager=`` is given: then :class:`Urllib3Backend` with the same
    options.  ``retries=`` does not change the transport.  Any keyword other than
    :data:`ACCEPTED_OPTIONS` is a ``TypeError``.

    >>> import pusher_fast
    >>> client = pusher_fast.Pusher(app_id="1", key="k", secret="s", backend=default_backend)
    >>> type(client.http).__name__
    'SocketTransport'
    """
    check_options(options, ACCEPTED_OPTIONS, "Pusher() (default transport)")
    if (
        options.get("pool_manager") is not None
        or select_proxy(options.get("proxies"), client.scheme, client.host) is not None
    ):
        return Urllib3Backend(client, **options)
    options.pop("pool_manager", None)
    return SocketTransport(client, **options)


def default_async_backend(client: Pusher, **options: Any) -> Union[AsyncSocketTransport, Any]:
    """The transport an ``AsyncPusher`` gets by default: :class:`AsyncSocketTransport`,
    unless a proxy applies to the client's host or ``session=`` (an
    ``aiohttp.ClientSession``) is given: then aiohttp's ``AsyncIOBackend``, which honours
    the proxy settings.  Another keyword than :data:`ACCEPTED_ASYNC_OPTIONS` is a
    ``TypeError``.
    """
    check_options(options, ACCEPTED_ASYNC_OPTIONS, "AsyncPusher() (default transport)")
    proxy = select_proxy(options.get("proxies"), client.scheme, client.host)
    if options.get("session") is None and proxy is None:
        options.pop("session", None)
        return AsyncSocketTransport(client, **options)
    try:
        from .aiohttp_session import AsyncIOBackend  # aiohttp is an optional extra
    except ImportError as exc:
        raise ImportError(
            f"a proxy applies to {client.host!r} and the built-in asyncio transport does not "
            "speak to proxies: install aiohttp (pip install 'pusher-fast[aiohttp]')"
        ) from exc
    options.setdefault("trust_env", True)
    return AsyncIOBackend(client, **options)


__all__ = [
    "ACCEPTED_ASYNC_OPTIONS",
    "ACCEPTED_OPTIONS",
    "AsyncHTTPBackend",
    "AsyncSocketTransport",
    "AsyncTransport",
    "HTTPClientBackend",
    "SocketTransport",
    "SyncTransport",
    "Urllib3Backend",
    "default_async_backend",
    "default_backend",
]

"""The aiohttp transport (optional extra ``pusher-fast[aiohttp]``): one pooled
``aiohttp.ClientSession`` per client; used for proxies, a user's ``session=``, or when
asked for.  Public as :class:`pusher_fast.aiohttp.AsyncIOBackend`.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from typing import TYPE_CHECKING, Any, Optional

import aiohttp
from yarl import URL

from .._observe import OnRequest, check_hook
from .._request import Request, wire_query
from .._retry import RetriesArg, make_policy
from . import base
from .base import AsyncPolicyTransport, Raw

if TYPE_CHECKING:
    from ..client import Pusher


class AsyncIOBackend(AsyncPolicyTransport):
    """Sends requests over one pooled ``aiohttp.ClientSession`` per client.

    Options: ``limit`` (connections in the pool, default 100), ``session`` (an
    ``aiohttp.ClientSession`` of your own, which you then close yourself),
    ``ca_certs`` (a CA bundle instead of the system store), ``trust_env``
    (proxies from the environment, as aiohttp reads them; off by default),
    requests' ``verify``, ``cert`` and ``proxies`` (:mod:`pusher_fast._options`),
    ``retries`` and ``at_least_once`` (the delivery policy of every transport:
    see :mod:`pusher_fast._retry`; a failure to connect is surely unprocessed,
    any other failure may have been processed).
    The session is made on first use, inside the running event loop.
    """

    # Its public name, as in the official library (``pusher.aiohttp.AsyncIOBackend``).
    __module__ = "pusher_fast.aiohttp"

    def __init__(
        self,
        client: Pusher,
        *,
        limit: int = 100,
        session: aiohttp.ClientSession | None = None,
        retries: RetriesArg = None,
        at_least_once: bool = False,
        ca_certs: str | None = None,
        trust_env: bool = False,
        verify: base.VerifyArg = True,
        cert: base.CertArg = None,
        proxies: base.ProxiesArg = None,
        on_request: Optional[OnRequest] = None,
    ) -> None:
        self.policy = make_policy(retries, at_least_once)
        self.on_request = check_hook(on_request)
        self.client = client
        self._limit = limit
        self._session = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown_guard: Any = None
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=client.timeout)
        self._trust_env = trust_env
        self._ssl: ssl.SSLContext | bool = True
        if ca_certs or not base.is_default_tls(verify, cert):
            self._ssl = base.make_ssl_context(ca_certs, verify, cert)
        # An explicit proxy goes with each request; trust_env covers the environment's.
        self._proxy: str | None = None
        if proxies is not None:
            self._proxy = base.select_proxy(proxies, client.scheme, client.host)
            if self._proxy is None:
                trust_env = False  # requests' {"https": None}: no proxy, not even the environment's

    async def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        loop = asyncio.get_running_loop()
        if session is not None and self._owns_session and self._loop is not loop:
            # A session belongs to the loop that made it (asyncio.run() twice, say):
            # close the old one (its loop's shutdown normally did) and start afresh.
            _close_session_now(session)
            session = None
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=30, ssl=self._ssl)
            session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, trust_env=self._trust_env
            )
            self._session = session
            self._loop = loop
            self._owns_session = True
            # Closed by asyncio.run() as it shuts the loop down, while the loop can still
            # close it cleanly (weakly: the loop must not keep a dropped client alive).
            this = weakref.ref(self)

            async def close_at_shutdown() -> None:
                backend = this()
                if backend is not None and backend._session is session:
                    await backend.aclose()

            self._shutdown_guard = await base.close_at_loop_shutdown(close_at_shutdown)
        return session

    async def send_once(self, request: Request) -> Raw:
        """One attempt (the bulk senders apply their own policy)."""
        # encoded=True: the query is sent exactly as signed.
        # A non-ASCII key is percent-encoded in the query (not in an IDN host).
        target = request.base_url + request.path + "?" + wire_query(request.query_string)
        url = URL(target, encoded=True)
        try:
            session = await self._get_session()
            async with session.request(
                request.method, url, data=request.body, headers=request.headers, proxy=self._proxy
            ) as response:
                return response.status, await response.read(), response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # Only a failure to connect says the request was surely not sent.
            ambiguous = not isinstance(exc, aiohttp.ClientConnectorError)
            raise base.transport_error(request, exc, ambiguous, repr(exc)) from exc

    def __del__(self) -> None:
        # Dropped without aclose(): close the session we made now (aiohttp warns otherwise).
        session = getattr(self, "_session", None)
        if session is not None and getattr(self, "_owns_session", False):
            _close_session_now(session)

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> AsyncIOBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _close_session_now(session: aiohttp.ClientSession) -> None:
    """Close a session of ours without awaiting (its loop may be closed, or not running).

    Uses the connector's synchronous close (aiohttp's ``session.close()`` is a coroutine
    of the session's own loop); the sockets of a closed loop are closed directly.
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    loop = getattr(connector, "_loop", None)
    if loop is not None and loop.is_closed():
        protocols = [p for conns in getattr(connector, "_conns", {}).values() for p, _ in conns]
        protocols += list(getattr(connector, "_acquired", ()))
        for protocol in protocols:
            base.close_transport_without_loop(getattr(protocol, "transport", None))
    close = getattr(connector, "_close", None)
    if close is not None:
        close()  # marks it closed; closes live-loop transports through their loop


__all__ = ["AsyncIOBackend"]

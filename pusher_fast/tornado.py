"""A transport on Tornado's ``AsyncHTTPClient`` (optional extra: ``pusher-fast[tornado]``).

A drop-in for ``pusher.tornado.TornadoBackend``: with
``backend=pusher_fast.tornado.TornadoBackend`` the client's request methods
return a Future to await (or yield from a ``tornado.gen.coroutine``), which
resolves to the parsed answer or raises the ``PusherError`` for it.  Call them
while the IOLoop is running.  For new asyncio code,
:class:`pusher_fast.aio.AsyncPusher` is faster and needs no extra.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

# Absolute imports: this module's own name does not shadow the tornado package.
import tornado.httpclient

from ._observe import OnRequest, async_observed, check_hook
from ._request import GET, Request
from .transports.base import Raw, process_response, transport_error

if TYPE_CHECKING:
    from .client import Pusher

# Tornado reports "no answer" (connect failure, timeout) as this pseudo-status.
_NO_ANSWER = 599


class TornadoBackend:
    """Sends requests with ``tornado.httpclient.AsyncHTTPClient``.

    ``options`` go to each ``tornado.httpclient.HTTPRequest`` as in the
    official backend (``validate_cert=``, ``ca_certs=``, ``proxy_host=``...).
    Unlike the official backend it sends the ``X-Pusher-Library`` header, no
    body on GET (Tornado refuses one), and reports a request that got no answer
    as ``PusherTransportError``.
    """

    def __init__(self, client: Pusher, **options: Any) -> None:
        if options.pop("retries", None):
            raise TypeError(
                "TornadoBackend does not retry (retries=): use the default transport "
                "or the bulk sender for retries"
            )
        self.client = client
        self.on_request: Optional[OnRequest] = check_hook(options.pop("on_request", None))
        self.options = options

    def send_request(self, request: Request) -> asyncio.Future[Any]:
        """Start the request; the Future resolves to the answer (the loop must run)."""
        return asyncio.get_running_loop().create_task(self._send(request))

    async def _send(self, request: Request) -> Any:
        status, body, _ = await self._send_once(request)
        return process_response(status, body)

    @async_observed
    async def _send_once(self, request: Request) -> Raw:
        http_request = tornado.httpclient.HTTPRequest(
            request.url,
            method=request.method,
            body=None if request.method == GET else request.body,
            headers=request.headers,
            connect_timeout=self.client.timeout,
            request_timeout=self.client.timeout,
            **self.options,
        )
        try:
            # The client is per IOLoop (Tornado caches it), so look it up here, in the loop.
            response = await tornado.httpclient.AsyncHTTPClient().fetch(
                http_request, raise_error=False
            )
        except OSError as exc:
            raise transport_error(request, exc, detail=repr(exc)) from exc
        if response.code == _NO_ANSWER:
            error = response.error
            raise transport_error(request, error, detail=repr(error)) from error
        return response.code, response.body or b"", response.headers


__all__ = ["TornadoBackend"]

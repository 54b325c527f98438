"""The aiohttp transport (optional extra: ``pip install pusher-fast[aiohttp]``).

``AsyncIOBackend`` is a drop-in for ``pusher.aiohttp.AsyncIOBackend`` (pass it
as ``backend=``; the client's request methods then return awaitables), but it
keeps ONE pooled ``aiohttp.ClientSession`` per client instead of opening one
per call.  The first-class async client, :class:`~pusher_fast.aio.AsyncPusher`,
is re-exported here; it uses aiohttp only when asked
(``AsyncPusher(..., backend=AsyncIOBackend)``) or when a proxy applies.

>>> async with AsyncPusher(app_id="1", key="k", secret="s",  # doctest: +SKIP
...                        backend=AsyncIOBackend) as client:
...     await client.trigger("orders", "created", {"id": 1})
"""

from __future__ import annotations

from .aio import AsyncBulkSender, AsyncHTTPBackend, AsyncPusher, default_async_backend
from .transports.aiohttp_session import AsyncIOBackend

__all__ = [
    "AsyncBulkSender",
    "AsyncHTTPBackend",
    "AsyncIOBackend",
    "AsyncPusher",
    "default_async_backend",
]

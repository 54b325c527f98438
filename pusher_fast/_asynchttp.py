"""Moved: the asyncio socket transport is :mod:`pusher_fast.transports.aio_sockets`; kept
so that earlier imports keep working."""

from .transports.aio_sockets import AsyncHTTPBackend, AsyncSocketTransport

__all__ = ["AsyncHTTPBackend", "AsyncSocketTransport"]

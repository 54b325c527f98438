"""Moved: the sync socket transport is :mod:`pusher_fast.transports.sockets`; kept so that
earlier imports keep working."""

from ._http11 import ResponseHeaders
from .transports import ACCEPTED_OPTIONS, default_backend
from .transports.base import make_ssl_context
from .transports.sockets import HTTPClientBackend, SocketTransport

__all__ = [
    "ACCEPTED_OPTIONS",
    "HTTPClientBackend",
    "ResponseHeaders",
    "SocketTransport",
    "default_backend",
    "make_ssl_context",
]

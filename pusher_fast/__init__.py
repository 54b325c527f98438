"""pusher_fast: a fast, drop-in replacement for the ``pusher`` package.

>>> import pusher_fast as pusher
>>> client = pusher.Pusher(app_id="123456", key="key", secret="secret", cluster="eu")

``IMPLEMENTATION`` says which signing path is active: ``"native"`` (the C
extension) or ``"python"`` (forced with ``PUSHER_FAST_PURE=1``, or when the
extension is not built).  ``HASHING`` says which code computes HMAC-SHA256:
``"sha-ni"`` (the C extension with the x86 SHA extensions), ``"openssl"`` (the
standard library: on non-x86 CPUs and on the pure-Python path) or
``"portable+openssl"`` (x86 without SHA-NI: short messages in C, long ones in
OpenSSL).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from ._observe import RequestRecord
from ._options import InsecureTransportWarning
from ._signing import HASHING, IMPLEMENTATION
from ._webhook import Webhook, WebhookEvent
from .bulk import BulkReport, FailedEvent
from .client import Pusher
from .errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherError,
    PusherForbidden,
    PusherTransportError,
    PusherWebhookError,
)
from .types import (
    BatchResult,
    BulkReportDict,
    ChannelAttributes,
    ChannelAuth,
    ChannelCache,
    ChannelInfo,
    ChannelsInfo,
    FailedEventData,
    TerminateResult,
    TriggerResult,
    User,
    UserAuth,
    UsersInfo,
    WebhookEventData,
    WebhookPayload,
)
from .version import VERSION

__version__ = VERSION

# Transports and helpers with optional dependencies load on first access, so
# ``pusher.requests.RequestsBackend`` and ``pusher.aiohttp.AsyncIOBackend``
# work after ``import pusher_fast as pusher`` as they do in the official
# package (where constructing a client imports ``pusher.requests``).  Hidden
# from type checkers: they see a submodule only where it is imported.
_LAZY_SUBMODULES = frozenset(("aio", "aiohttp", "bulk", "requests", "testing", "tornado"))

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _LAZY_SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HASHING",
    "IMPLEMENTATION",
    "VERSION",
    "BatchResult",
    "BulkReport",
    "BulkReportDict",
    "ChannelAttributes",
    "ChannelAuth",
    "ChannelCache",
    "ChannelInfo",
    "ChannelsInfo",
    "FailedEvent",
    "FailedEventData",
    "InsecureTransportWarning",
    "Pusher",
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherError",
    "PusherForbidden",
    "PusherTransportError",
    "PusherWebhookError",
    "RequestRecord",
    "TerminateResult",
    "TriggerResult",
    "User",
    "UserAuth",
    "UsersInfo",
    "Webhook",
    "WebhookEvent",
    "WebhookEventData",
    "WebhookPayload",
    "errors",
]

"""pusher_fast: a fast, drop-in replacement for the ``pusher`` package.

>>> import pusher_fast as pusher
>>> client = pusher.Pusher(app_id="123456", key="key", secret="secret", cluster="eu")

``IMPLEMENTATION`` says which signing path is active: ``"native"`` (the C
extension) or ``"python"`` (forced with ``PUSHER_FAST_PURE=1``, or when the
extension is not built).
"""

from __future__ import annotations

from . import errors
from ._signing import IMPLEMENTATION
from ._webhook import Webhook, WebhookEvent
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
from .version import VERSION

__version__ = VERSION

__all__ = [
    "IMPLEMENTATION",
    "VERSION",
    "Pusher",
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherError",
    "PusherForbidden",
    "PusherTransportError",
    "PusherWebhookError",
    "Webhook",
    "WebhookEvent",
    "errors",
]

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

from . import errors
from ._signing import HASHING, IMPLEMENTATION
from .client import Pusher
from .errors import (
    PusherBadAuth,
    PusherBadRequest,
    PusherBadStatus,
    PusherError,
    PusherForbidden,
    PusherTransportError,
)
from .version import VERSION

__version__ = VERSION

__all__ = [
    "HASHING",
    "IMPLEMENTATION",
    "VERSION",
    "Pusher",
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherError",
    "PusherForbidden",
    "PusherTransportError",
    "errors",
]

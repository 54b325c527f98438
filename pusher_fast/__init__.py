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

from . import errors, types
from ._observe import RequestRecord
from ._options import InsecureTransportWarning
from ._signing import HASHING, IMPLEMENTATION
from ._webhook import Webhook, WebhookEvent
from .bulk import BulkReport, FailedEvent
from .client import Pusher

# The errors and the result types are listed once, in their own modules'
# ``__all__``: a star import re-exports exactly those (for mypy too).
from .errors import *  # noqa: F403
from .types import *  # noqa: F403
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
    "BulkReport",
    "FailedEvent",
    "InsecureTransportWarning",
    "Pusher",
    "RequestRecord",
    "Webhook",
    "WebhookEvent",
    "errors",
]
__all__ += errors.__all__
__all__ += types.__all__

"""The one place that picks the signing implementation.

``native`` (the C extension ``pusher_fast._native``) is used unless the
environment variable ``PUSHER_FAST_PURE`` is set to ``1`` at import time or the
extension is not built; then the pure-Python ``_fallback`` is used.  Both
implement the contract documented in ``pusher_fast._fallback``.
"""

from __future__ import annotations

import os

from . import _fallback

IMPLEMENTATION: str
"""``"native"`` or ``"python"``: which signing path this process uses."""

if os.environ.get("PUSHER_FAST_PURE") == "1":
    from ._fallback import Signer, md5_hex

    IMPLEMENTATION = "python"
else:
    try:
        from ._native_signer import Signer, md5_hex  # type: ignore[assignment,no-redef,unused-ignore]

        IMPLEMENTATION = "native"
    except ImportError:
        from ._fallback import Signer, md5_hex

        IMPLEMENTATION = "python"

PythonSigner = _fallback.Signer

__all__ = ["IMPLEMENTATION", "PythonSigner", "Signer", "md5_hex"]

"""The one place that picks the signing implementation.

``native`` (the C extension ``pusher_fast._native``) is used unless the
environment variable ``PUSHER_FAST_PURE`` is set to ``1`` at import time or the
extension is not built; then the pure-Python ``_fallback`` is used (with a
``RuntimeWarning`` when the extension is missing and the choice was not forced).  Both
implement the contract documented in ``pusher_fast._fallback``.
"""

from __future__ import annotations

import os
import warnings

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
    except ImportError as exc:
        from ._fallback import Signer, md5_hex

        IMPLEMENTATION = "python"
        # An install without a C compiler still works, 3-4x slower: say so
        # (this module runs once per process), unless chosen on purpose.
        warnings.warn(
            f"pusher_fast: the C extension is not available ({exc}); using the "
            "pure-Python signing path, 3-4x slower. Rebuild it with `python build_ffi.py` "
            "in the source tree, or reinstall with a C compiler present "
            "(pip install --force-reinstall --no-binary pusher-fast pusher-fast). "
            "Set PUSHER_FAST_PURE=1 to use the pure-Python path without this warning.",
            RuntimeWarning,
            stacklevel=2,
        )

PythonSigner = _fallback.Signer

__all__ = ["IMPLEMENTATION", "PythonSigner", "Signer", "md5_hex"]

"""The one place that picks the signing implementation.

``native`` (the C extension ``pusher_fast._native``) is used unless the
environment variable ``PUSHER_FAST_PURE`` is set to ``1`` at import time or the
extension is not built; then the pure-Python ``_fallback`` is used (with a
``RuntimeWarning`` when the extension is missing and the choice was not forced).  Both
implement the contract documented in ``pusher_fast._fallback``.

HMAC-SHA256 is never slower than the standard library's: the C SHA-256 is
fast only with the x86 SHA extensions, so where the CPU lacks them (older x86,
every ARM and other CPU) the native path takes HMACs from ``hmac`` (OpenSSL)
and keeps C for framing bodies and MD5 (``HybridSigner``; on x86, short
messages stay in C, see ``_native_signer.OPENSSL_FROM``).
``PUSHER_FAST_FORCE_PORTABLE_SHA=1`` at import time makes that choice as if
the CPU had no SHA extensions (for tests and benchmarks).
"""

from __future__ import annotations

import hashlib
import os
import warnings

from . import _fallback

IMPLEMENTATION: str
"""``"native"`` or ``"python"``: which signing path this process uses."""

HASHING: str
"""Which code computes HMAC-SHA256: ``"sha-ni"`` (our C, with the x86 SHA
extensions), ``"openssl"`` (the standard library's ``hmac``; ``"hashlib"`` if
that Python was built without OpenSSL) or, on x86 without SHA-NI,
``"portable+openssl"`` (messages under 384 bytes in our portable C, which
measured even with OpenSSL there, longer ones in OpenSSL)."""


def _stdlib_hashing() -> str:
    return "openssl" if hashlib.sha256.__name__.startswith("openssl") else "hashlib"


if os.environ.get("PUSHER_FAST_PURE") == "1":
    from ._fallback import Signer, md5_hex

    IMPLEMENTATION = "python"
    HASHING = _stdlib_hashing()
else:
    try:
        from ._native import lib as _lib
        from ._native_signer import md5_hex  # type: ignore[assignment,unused-ignore]

        if os.environ.get("PUSHER_FAST_FORCE_PORTABLE_SHA") == "1":
            _lib.pf_sha256_use(_lib.PF_SHA256_PORTABLE)
        if _lib.pf_sha256_impl() == _lib.PF_SHA256_SHANI:
            from ._native_signer import Signer  # type: ignore[assignment,no-redef,unused-ignore]

            HASHING = "sha-ni"
        else:
            from ._native_signer import OPENSSL_FROM
            from ._native_signer import HybridSigner as Signer  # type: ignore[assignment,no-redef,unused-ignore]

            HASHING = _stdlib_hashing() if OPENSSL_FROM == 0 else "portable+" + _stdlib_hashing()
        IMPLEMENTATION = "native"
    except ImportError as exc:
        from ._fallback import Signer, md5_hex

        IMPLEMENTATION = "python"
        HASHING = _stdlib_hashing()
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

__all__ = ["HASHING", "IMPLEMENTATION", "PythonSigner", "Signer", "md5_hex"]

"""Pure-Python implementation of the signing contract.

This module and ``pusher_fast._native_signer`` implement the same small
contract, byte for byte; ``pusher_fast._signing`` picks one of them.  Nothing
else lives here, so the two can be compared side by side.

Contract
--------
``Signer(key, secret)`` holds one app's credentials (both ``str``, UTF-8).

``signer.sign_query(method, path, extra, body, timestamp) -> str``
    The complete, signed query string of a Pusher REST request.  ``extra`` is
    the call's own parameters, already joined as ``k=v&k=v`` and sorted by key
    (``""`` for none); keys are non-empty, unique, free of ``=`` and ``&``,
    and none is ``auth_key``, ``auth_signature``, ``auth_timestamp``,
    ``auth_version`` or ``body_md5``; values are free of ``&``.  The result
    holds ``auth_key``, ``auth_signature``, ``auth_timestamp``,
    ``auth_version=1.0``, ``body_md5`` and the extra parameters, all sorted by
    key (code point order) and joined with ``&``, unescaped.  The signature is
    hex HMAC-SHA256(secret, METHOD "\\n" path "\\n" query-without-signature).

``signer.hmac_hex(message: bytes) -> str``
    Lowercase hex HMAC-SHA256(secret, message).

``signer.verify(message: bytes, signature: str) -> bool``
    Whether ``signature`` is exactly ``hmac_hex(message)``, compared in
    constant time (a signature of another length or case is ``False``).

``md5_hex(data: bytes) -> str``
    Lowercase hex MD5.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["Signer", "md5_hex", "validate_extra"]

_RESERVED = frozenset(("auth_key", "auth_signature", "auth_timestamp", "auth_version", "body_md5"))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def validate_extra(extra: str) -> list[tuple[str, str]]:
    """Split ``extra`` into pairs, raising ValueError when it breaks the contract."""
    if not extra:
        return []
    pairs: list[tuple[str, str]] = []
    for item in extra.split("&"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"query parameter {item!r} is not of the form key=value")
        if key in _RESERVED:
            raise ValueError(f"query parameter {key!r} is reserved for signing")
        if pairs and key <= pairs[-1][0]:
            raise ValueError(f"query parameter {key!r} is out of order or repeated")
        pairs.append((key, value))
    return pairs


class Signer:
    """HMAC-SHA256 signer for one app secret (pure Python)."""

    __slots__ = ("_hmac", "_key", "_secret")

    def __init__(self, key: str, secret: str) -> None:
        self._key = key
        self._secret = secret.encode("utf-8")
        # hmac.new() keyed once; copy() per message skips re-deriving the pads.
        self._hmac = hmac.new(self._secret, digestmod=hashlib.sha256)

    def hmac_hex(self, message: bytes) -> str:
        h = self._hmac.copy()
        h.update(message)
        return h.hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        expected = self.hmac_hex(message)
        try:
            given = signature.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(expected.encode("ascii"), given)

    def sign_query(self, method: str, path: str, extra: str, body: bytes, timestamp: int) -> str:
        params = validate_extra(extra)
        params += [
            ("auth_key", self._key),
            ("auth_timestamp", str(timestamp)),
            ("auth_version", "1.0"),
            ("body_md5", hashlib.md5(body).hexdigest()),
        ]
        params.sort()
        query = "&".join(k + "=" + v for k, v in params)
        signature = self.hmac_hex(f"{method}\n{path}\n{query}".encode())
        params.append(("auth_signature", signature))
        params.sort()
        return "&".join(k + "=" + v for k, v in params)

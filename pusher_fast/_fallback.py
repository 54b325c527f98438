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

``signer.endpoint(method, path) -> Endpoint``
    The signer bound to one method and path; ``endpoint.sign(body, timestamp)``
    equals ``signer.sign_query(method, path, "", body, timestamp)``, at less
    cost per call (the hot path of trigger and batch).

``endpoint.event(frame, prefix, data, timestamp=None) -> (body, query)``
    Frames a request body and signs it, one native call per trigger/batch.
    ``frame`` is ``FRAME_STRING`` (body = prefix ``"`` data with ``\\`` and
    ``"`` backslash-escaped ``"}``: data is orjson output, embedded as a JSON
    string), ``FRAME_JSON`` (prefix data ``}``) or ``FRAME_BATCH`` (prefix
    data ``]}``); ``query`` is ``endpoint.sign(body, timestamp)``.  No
    timestamp means ``round(time.time())``.

``signer.channel_auth(socket_id, channel, channel_data) -> str | None``
    ``key:HEX`` with HEX the hex HMAC of ``socket_id:channel`` (or
    ``socket_id:channel:channel_data`` when ``channel_data`` is not empty), or
    None when ``socket_id`` is not ASCII ``digits.digits`` or ``channel`` not
    1-200 characters of ``[-a-zA-Z0-9_=@,.;]`` (the caller then explains).

``signer.user_auth(socket_id, user_data) -> str | None``
    ``key:HEX`` over ``socket_id::user::user_data``; None for a bad socket id.

``signer.hmac_hex(message: bytes) -> str``
    Lowercase hex HMAC-SHA256(secret, message).

``signer.verify(message: bytes, signature: str) -> bool``
    Whether ``signature`` is exactly ``hmac_hex(message)``, compared in
    constant time (a signature of another length or case is ``False``).

``md5_hex(data: bytes) -> str``
    Lowercase hex MD5.

Arguments are checked the same way on both paths: ``key``, ``secret``,
``method``, ``path``, ``extra`` and ``signature`` must be ``str`` and
messages/bodies bytes-like (else TypeError); ``timestamp`` an ``int`` (not
``bool``) in 0..2**63-1 (else TypeError/ValueError).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

__all__ = [
    "FRAME_BATCH",
    "FRAME_JSON",
    "FRAME_STRING",
    "Endpoint",
    "Signer",
    "frame_body",
    "md5_hex",
    "validate_extra",
]

# The same values as the C PF_FRAME_* constants.
FRAME_STRING = 0
FRAME_JSON = 1
FRAME_BATCH = 2

_RESERVED = frozenset(("auth_key", "auth_signature", "auth_timestamp", "auth_version", "body_md5"))


_INT64_MAX = (1 << 63) - 1
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
_CHANNEL = re.compile(r"[-a-zA-Z0-9_=@,.;]{1,200}")


def _check_str(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")


def _as_bytes(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def md5_hex(data: bytes) -> str:
    return hashlib.md5(_as_bytes(data, "data")).hexdigest()


def frame_body(frame: int, prefix: bytes, data: bytes) -> bytes:
    """The request body ``Endpoint.event`` signs (see the contract above)."""
    if frame == FRAME_STRING:
        # orjson's output holds no raw control characters: backslash and
        # quote are all that need escaping.
        return prefix + b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"}'
    if frame == FRAME_JSON:
        return prefix + data + b"}"
    if frame == FRAME_BATCH:
        return prefix + data + b"]}"
    raise ValueError(f"frame must be FRAME_STRING, FRAME_JSON or FRAME_BATCH, not {frame!r}")


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
        _check_str(key, "key")
        _check_str(secret, "secret")
        self._key = key
        self._secret = secret.encode("utf-8")
        # hmac.new() keyed once; copy() per message skips re-deriving the pads.
        self._hmac = hmac.new(self._secret, digestmod=hashlib.sha256)

    def hmac_hex(self, message: bytes) -> str:
        h = self._hmac.copy()
        h.update(_as_bytes(message, "message"))
        return h.hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        expected = self.hmac_hex(message)
        _check_str(signature, "signature")
        try:
            given = signature.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(expected.encode("ascii"), given)

    def sign_query(self, method: str, path: str, extra: str, body: bytes, timestamp: int) -> str:
        for value, name in ((method, "method"), (path, "path"), (extra, "extra")):
            _check_str(value, name)
        body = _as_bytes(body, "body")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise TypeError(f"timestamp must be int, not {type(timestamp).__name__}")
        if not 0 <= timestamp <= _INT64_MAX:
            raise ValueError(f"timestamp must be between 0 and 2**63-1, not {timestamp!r}")
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

    def channel_auth(self, socket_id: str, channel: str, channel_data: str) -> str | None:
        _check_str(socket_id, "socket_id")
        _check_str(channel, "channel")
        _check_str(channel_data, "channel_data")
        if not (_SOCKET_ID.fullmatch(socket_id) and _CHANNEL.fullmatch(channel)):
            return None
        message = (
            f"{socket_id}:{channel}:{channel_data}" if channel_data else f"{socket_id}:{channel}"
        )
        return self._key + ":" + self.hmac_hex(message.encode("utf-8"))

    def user_auth(self, socket_id: str, user_data: str) -> str | None:
        _check_str(socket_id, "socket_id")
        _check_str(user_data, "user_data")
        if not _SOCKET_ID.fullmatch(socket_id):
            return None
        return self._key + ":" + self.hmac_hex(f"{socket_id}::user::{user_data}".encode())

    def endpoint(self, method: str, path: str) -> Endpoint:
        return Endpoint(self, method, path)


class Endpoint:
    """``Signer.sign_query`` bound to one method and path, with no extra parameters."""

    __slots__ = ("_method", "_path", "_signer")

    def __init__(self, signer: Signer, method: str, path: str) -> None:
        _check_str(method, "method")
        _check_str(path, "path")
        self._signer = signer
        self._method = method
        self._path = path

    def sign(self, body: bytes, timestamp: int) -> str:
        return self._signer.sign_query(self._method, self._path, "", body, timestamp)

    def event(
        self, frame: int, prefix: bytes, data: bytes, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        body = frame_body(frame, _as_bytes(prefix, "prefix"), _as_bytes(data, "data"))
        if timestamp is None:
            timestamp = round(time.time())
        return body, self.sign(body, timestamp)

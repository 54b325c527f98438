"""The signing contract of ``pusher_fast._fallback``, implemented in C.

Same interface, same bytes out: ``Signer(key, secret)`` with ``sign_query``,
``hmac_hex`` and ``verify``, and ``md5_hex``.  Importing this module raises
ImportError when the extension ``pusher_fast._native`` is not built, which is
how ``pusher_fast._signing`` falls back to the pure-Python path.

Every method checks its arguments here, then crosses into C exactly once.
C writes into an output buffer that the call owns until it has decoded the
result: cffi releases the GIL during the call, so no buffer may be shared.
Buffers are kept in pools (``list.pop``/``list.append`` are atomic), one pool
per output size, so that the result decodes from a whole bytearray without a
slice (a copy) first; a fresh ``ffi.from_buffer`` per call would cost more than
the hashing.  A pool rather than a per-thread buffer also keeps a signal
handler that signs while another result is being decoded from reusing it.

>>> signer = Signer("278d425bdf160c739803", "7ad3773142a6692b25b8")
>>> signer.hmac_hex(b"1234.1234:private-foobar")
'58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4'
"""

from __future__ import annotations

import hashlib
import hmac
import platform
import time
from types import BuiltinFunctionType
from typing import Any, Callable, Union

from . import _fallback
from ._native import ffi, lib

__all__ = ["HybridSigner", "Signer", "md5_hex", "sha256_backend"]

Buffer = Union[bytes, bytearray, memoryview]
_Pair = tuple[bytearray, Any]  # a buffer and a cdata pointer into it

_HEX64: int = lib.PF_HMAC_HEX_LEN
_HEX32: int = lib.PF_MD5_HEX_LEN
# Signed query length = _FIXED_LEN + len(key) + digits(timestamp) + (len(extra) + 1 if extra).
_FIXED_LEN: int = lib.PF_SIGN_FIXED_LEN
_INT64_MAX = (1 << 63) - 1
# Outputs up to this size are pooled per size (a few hundred sizes at most);
# longer ones, from unusually long keys or parameters, get a buffer per call.
_POOLED_MAX = 512

_pools: dict[int, list[_Pair]] = {_HEX64: [], _HEX32: []}
_pool_hex64 = _pools[_HEX64]
_pool_hex32 = _pools[_HEX32]

_from_buffer = ffi.from_buffer
_sign_query = lib.pf_sign_query
_sign_query_size = lib.pf_sign_query_size
_hmac_hex = lib.pf_hmac_hex
_hmac_verify = lib.pf_hmac_verify
_md5_hex = lib.pf_md5_hex
_channel_auth = lib.pf_channel_auth
_user_auth = lib.pf_user_auth


def _pool_for(size: int) -> list[_Pair]:
    """The shared pool for outputs of ``size`` (negative: auth strings), or a
    private one beyond ``_POOLED_MAX``, so ``_pools`` keeps at most ~1,000 keys."""
    if abs(size) > _POOLED_MAX:
        return []
    return _pools.setdefault(size, [])


def _new_buffer(size: int) -> _Pair:
    buf = bytearray(size)
    return buf, _from_buffer(buf)


# ---- one call per trigger / batch (Endpoint.event) ---------------------------
#
# An event's buffers: [query, query pointer, body, body pointer, body capacity,
# memoryview of body].  The query buffer has the exact size of a query for a
# 10-digit timestamp, so it decodes whole; the body is sliced out of its buffer.
_Event = list[Any]
_event_pools: dict[int, list[_Event]] = {}
# Body buffers up to this size stay in the pool; larger ones are used once.
_BODY_POOLED_MAX = 1 << 20
# C reads the clock only while time.time is the interpreter's own function:
# replaced (tests, freezegun), Python's value is used, as the official library
# would.  Replaced already at import, the C clock is never used.
_clock: Any = time.time if isinstance(time.time, BuiltinFunctionType) else None


def _event_buffers(query_size: int, body_size: int) -> _Event:
    q = bytearray(query_size)
    b = bytearray(max(body_size, 256))
    return [q, _from_buffer(q), b, _from_buffer(b), len(b), memoryview(b)]


def _grow(entry: _Event, body_size: int) -> _Event:
    """``entry`` with room for ``body_size`` (a fresh entry when too large to keep)."""
    if body_size > _BODY_POOLED_MAX:
        return _event_buffers(len(entry[0]), body_size)
    b = bytearray(max(body_size, 2 * entry[4]) if 2 * entry[4] <= _BODY_POOLED_MAX else body_size)
    entry[2:6] = [b, _from_buffer(b), len(b), memoryview(b)]
    return entry


def _event_error(rc: int, frame: int) -> Exception:
    if rc == lib.PF_ERR_FRAME:
        try:
            _fallback.frame_body(frame, b"", b"")
        except ValueError as exc:
            return exc
    return _error(rc, "event")


def _event_slow(
    c_call: Callable[..., int], first: Any, qsize_of: Callable[[int], int],
    frame: int, prefix: Any, data: Any, timestamp: Any,
) -> tuple[bytes, bytearray]:  # fmt: skip
    """``Endpoint.event`` for unusual input: checks, exact sizes, precise errors.
    Returns the body and the raw query (or tail)."""
    prefix = _as_bytes(prefix, "prefix")
    data = _as_bytes(data, "data")
    if timestamp is None:
        # Python's own clock: time.time is replaced (tests, freezegun) or C
        # could not read a 10-digit time.
        timestamp = round(time.time())
    elif timestamp.__class__ is not int:
        timestamp = Signer._check_timestamp(timestamp)
    qsize = qsize_of(timestamp)  # checks the range
    bsize = lib.pf_event_body_size(frame, prefix, len(prefix), data, len(data))
    if bsize < 0:
        raise _event_error(bsize, frame)
    b, q = _new_buffer(bsize), _new_buffer(qsize)
    n = c_call(first, timestamp, frame, prefix, len(prefix), data, len(data),
               b[1], bsize, q[1], qsize)  # fmt: skip
    if n != bsize:
        raise _event_error(n, frame) if n < 0 else RuntimeError(f"body of {n} bytes, not {bsize}")
    return bytes(b[0]), q[0]


# The argument checks are the fallback's own, so both paths refuse alike.
_as_bytes = _fallback._as_bytes
_check_str = _fallback._check_str


def _check_strs(**named: object) -> None:
    """After ``.encode`` failed: TypeError naming the first argument that is not a str."""
    for name, value in named.items():
        _check_str(value, name)


def _error(rc: int, what: str) -> Exception:
    if rc == lib.PF_ERR_ARG:
        return ValueError(f"{what} is too large")
    return RuntimeError(f"pusher_fast._native failed with code {rc} ({what})")


def md5_hex(data: Buffer) -> str:
    """Lowercase hex MD5 of ``data``.

    >>> md5_hex(b"")
    'd41d8cd98f00b204e9800998ecf8427e'
    """
    if data.__class__ is not bytes:
        data = _as_bytes(data, "data")
    try:
        pair = _pool_hex32.pop()
    except IndexError:
        pair = _new_buffer(_HEX32)
    rc = _md5_hex(data, len(data), pair[1], _HEX32)
    result = pair[0].decode()
    _pool_hex32.append(pair)
    if rc < 0:
        raise _error(rc, "data")
    return result


def sha256_backend() -> str:
    """Which SHA-256 code the extension runs: ``"sha-ni"`` or ``"portable"``."""
    return "sha-ni" if lib.pf_sha256_impl() == lib.PF_SHA256_SHANI else "portable"


class Signer:
    """HMAC-SHA256 signer for one app secret (C extension).

    >>> Signer("278d425bdf160c739803", "7ad3773142a6692b25b8").sign_query(
    ...     "POST", "/apps/3/events", "", b"{}", 1353088179)[:29]
    'auth_key=278d425bdf160c739803'
    """

    __slots__ = (
        "_auth_len",
        "_auth_pool",
        "_ctx",
        "_key",
        "_key_bytes",
        "_key_len",
        "_pool10",
        "_size10",
    )

    def __init__(self, key: str, secret: str) -> None:
        _check_str(key, "key")
        _check_str(secret, "secret")
        self._key = key
        self._key_bytes = key.encode("utf-8")
        self._key_len = len(self._key_bytes)
        secret_bytes = secret.encode("utf-8")
        # The HMAC pads are derived once; each message then costs its own blocks.
        self._ctx = ffi.new("pf_hmac_ctx *")
        rc = lib.pf_hmac_init(self._ctx, secret_bytes, len(secret_bytes))
        if rc < 0:
            raise _error(rc, "secret")
        # Length of a signed query without extras for a 10-digit timestamp,
        # which every Unix time from 2001 to 2286 has.
        self._size10 = _FIXED_LEN + self._key_len + 10
        self._pool10 = _pool_for(self._size10)
        # "key:" and 64 hex digits.
        self._auth_len = self._key_len + 1 + _HEX64
        self._auth_pool = _pool_for(-self._auth_len)  # keyed apart from queries

    def __repr__(self) -> str:
        return f"Signer(key={self._key!r}, secret=<hidden>)"

    def hmac_hex(self, message: Buffer) -> str:
        """Lowercase hex HMAC-SHA256(secret, message)."""
        if message.__class__ is not bytes:
            message = _as_bytes(message, "message")
        try:
            pair = _pool_hex64.pop()
        except IndexError:
            pair = _new_buffer(_HEX64)
        rc = _hmac_hex(self._ctx, message, len(message), pair[1], _HEX64)
        result = pair[0].decode()
        _pool_hex64.append(pair)
        if rc < 0:
            raise _error(rc, "message")
        return result

    def verify(self, message: Buffer, signature: str) -> bool:
        """Whether ``signature`` is exactly ``hmac_hex(message)`` (constant time)."""
        if message.__class__ is not bytes:
            message = _as_bytes(message, "message")
        if signature.__class__ is not str:
            _check_str(signature, "signature")
        try:
            given = signature.encode("ascii")
        except UnicodeEncodeError:
            return False
        rc: int = _hmac_verify(self._ctx, message, len(message), given, len(given))
        if rc < 0:
            raise _error(rc, "message")
        return rc == 1

    def sign_query(self, method: str, path: str, extra: str, body: Buffer, timestamp: int) -> str:
        """The complete signed query string; see ``pusher_fast._fallback``."""
        try:
            m = method.encode()
            p = path.encode()
            e = extra.encode()
        except AttributeError:
            _check_strs(method=method, path=path, extra=extra)
            raise
        if body.__class__ is not bytes:
            body = _as_bytes(body, "body")
        if timestamp.__class__ is not int:
            timestamp = self._check_timestamp(timestamp)
        if not e and 999_999_999 < timestamp < 10_000_000_000:
            # The common case (no extra parameters, a current Unix time): its
            # output size and buffer pool are looked up once per Signer.
            size = self._size10
            pool = self._pool10
        else:
            size = self._exact_size(len(e), timestamp, extra)
            found = _pools.get(size)
            if found is None:
                found = _pools.setdefault(size, []) if size <= _POOLED_MAX else []
            pool = found
        try:
            pair = pool.pop()
        except IndexError:
            pair = _new_buffer(size)
        n = _sign_query(
            self._ctx, m, len(m), p, len(p), self._key_bytes, self._key_len,
            timestamp, e, len(e), body, len(body), pair[1], size,
        )  # fmt: skip
        if n == size:
            result: str = pair[0].decode()
            pool.append(pair)
            return result
        pool.append(pair)
        raise self._sign_error(n, extra, timestamp)

    def _exact_size(self, n_extra: int, timestamp: int, extra: str) -> int:
        if 999_999_999 < timestamp < 10_000_000_000:
            return self._size10 + n_extra + (n_extra > 0)
        if not 0 <= timestamp <= _INT64_MAX:
            raise ValueError(f"timestamp must be between 0 and 2**63-1, not {timestamp!r}")
        size: int = _sign_query_size(self._key_len, timestamp, n_extra)
        if size < 0:
            raise self._sign_error(size, extra, timestamp)
        return size

    def channel_auth(self, socket_id: str, channel: str, channel_data: str) -> str | None:
        """``key:HEX`` for a channel subscription; None if socket id or channel is invalid."""
        try:
            sid = socket_id.encode()
            ch = channel.encode()
            data = channel_data.encode()
        except AttributeError:
            _check_strs(socket_id=socket_id, channel=channel, channel_data=channel_data)
            raise
        # The buffer handling of _auth_out/_auth_result written inline: on
        # the authorization hot path each Python call saved counts.
        size = self._auth_len
        pool = self._auth_pool
        try:
            out = pool.pop()
        except IndexError:
            out = _new_buffer(size)
        n = _channel_auth(
            self._ctx, self._key_bytes, self._key_len, sid, len(sid), ch, len(ch),
            data, len(data), out[1], size,
        )  # fmt: skip
        if n == size:
            result: str = out[0].decode()
            pool.append(out)
            return result
        return self._auth_result(n, out)

    def user_auth(self, socket_id: str, user_data: str) -> str | None:
        """``key:HEX`` for a user sign-in; None if the socket id is invalid."""
        try:
            sid = socket_id.encode()
            data = user_data.encode()
        except AttributeError:
            _check_strs(socket_id=socket_id, user_data=user_data)
            raise
        out = self._auth_out()
        n = _user_auth(
            self._ctx, self._key_bytes, self._key_len, sid, len(sid), data, len(data),
            out[1], self._auth_len,
        )  # fmt: skip
        return self._auth_result(n, out)

    def _auth_out(self) -> _Pair:
        try:
            return self._auth_pool.pop()
        except IndexError:
            return _new_buffer(self._auth_len)

    def _auth_result(self, n: int, out: _Pair) -> str | None:
        if n == self._auth_len:
            result: str = out[0].decode()
            self._auth_pool.append(out)
            return result
        self._auth_pool.append(out)
        if n in (lib.PF_ERR_SOCKET_ID, lib.PF_ERR_CHANNEL):
            return None
        raise _error(n, "authorization")

    def endpoint(self, method: str, path: str) -> Endpoint | _fallback.Endpoint:
        """``sign_query`` bound to ``method`` and ``path`` (no extras), one short C call each."""
        _check_str(method, "method")
        _check_str(path, "path")
        m, p = method.encode(), path.encode()
        if (
            len(m) > lib.PF_ENDPOINT_MAX_METHOD
            or len(p) > lib.PF_ENDPOINT_MAX_PATH
            or len(self._key_bytes) > lib.PF_ENDPOINT_MAX_KEY
        ):
            return _fallback.Endpoint(self, method, path)  # type: ignore[arg-type]
        return Endpoint(self, m, p)

    @staticmethod
    def _check_timestamp(timestamp: object) -> int:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise TypeError(f"timestamp must be int, not {type(timestamp).__name__}")
        return int(timestamp)

    @staticmethod
    def _sign_error(rc: int, extra: str, timestamp: int) -> Exception:
        if rc == lib.PF_ERR_TIMESTAMP:
            return ValueError(f"timestamp must be between 0 and 2**63-1, not {timestamp!r}")
        if rc in (lib.PF_ERR_EXTRA_FORM, lib.PF_ERR_EXTRA_RESERVED, lib.PF_ERR_EXTRA_ORDER):
            # The fallback words the exact complaint; C only says which kind.
            try:
                _fallback.validate_extra(extra)
            except ValueError as exc:
                return exc
            return ValueError(f"invalid query parameters {extra!r}")
        if rc >= 0:
            return RuntimeError(f"pusher_fast._native wrote {rc} bytes, expected another size")
        return _error(rc, "request")


class Endpoint:
    """One method and path of one signer, prepared in C (``pf_endpoint``).

    ``sign`` and ``event`` are closures over everything they need: on the
    trigger hot path every attribute lookup saved counts.
    """

    __slots__ = ("_ep", "event", "sign")

    def __init__(self, signer: Signer, method: bytes, path: bytes) -> None:
        ep = ffi.new("pf_endpoint *")
        key = signer._key_bytes
        rc = lib.pf_endpoint_init(
            ep, signer._ctx, method, len(method), path, len(path), key, len(key)
        )
        if rc < 0:
            raise _error(rc, "endpoint")
        self._ep = ep  # keeps the C struct alive
        size10 = signer._size10
        pool10 = signer._pool10
        c_sign = lib.pf_endpoint_sign
        pop = pool10.pop
        push = pool10.append
        exact_size = signer._exact_size
        self.event = _make_event(
            lib.pf_event_sign, ep, size10, lambda ts: exact_size(0, ts, ""), bytearray.decode
        )

        def sign(body: Buffer, timestamp: int) -> str:
            """``Signer.sign_query(method, path, "", body, timestamp)``."""
            if (
                body.__class__ is bytes
                and timestamp.__class__ is int
                and 999_999_999 < timestamp < 10_000_000_000
            ):
                try:
                    pair = pop()
                except IndexError:
                    pair = _new_buffer(size10)
                if c_sign(ep, timestamp, body, len(body), pair[1], size10) == size10:
                    result: str = pair[0].decode()
                    push(pair)
                    return result
                push(pair)
            return _sign_slow(signer, ep, body, timestamp)

        self.sign = sign


def _sign_slow(signer: Signer, ep: Any, body: Buffer, timestamp: int) -> str:
    """Endpoint signing for unusual input: checks, exact sizing, precise errors."""
    if body.__class__ is not bytes:
        body = _as_bytes(body, "body")
    if timestamp.__class__ is not int:
        timestamp = Signer._check_timestamp(timestamp)
    size = signer._exact_size(0, timestamp, "")
    pair = _new_buffer(size)
    n = lib.pf_endpoint_sign(ep, timestamp, body, len(body), pair[1], size)
    if n == size:
        return pair[0].decode()
    raise signer._sign_error(n, "", timestamp)


def _make_event(
    c_call: Callable[..., int],
    first: Any,
    size10: int,
    qsize_of: Callable[[int], int],
    finish: Callable[[bytearray], str],
) -> Callable[..., tuple[bytes, str]]:
    """``event(frame, prefix, data, timestamp=None) -> (body, query)`` over
    ``c_call`` (``pf_event_sign`` with an endpoint, or ``pf_event_frame``),
    whose second output ``finish`` turns into the query."""
    pool = _event_pools.setdefault(size10, [])
    pop = pool.pop
    push = pool.append
    time_module = time
    clock = _clock
    pooled_max = _BODY_POOLED_MAX

    def event(
        frame: int, prefix: bytes, data: bytes, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """Frames and signs one request body (see ``pusher_fast._fallback``)."""
        if timestamp is None and time_module.time is clock:
            try:
                n_prefix = len(prefix)
                n_data = len(data)
                # Room for the worst case, every data byte escaped: C need not count.
                need = n_prefix + 2 * n_data + 3
                try:
                    entry = pop()
                except IndexError:
                    entry = _event_buffers(size10, need)
                keep = True
                if entry[4] < need:
                    entry = _grow(entry, need)
                    keep = entry[4] <= pooled_max
                # cffi takes only bytes for the pointers (TypeError: the slow path).
                n = c_call(
                    first, -1, frame, prefix, n_prefix, data, n_data,
                    entry[3], entry[4], entry[1], size10,
                )  # fmt: skip
            except TypeError:
                n = -1
                keep = False
            if n >= 0:
                body: bytes = entry[5][:n].tobytes()
                query = finish(entry[0])
                if keep:
                    push(entry)
                return body, query
            if keep:
                push(entry)
        body, raw = _event_slow(c_call, first, qsize_of, frame, prefix, data, timestamp)
        return body, finish(raw)

    return event


# Where our SHA-256 has no hardware path, messages from this length on are
# HMACed by OpenSSL.  On x86 without SHA-NI, OpenSSL's SIMD code and our
# portable C measured even at 250 B (the call into OpenSSL costs what its
# faster blocks save) and OpenSSL ahead from 1 KB (1.3x; 1.7x at 9 KB).
# Elsewhere (ARM and others) OpenSSL has the CPU's SHA-2 instructions: always.
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i486", "i586", "i686", "x86")
OPENSSL_FROM: int = 384 if _X86 else 0


_c_hmac_hex = Signer.hmac_hex
_c_verify = Signer.verify
_c_sign_query = Signer.sign_query
_c_channel_auth = Signer.channel_auth
_c_user_auth = Signer.user_auth


class HybridSigner(Signer):
    """The signer for CPUs where our SHA-256 has no hardware path.

    HMAC-SHA256 of messages of ``openssl_from`` bytes or more comes from the
    standard library (OpenSSL, which has fast code for every CPU); shorter
    ones, and all framing and MD5, stay in C.  Same contract and bytes as the
    other signers.
    """

    __slots__ = ("_openssl_from", "_ssl")

    def __init__(self, key: str, secret: str, openssl_from: int | None = None) -> None:
        super().__init__(key, secret)
        self._ssl = _fallback.Signer(key, secret)  # hashlib/hmac: OpenSSL
        self._openssl_from = OPENSSL_FROM if openssl_from is None else openssl_from

    def __repr__(self) -> str:
        return f"HybridSigner(key={self._key!r}, secret=<hidden>)"

    # Each method routes by the length of the string it HMACs; a TypeError
    # from len() sends the call to C, whose checks explain it.

    def hmac_hex(self, message: Buffer) -> str:
        try:
            if len(message) < self._openssl_from:
                return _c_hmac_hex(self, message)
        except TypeError:
            return _c_hmac_hex(self, message)
        return self._ssl.hmac_hex(message)  # type: ignore[arg-type]

    def verify(self, message: Buffer, signature: str) -> bool:
        try:
            if len(message) < self._openssl_from:
                return _c_verify(self, message, signature)
        except TypeError:
            return _c_verify(self, message, signature)
        return self._ssl.verify(message, signature)  # type: ignore[arg-type]

    def sign_query(self, method: str, path: str, extra: str, body: Buffer, timestamp: int) -> str:
        # The string signed: method, path and a query of about 150 + len(extra) bytes.
        try:
            if len(method) + len(path) + len(extra) + 150 < self._openssl_from:
                return _c_sign_query(self, method, path, extra, body, timestamp)
        except TypeError:
            return _c_sign_query(self, method, path, extra, body, timestamp)
        return self._ssl.sign_query(method, path, extra, body, timestamp)  # type: ignore[arg-type]

    def channel_auth(self, socket_id: str, channel: str, channel_data: str) -> str | None:
        try:
            if len(socket_id) + len(channel) + len(channel_data) + 2 < self._openssl_from:
                return _c_channel_auth(self, socket_id, channel, channel_data)
        except TypeError:
            return _c_channel_auth(self, socket_id, channel, channel_data)
        return self._ssl.channel_auth(socket_id, channel, channel_data)

    def user_auth(self, socket_id: str, user_data: str) -> str | None:
        try:
            if len(socket_id) + len(user_data) + 8 < self._openssl_from:
                return _c_user_auth(self, socket_id, user_data)
        except TypeError:
            return _c_user_auth(self, socket_id, user_data)
        return self._ssl.user_auth(socket_id, user_data)

    def endpoint(  # type: ignore[override]
        self, method: str, path: str
    ) -> Endpoint | _fallback.Endpoint | HybridEndpoint:
        """``sign_query`` bound to ``method`` and ``path`` (no extras)."""
        _check_str(method, "method")
        _check_str(path, "path")
        # The string signed: METHOD \n PATH \n auth_key=KEY & a tail of 84 bytes.
        if len(method) + len(path) + len(self._key) + 96 >= self._openssl_from:
            return HybridEndpoint(self, method, path)
        return super().endpoint(method, path)


class HybridEndpoint:
    """An endpoint of a ``HybridSigner``: C framing and MD5, OpenSSL HMAC.

    Without extra parameters an endpoint's query is always
    ``auth_key=KEY&auth_signature=HEX&TAIL`` with
    TAIL = ``auth_timestamp=TS&auth_version=1.0&body_md5=MD5``, and the string
    signed is ``METHOD\\nPATH\\nauth_key=KEY&TAIL``.
    """

    __slots__ = ("event", "sign")

    def __init__(self, signer: HybridSigner, method: str, path: str) -> None:
        _check_str(method, "method")
        _check_str(path, "path")
        key = signer._key
        secret = signer._ssl._secret
        head = f"{method}\n{path}\nauth_key={key}&".encode()
        qhead = f"auth_key={key}&auth_signature="
        # The HMAC state after the constant head, copied per request: for the
        # short strings signed here OpenSSL's one-shot hmac.digest costs more
        # (its setup per call) than a copy, an update and the digest.
        keyed = _hmac_new(secret, head)
        md5 = hashlib.md5

        def sign(body: Buffer, timestamp: int) -> str:
            """``Signer.sign_query(method, path, "", body, timestamp)``."""
            if body.__class__ is not bytes:
                body = _as_bytes(body, "body")
            if timestamp.__class__ is not int:
                timestamp = Signer._check_timestamp(timestamp)
            if not 0 <= timestamp <= _INT64_MAX:
                raise ValueError(f"timestamp must be between 0 and 2**63-1, not {timestamp!r}")
            tail = f"auth_timestamp={timestamp}&auth_version=1.0&body_md5={md5(body).hexdigest()}"
            h = keyed.copy()
            h.update(tail.encode())
            signature: str = h.hexdigest()
            return qhead + signature + "&" + tail

        def finish(tail: bytearray) -> str:
            h = keyed.copy()
            h.update(tail)
            signature: str = h.hexdigest()
            return qhead + signature + "&" + tail.decode()

        def tail_size(timestamp: int) -> int:
            if not 0 <= timestamp <= _INT64_MAX:
                raise ValueError(f"timestamp must be between 0 and 2**63-1, not {timestamp!r}")
            return int(lib.PF_EVENT_TAIL_FIXED_LEN) + len(str(timestamp))

        self.sign = sign
        self.event = _make_event(
            _event_frame_call, None, lib.PF_EVENT_TAIL_FIXED_LEN + 10, tail_size, finish
        )


def _hmac_new(secret: bytes, message: bytes) -> Any:
    """An HMAC-SHA256 object over ``message``: OpenSSL's own when available
    (its C methods, without the ``hmac`` module's Python wrapper)."""
    try:
        from _hashlib import hmac_new  # CPython built with OpenSSL
    except ImportError:  # pragma: no cover - depends on the build
        return hmac.new(secret, message, hashlib.sha256)
    return hmac_new(secret, message, "sha256")


def _event_frame_call(_unused: None, *args: Any) -> int:
    return int(lib.pf_event_frame(*args))

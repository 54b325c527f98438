"""Signing hot path: the C extension against the pure-Python path, the official
library and the fastest that hashlib/hmac alone can do.

Run: ``python -m pytest benchmarks/bench_signing.py --benchmark-only``.
Each ``benchmark.group`` prints its contenders side by side; every contender
is a zero-argument callable, so all pay the same harness overhead.  The
native benchmarks skip when the extension is not built.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from pusher_fast import _fallback

try:
    from pusher_fast import _native_signer as native
except ImportError:  # pragma: no cover - depends on the build
    native = None  # type: ignore[assignment]

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SECRET_BYTES = SECRET.encode()
PATH = "/apps/3/events"
TIMESTAMP = 1353088179
# A typical trigger body, padded to 120 bytes.
BODY = b'{"name":"my-event","channels":["my-channel"],"data":"{\\"message\\":\\"hello world\\"}"}'
BODY = BODY + b" " * (120 - len(BODY))
STRING_TO_SIGN = (
    f"POST\n{PATH}\nauth_key={KEY}&auth_timestamp={TIMESTAMP}&auth_version=1.0"
    f"&body_md5={hashlib.md5(BODY).hexdigest()}"
).encode()
MSG_126 = b"x" * 126
SIZES = {"1KB": 1024, "9KB": 9 * 1024, "64KB": 64 * 1024}

needs_native = pytest.mark.skipif(native is None, reason="C extension not built")


def _signers() -> tuple[Any, _fallback.Signer]:
    return (native.Signer(KEY, SECRET) if native else None), _fallback.Signer(KEY, SECRET)


# ---- a whole sign_query, ~120-byte body ----------------------------------------------


@needs_native
def test_sign_query_native(benchmark: Any) -> None:
    benchmark.group = "sign_query, 120 B body"
    signer, _ = _signers()
    result = benchmark(lambda: signer.sign_query("POST", PATH, "", BODY, TIMESTAMP))
    assert result == _fallback.Signer(KEY, SECRET).sign_query("POST", PATH, "", BODY, TIMESTAMP)


def test_sign_query_fallback(benchmark: Any) -> None:
    benchmark.group = "sign_query, 120 B body"
    _, signer = _signers()
    benchmark(lambda: signer.sign_query("POST", PATH, "", BODY, TIMESTAMP))


def test_sign_query_official_pusher(benchmark: Any) -> None:
    """pusher-http-python's Request._generate_auth plus its query string."""
    benchmark.group = "sign_query, 120 B body"
    pusher = pytest.importorskip("pusher")
    from pusher.http import POST, Request

    client = pusher.Pusher(app_id="3", key=KEY, secret=SECRET)._pusher_client
    request = Request(client, POST, PATH, {})
    request.body = BODY

    def sign() -> str:
        request.query_params = {}
        request._generate_auth()
        return str(request.query_string)

    benchmark(sign)


def test_sign_query_hashlib_floor(benchmark: Any) -> None:
    """The least any Python signer must do: one MD5 and one HMAC, from hashlib."""
    benchmark.group = "sign_query, 120 B body"

    def floor() -> tuple[str, str]:
        return hashlib.md5(BODY).hexdigest(), hmac.digest(
            SECRET_BYTES, STRING_TO_SIGN, "sha256"
        ).hex()

    benchmark(floor)


# ---- HMAC of a 126-byte string-to-sign ----------------------------------------------


@needs_native
def test_hmac_126_native(benchmark: Any) -> None:
    benchmark.group = "hmac-sha256, 126 B"
    signer, _ = _signers()
    assert (
        benchmark(lambda: signer.hmac_hex(MSG_126))
        == hmac.new(SECRET_BYTES, MSG_126, "sha256").hexdigest()
    )


def test_hmac_126_hmac_digest(benchmark: Any) -> None:
    benchmark.group = "hmac-sha256, 126 B"
    benchmark(lambda: hmac.digest(SECRET_BYTES, MSG_126, "sha256"))


def test_hmac_126_fallback(benchmark: Any) -> None:
    benchmark.group = "hmac-sha256, 126 B"
    _, signer = _signers()
    benchmark(lambda: signer.hmac_hex(MSG_126))


# ---- larger bodies ----------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_md5_native(benchmark: Any, size: str) -> None:
    benchmark.group = f"md5, {size}"
    data = b"\xa5" * SIZES[size]
    assert benchmark(lambda: native.md5_hex(data)) == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_md5_hashlib(benchmark: Any, size: str) -> None:
    benchmark.group = f"md5, {size}"
    data = b"\xa5" * SIZES[size]
    benchmark(lambda: hashlib.md5(data).hexdigest())


@needs_native
@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_hmac_native(benchmark: Any, size: str) -> None:
    benchmark.group = f"hmac-sha256, {size}"
    data = b"\xa5" * SIZES[size]
    signer, _ = _signers()
    assert (
        benchmark(lambda: signer.hmac_hex(data))
        == hmac.new(SECRET_BYTES, data, "sha256").hexdigest()
    )


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_hmac_hmac_digest(benchmark: Any, size: str) -> None:
    benchmark.group = f"hmac-sha256, {size}"
    data = b"\xa5" * SIZES[size]
    benchmark(lambda: hmac.digest(SECRET_BYTES, data, "sha256"))

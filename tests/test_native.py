"""The C signer (``pusher_fast._native_signer``) against the pure-Python contract.

Every property runs twice, once per SHA-256 implementation in the extension
(portable C and, where the CPU has it, SHA-NI), and compares the native result
with ``pusher_fast._fallback`` byte for byte, including which inputs are
rejected.  The extension is optional at install time, so without it these
tests skip, unless ``PUSHER_FAST_REQUIRE_NATIVE=1`` (as in CI), which turns a
missing extension into a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pusher_fast import _fallback

try:
    from pusher_fast._native import ffi, lib

    from pusher_fast import _native_signer as native
except ImportError as exc:  # pragma: no cover - depends on the build
    if os.environ.get("PUSHER_FAST_REQUIRE_NATIVE") == "1":
        pytest.fail(
            f"PUSHER_FAST_REQUIRE_NATIVE=1 but the C extension is not importable: {exc}",
            pytrace=False,
        )
    pytest.skip(f"C extension not built: {exc}", allow_module_level=True)


KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
RESERVED = sorted(_fallback._RESERVED)

# Sizes around SHA-256/MD5 block and padding edges, then larger bodies.
EDGE_SIZES = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 191, 192]
LARGE_SIZES = [1000, 1024, 9 * 1024, 10 * 1024 + 1, 65535, 65536]

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(
    scope="module",
    params=[lib.PF_SHA256_PORTABLE, lib.PF_SHA256_SHANI],
    ids=["portable", "sha-ni"],
)
def sha_impl(request: pytest.FixtureRequest) -> Iterator[int]:
    """Runs the module's tests with one SHA-256 implementation selected."""
    before = lib.pf_sha256_impl()
    if lib.pf_sha256_use(request.param) != request.param:
        pytest.skip("this CPU has no SHA extensions")
    yield request.param
    lib.pf_sha256_use(before)


def both(key: str, secret: str) -> tuple[native.Signer, _fallback.Signer]:
    return native.Signer(key, secret), _fallback.Signer(key, secret)


def outcome(fn, *args):  # type: ignore[no-untyped-def]
    """The result, or the type and message of the ValueError raised."""
    try:
        return ("ok", fn(*args))
    except ValueError as exc:
        return ("ValueError", str(exc))


# ---- strategies -------------------------------------------------------------

texts = st.text(max_size=40)
secrets = st.one_of(
    st.just(""),
    st.text(max_size=70),
    st.text(min_size=60, max_size=200),  # around and past the 64-byte HMAC block
)
timestamps = st.one_of(
    st.integers(0, 2**63 - 1),
    st.sampled_from([0, 9, 10, 999_999_999, 1_353_088_179, 9_999_999_999, 2**63 - 1]),
)
methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE"]), texts)
paths = st.one_of(st.just("/apps/3/events"), st.text(max_size=300))

param_keys = st.text(min_size=1, max_size=20).filter(
    lambda k: "=" not in k and "&" not in k and k not in _fallback._RESERVED
)
# Keys that sort among the auth_* names, to exercise the merge.
tricky_keys = st.sampled_from(
    [
        "a",
        "auth",
        "auth_",
        "auth_k",
        "auth_key0",
        "auth_l",
        "auth_signaturf",
        "auth_t",
        "auth_timestamq",
        "auth_versioo",
        "auth_z",
        "b",
        "body",
        "body_md4",
        "body_md50",
        "c",
        "filter_by_prefix",
        "info",
        "z",
        "\u00e9",
        "\U0001f600",
    ]
)
param_values = st.text(max_size=40).filter(lambda v: "&" not in v)


@st.composite
def valid_extras(draw: st.DrawFn) -> str:
    keys = draw(st.sets(st.one_of(tricky_keys, param_keys), max_size=8))
    return "&".join(f"{k}={draw(param_values)}" for k in sorted(keys))


# Arbitrary strings over the characters that matter: mostly invalid.
any_extras = st.one_of(
    st.lists(
        st.sampled_from(["a", "b", "=", "&", "1", "auth_key", "body_md5", "auth_signature", "é"]),
        max_size=12,
    ).map("".join),
    st.text(max_size=30),
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    size = draw(st.one_of(st.sampled_from(EDGE_SIZES + LARGE_SIZES), st.integers(0, 300)))
    seed = draw(st.text(max_size=12)).encode() + draw(st.binary(max_size=16))
    seed = seed or b"\x00"
    return (seed * (size // len(seed) + 1))[:size]


# ---- the worked examples of design.md §2 ---------------------------------------

TRIGGER_BODY = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'


@pytest.mark.parametrize("signer_cls", [native.Signer, _fallback.Signer], ids=["native", "python"])
def test_worked_example_trigger(sha_impl: int, signer_cls) -> None:  # type: ignore[no-untyped-def]
    query = signer_cls(KEY, SECRET).sign_query(
        "POST", "/apps/3/events", "", TRIGGER_BODY, 1353088179
    )
    assert query == (
        "auth_key=278d425bdf160c739803"
        "&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        "&auth_timestamp=1353088179&auth_version=1.0"
        "&body_md5=ec365a775a4cd0599faeb73354201b6f"
    )


@pytest.mark.parametrize("signer_cls", [native.Signer, _fallback.Signer], ids=["native", "python"])
def test_worked_example_channel_auth(sha_impl: int, signer_cls) -> None:  # type: ignore[no-untyped-def]
    signer = signer_cls(KEY, SECRET)
    expected = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    assert signer.hmac_hex(b"1234.1234:private-foobar") == expected
    assert signer.verify(b"1234.1234:private-foobar", expected)
    assert not signer.verify(b"1234.1234:private-foobar", expected.upper())


def test_md5_worked_example() -> None:
    assert native.md5_hex(TRIGGER_BODY) == "ec365a775a4cd0599faeb73354201b6f"


# ---- known vectors, straight through the C API -------------------------------------

# RFC 4231 HMAC-SHA256 test cases 1-4, 6, 7 (6 and 7 use a 131-byte key).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


def c_hmac_hex(secret: bytes, message: bytes) -> str:
    ctx = ffi.new("pf_hmac_ctx *")
    assert lib.pf_hmac_init(ctx, secret, len(secret)) == lib.PF_OK
    out = bytearray(64)
    assert lib.pf_hmac_hex(ctx, message, len(message), ffi.from_buffer(out), 64) == 64
    return out.decode()


@pytest.mark.parametrize(("secret", "message", "expected"), RFC4231)
def test_rfc4231_vectors(sha_impl: int, secret: bytes, message: bytes, expected: str) -> None:
    assert c_hmac_hex(secret, message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
        (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ],
    ids=["empty", "abc", "two-blocks", "million-a"],
)
def test_sha256_vectors(sha_impl: int, message: bytes, expected: str) -> None:
    out = bytearray(64)
    assert lib.pf_sha256_hex(message, len(message), ffi.from_buffer(out), 64) == 64
    assert out.decode() == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", "d41d8cd98f00b204e9800998ecf8427e"),
        (b"a", "0cc175b9c0f1b6a831c399e269772661"),
        (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (b"1234567890" * 8, "57edf4a22be3c955ac49da2e2107b67a"),
    ],
)
def test_md5_vectors(message: bytes, expected: str) -> None:
    assert native.md5_hex(message) == expected


@pytest.mark.parametrize("size", [*EDGE_SIZES, *LARGE_SIZES])
def test_digests_at_block_edges(sha_impl: int, size: int) -> None:
    data = bytes(i * 7 % 251 for i in range(size))
    out = bytearray(64)
    lib.pf_sha256_hex(data, size, ffi.from_buffer(out), 64)
    assert out.decode() == hashlib.sha256(data).hexdigest()
    assert native.md5_hex(data) == hashlib.md5(data).hexdigest()
    for secret in ("", "k", "s" * 64, "s" * 65, "é" * 40):
        expected = hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
        assert native.Signer(KEY, secret).hmac_hex(data) == expected


# ---- native == fallback ----------------------------------------------------------


@PROPERTY
@given(
    key=texts,
    secret=secrets,
    method=methods,
    path=paths,
    extra=valid_extras(),
    body=bodies(),
    timestamp=timestamps,
)
@example(
    key=KEY,
    secret=SECRET,
    method="POST",
    path="/apps/3/events",
    extra="",
    body=TRIGGER_BODY,
    timestamp=1353088179,
)
@example(key="", secret="", method="", path="", extra="", body=b"", timestamp=0)
@example(
    key=KEY,
    secret="x" * 65,
    method="GET",
    path="/apps/3/channels",
    extra="filter_by_prefix=presence-&info=user_count",
    body=b"",
    timestamp=2**63 - 1,
)
@example(key="kéy", secret=SECRET, method="POST", path="/apps/3/events", extra="",
         body=TRIGGER_BODY, timestamp=1353088179)  # fmt: skip
@example(key="🔑ключ", secret="sé", method="GET", path="/apps/3/channels", extra="info=user_count",
         body=b"", timestamp=1353088179)  # fmt: skip
def test_sign_query_matches_fallback(
    sha_impl: int,
    key: str,
    secret: str,
    method: str,
    path: str,
    extra: str,
    body: bytes,
    timestamp: int,
) -> None:
    fast, slow = both(key, secret)
    assert fast.sign_query(method, path, extra, body, timestamp) == slow.sign_query(
        method, path, extra, body, timestamp
    )


@PROPERTY
@given(extra=any_extras, method=methods, timestamp=timestamps)
@example(extra="auth_key=1", method="GET", timestamp=1)
@example(extra="b=1&a=2", method="GET", timestamp=1)
@example(extra="a=1&a=2", method="GET", timestamp=1)
@example(extra="a=1&", method="GET", timestamp=1)
@example(extra="&", method="GET", timestamp=1)
@example(extra="=1", method="GET", timestamp=1)
@example(extra="a", method="GET", timestamp=1)
@example(extra="a==&b=", method="GET", timestamp=1)
def test_extra_accepted_and_rejected_alike(
    sha_impl: int, extra: str, method: str, timestamp: int
) -> None:
    fast, slow = both(KEY, SECRET)
    args = (method, "/apps/1/channels", extra, b"", timestamp)
    assert outcome(fast.sign_query, *args) == outcome(slow.sign_query, *args)


@PROPERTY
@given(secret=secrets, message=bodies())
def test_hmac_and_verify_match_fallback(sha_impl: int, secret: str, message: bytes) -> None:
    fast, slow = both(KEY, secret)
    signature = slow.hmac_hex(message)
    assert fast.hmac_hex(message) == signature
    assert fast.verify(message, signature) and slow.verify(message, signature)
    for wrong in (
        signature.upper(),
        signature[:-1],
        signature + "0",
        "",
        signature[:-1] + "g",
        signature[:-1] + "\u00e9",
        "0" * 64,
    ):
        assert fast.verify(message, wrong) == slow.verify(message, wrong)
        if wrong != signature:
            assert not fast.verify(message, wrong)


@PROPERTY
@given(data=bodies())
def test_md5_matches_hashlib(data: bytes) -> None:
    assert native.md5_hex(data) == _fallback.md5_hex(data)


def test_bytes_like_inputs_accepted() -> None:
    fast, slow = both(KEY, SECRET)
    for body in (bytearray(b"abc"), memoryview(b"abc")):
        assert fast.sign_query("POST", "/p", "", body, 1) == slow.sign_query(
            "POST", "/p", "", body, 1
        )
        assert fast.hmac_hex(body) == slow.hmac_hex(body)
        assert native.md5_hex(body) == hashlib.md5(b"abc").hexdigest()


def test_long_extra_gets_its_own_buffer() -> None:
    extra = "&".join(f"k{i:04d}={'v' * 40}" for i in range(100))  # ~4.5 KB
    fast, slow = both("k" * 300, SECRET)
    assert fast.sign_query("GET", "/p", extra, b"", 1) == slow.sign_query(
        "GET", "/p", extra, b"", 1
    )


def test_threads_share_nothing() -> None:
    """Signatures computed concurrently (the GIL is released in C) stay correct."""
    fast, slow = both(KEY, SECRET)
    cases = [(f"/apps/{i}/events", b"x" * (i % 300), 1_600_000_000 + i) for i in range(200)]
    expected = [slow.sign_query("POST", p, "info=a", b, t) for p, b, t in cases]
    errors: list[str] = []

    def work() -> None:
        for _ in range(5):
            for (path, body, ts), want in zip(cases, expected):
                if fast.sign_query("POST", path, "info=a", body, ts) != want:
                    errors.append(path)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---- argument checking in the wrapper -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "exc", "word"),
    [
        ((b"POST", "/p", "", b"", 1), TypeError, "method"),
        (("POST", None, "", b"", 1), TypeError, "path"),
        (("POST", "/p", 1, b"", 1), TypeError, "extra"),
        (("POST", "/p", "", "body", 1), TypeError, "body"),
        (("POST", "/p", "", b"", 1.5), TypeError, "timestamp"),
        (("POST", "/p", "", b"", True), TypeError, "timestamp"),
        (("POST", "/p", "", b"", "1"), TypeError, "timestamp"),
        (("POST", "/p", "", b"", -1), ValueError, "timestamp"),
        (("POST", "/p", "", b"", 2**63), ValueError, "timestamp"),
        (("POST", "/p", "x", b"", 1), ValueError, "'x'"),
        (("POST", "/p", "body_md5=1", b"", 1), ValueError, "reserved"),
    ],
)
def test_sign_query_rejects_bad_arguments(args: tuple, exc: type, word: str) -> None:
    with pytest.raises(exc, match=word):
        native.Signer(KEY, SECRET).sign_query(*args)


def test_constructor_and_hash_argument_types() -> None:
    with pytest.raises(TypeError, match="key"):
        native.Signer(b"k", SECRET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret"):
        native.Signer(KEY, b"s")  # type: ignore[arg-type]
    signer = native.Signer(KEY, SECRET)
    with pytest.raises(TypeError, match="message"):
        signer.hmac_hex("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="signature"):
        signer.verify(b"m", b"sig")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        native.md5_hex("text")  # type: ignore[arg-type]
    assert SECRET not in repr(signer)


def test_best_sha256_matches_the_cpu() -> None:
    cpuinfo = "/proc/cpuinfo"
    has_sha_ni = False
    if os.path.exists(cpuinfo):
        with open(cpuinfo) as f:
            has_sha_ni = " sha_ni" in f.read()
    before = lib.pf_sha256_impl()
    try:
        best = lib.pf_sha256_use(-1)
        assert native.sha256_backend() == ("sha-ni" if best == lib.PF_SHA256_SHANI else "portable")
        if has_sha_ni:
            assert best == lib.PF_SHA256_SHANI
    finally:
        lib.pf_sha256_use(before)


# ---- C API boundaries ----------------------------------------------------------------


def c_sign(out: bytearray, out_len: int, extra: bytes = b"", body: bytes = b"", ts: int = 7) -> int:
    ctx = ffi.new("pf_hmac_ctx *")
    lib.pf_hmac_init(ctx, b"s", 1)
    return int(
        lib.pf_sign_query(
            ctx,
            b"GET",
            3,
            b"/p",
            2,
            b"key",
            3,
            ts,
            extra,
            len(extra),
            body,
            len(body),
            ffi.from_buffer(out),
            out_len,
        )
    )


@pytest.mark.parametrize("extra", [b"", b"info=1", b"a=1&zz=" + b"9" * 50])
@pytest.mark.parametrize("ts", [0, 9, 10, 1353088179, 2**63 - 1])
def test_c_sign_writes_exactly_its_size(extra: bytes, ts: int) -> None:
    size = int(lib.pf_sign_query_size(3, ts, len(extra)))
    big = bytearray(b"#" * (size + 16))
    assert c_sign(big, size, extra=extra, ts=ts) == size
    assert big[size:] == b"#" * 16
    for short in (0, 1, size - 1):
        buf = bytearray(b"#" * (size + 16))
        assert c_sign(buf, short, extra=extra, ts=ts) == lib.PF_ERR_BUFFER
        assert buf == bytearray(b"#" * (size + 16))  # nothing written at all


def exact(data: bytes):  # type: ignore[no-untyped-def]
    """``data`` in a C array of exactly its length (no NUL), so that under
    AddressSanitizer (scripts/sanitize.sh) reading one byte past it is caught."""
    buf = ffi.new(f"char[{len(data)}]")
    ffi.memmove(buf, data, len(data))
    return buf


@pytest.mark.parametrize("size", [*EDGE_SIZES, 1000, 4096 + 17])
def test_c_stays_inside_exact_buffers(sha_impl: int, size: int) -> None:
    data = bytes(i * 13 % 256 for i in range(size))
    secret = data.hex().encode()[: size % 150]
    ctx = ffi.new("pf_hmac_ctx *")
    assert lib.pf_hmac_init(ctx, exact(secret), len(secret)) == lib.PF_OK
    out64, out32 = ffi.new("char[64]"), ffi.new("char[32]")
    assert lib.pf_hmac_hex(ctx, exact(data), size, out64, 64) == 64
    assert ffi.buffer(out64)[:] == hmac.new(secret, data, hashlib.sha256).hexdigest().encode()
    assert lib.pf_hmac_verify(ctx, exact(data), size, exact(ffi.buffer(out64)[:]), 64) == 1
    assert lib.pf_md5_hex(exact(data), size, out32, 32) == 32
    assert ffi.buffer(out32)[:] == hashlib.md5(data).hexdigest().encode()
    assert lib.pf_sha256_hex(exact(data), size, out64, 64) == 64
    assert ffi.buffer(out64)[:] == hashlib.sha256(data).hexdigest().encode()

    key, extra, ts = b"k" * (size % 40), b"info=" + b"v" * (size % 70), 10**9 + size
    n = int(lib.pf_sign_query_size(len(key), ts, len(extra)))
    out = ffi.new(f"char[{n}]")
    got = lib.pf_sign_query(
        ctx,
        exact(b"POST"),
        4,
        exact(b"/p"),
        2,
        exact(key),
        len(key),
        ts,
        exact(extra),
        len(extra),
        exact(data),
        size,
        out,
        n,
    )
    assert got == n
    expected = _fallback.Signer(key.decode(), secret.decode()).sign_query(
        "POST", "/p", extra.decode(), data, ts
    )
    assert ffi.buffer(out)[:].decode() == expected


def test_c_rejects_bad_pointers_and_lengths() -> None:
    ctx = ffi.new("pf_hmac_ctx *")
    out = ffi.new("char[64]")
    assert lib.pf_hmac_init(ffi.NULL, b"", 0) == lib.PF_ERR_ARG
    assert lib.pf_hmac_init(ctx, ffi.NULL, 1) == lib.PF_ERR_ARG
    assert lib.pf_hmac_init(ctx, ffi.NULL, 0) == lib.PF_OK
    assert lib.pf_hmac_hex(ctx, ffi.NULL, 0, out, 64) == 64
    assert lib.pf_hmac_hex(ctx, ffi.NULL, 3, out, 64) == lib.PF_ERR_ARG
    assert lib.pf_hmac_hex(ctx, b"m", 1, out, 63) == lib.PF_ERR_BUFFER
    assert lib.pf_hmac_hex(ctx, b"m", 1, ffi.NULL, 64) == lib.PF_ERR_ARG
    # A length past the limit is refused before anything is read.
    assert lib.pf_hmac_hex(ctx, b"m", 2**60, out, 64) == lib.PF_ERR_ARG
    assert lib.pf_md5_hex(b"m", 2**60, out, 64) == lib.PF_ERR_ARG
    assert lib.pf_md5_hex(b"m", 1, out, 31) == lib.PF_ERR_BUFFER
    assert lib.pf_sha256_hex(b"m", 1, out, 63) == lib.PF_ERR_BUFFER
    assert lib.pf_hmac_verify(ctx, b"m", 1, b"x" * 63, 63) == 0
    assert lib.pf_hmac_verify(ctx, b"m", 2**60, b"x" * 64, 64) == lib.PF_ERR_ARG
    assert lib.pf_sign_query_size(2**60, 0, 0) == lib.PF_ERR_ARG
    assert lib.pf_sign_query_size(0, -1, 0) == lib.PF_ERR_TIMESTAMP
    buf = bytearray(400)
    assert c_sign(buf, 400, ts=-5) == lib.PF_ERR_TIMESTAMP
    for extra, code in [
        (b"a", lib.PF_ERR_EXTRA_FORM),
        (b"=1", lib.PF_ERR_EXTRA_FORM),
        (b"a=1&", lib.PF_ERR_EXTRA_FORM),
        (b"auth_version=2", lib.PF_ERR_EXTRA_RESERVED),
        (b"b=1&a=1", lib.PF_ERR_EXTRA_ORDER),
        (b"a=1&a=1", lib.PF_ERR_EXTRA_ORDER),
    ]:
        assert c_sign(buf, 400, extra=extra) == code, extra


def test_implementation_switch_reports_truthfully() -> None:
    before = lib.pf_sha256_impl()
    try:
        assert lib.pf_sha256_use(7) == -1
        assert lib.pf_sha256_impl() == before
        assert lib.pf_sha256_use(lib.PF_SHA256_PORTABLE) == lib.PF_SHA256_PORTABLE
        assert lib.pf_sha256_impl() == lib.PF_SHA256_PORTABLE
        best = lib.pf_sha256_use(-1)
        assert best in (lib.PF_SHA256_PORTABLE, lib.PF_SHA256_SHANI)
        assert lib.pf_sha256_impl() == best
    finally:
        lib.pf_sha256_use(before)


# ---- endpoints (the trigger/batch hot path) ------------------------------------


@PROPERTY
@given(
    key=texts,
    secret=secrets,
    method=methods,
    path=paths,
    body=bodies(),
    timestamp=timestamps,
)
@example(key=KEY, secret=SECRET, method="POST", path="/apps/3/events", body=TRIGGER_BODY,
         timestamp=1353088179)  # fmt: skip
@example(key="k" * 300, secret=SECRET, method="POST", path="/p" * 300, body=b"", timestamp=5)
@example(key="kéy", secret=SECRET, method="POST", path="/apps/3/events", body=TRIGGER_BODY,
         timestamp=1353088179)  # fmt: skip
@example(key="🔑" * 100, secret=SECRET, method="POST", path="/apps/3/events", body=b"",
         timestamp=1353088179)  # fmt: skip
def test_endpoint_sign_matches_sign_query(
    sha_impl: int, key: str, secret: str, method: str, path: str, body: bytes, timestamp: int
) -> None:
    fast, slow = both(key, secret)
    expected = slow.sign_query(method, path, "", body, timestamp)
    assert slow.endpoint(method, path).sign(body, timestamp) == expected
    assert fast.endpoint(method, path).sign(body, timestamp) == expected


@pytest.mark.parametrize("signer_cls", [native.Signer, _fallback.Signer], ids=["native", "python"])
@pytest.mark.parametrize("timestamp", [-1, 2**63, True, 1.5, "1"])
def test_endpoint_refuses_bad_timestamps(signer_cls, timestamp) -> None:  # type: ignore[no-untyped-def]
    endpoint = signer_cls(KEY, SECRET).endpoint("POST", "/apps/3/events")
    with pytest.raises((TypeError, ValueError)):
        endpoint.sign(b"{}", timestamp)


# ---- channel / user authorization ------------------------------------------------

socket_ids = st.one_of(
    st.from_regex(r"\A[0-9]{1,12}\.[0-9]{1,12}\Z"),
    st.sampled_from(
        ["1.1:private-other", "1.1\n", "\u0661.\u0661", ".1", "1.", "", "1.1.1", " 1.1", "1.1 "]
    ),
    st.text(max_size=20),
)
channel_names = st.one_of(
    st.text("abcXYZ019-_=@,.;", min_size=1, max_size=200),
    st.sampled_from(["", "a b", "a:b", "#server-to-user-1", "café", "c" * 201]),
    st.text(max_size=30),
)


@PROPERTY
@given(key=texts, secret=secrets, socket_id=socket_ids, channel=channel_names, data=texts)
@example(key="kéy", secret=SECRET, socket_id="1.1", channel="private-c", data="")
@example(key="ключ🔑", secret=SECRET, socket_id="1.1", channel="presence-c", data='{"user_id":"é"}')
def test_channel_auth_matches_fallback(
    sha_impl: int, key: str, secret: str, socket_id: str, channel: str, data: str
) -> None:
    fast, slow = both(key, secret)
    got = fast.channel_auth(socket_id, channel, data)
    assert got == slow.channel_auth(socket_id, channel, data)
    valid = (
        re.fullmatch(r"[0-9]+\.[0-9]+", socket_id) is not None
        and re.fullmatch(r"[-a-zA-Z0-9_=@,.;]{1,200}", channel) is not None
    )
    if not valid:
        assert got is None
    else:
        message = f"{socket_id}:{channel}" + (f":{data}" if data else "")
        mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        assert got == f"{key}:{mac}"


@PROPERTY
@given(key=texts, secret=secrets, socket_id=socket_ids, data=texts)
@example(key="kéy", secret=SECRET, socket_id="1.1", data='{"id":"u"}')
def test_user_auth_matches_fallback(
    sha_impl: int, key: str, secret: str, socket_id: str, data: str
) -> None:
    fast, slow = both(key, secret)
    got = fast.user_auth(socket_id, data)
    assert got == slow.user_auth(socket_id, data)
    if re.fullmatch(r"[0-9]+\.[0-9]+", socket_id) is None:
        assert got is None
    else:
        message = f"{socket_id}::user::{data}".encode()
        assert got == f"{key}:{hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"


@pytest.mark.parametrize("signer_cls", [native.Signer, _fallback.Signer], ids=["native", "python"])
def test_channel_auth_worked_example(signer_cls) -> None:  # type: ignore[no-untyped-def]
    signer = signer_cls(KEY, SECRET)
    assert signer.channel_auth("1234.1234", "private-foobar", "") == (
        "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    )
    with pytest.raises(TypeError):
        signer.channel_auth(None, "private-foobar", "")
    with pytest.raises(TypeError):
        signer.user_auth("1.1", None)


@pytest.mark.parametrize("key", ["kéy", "ключ", "🔑-key", "é" * 300])
def test_non_ascii_key_signs_alike_on_both_paths(key: str) -> None:
    """The key goes into the signed query unescaped, as UTF-8, on both paths."""
    fast, slow = both(key, SECRET)
    for extra in ("", "info=user_count"):
        query = fast.sign_query("GET", "/apps/3/channels", extra, b"", 1353088179)
        assert query == slow.sign_query("GET", "/apps/3/channels", extra, b"", 1353088179)
        assert query.startswith(f"auth_key={key}&")
        unsigned = "&".join(p for p in query.split("&") if not p.startswith("auth_signature="))
        mac = hmac.new(
            SECRET.encode(), f"GET\n/apps/3/channels\n{unsigned}".encode(), hashlib.sha256
        ).hexdigest()
        assert f"auth_signature={mac}" in query
    endpoint_query = fast.endpoint("POST", "/apps/3/events").sign(b"{}", 1353088179)
    assert endpoint_query == slow.endpoint("POST", "/apps/3/events").sign(b"{}", 1353088179)


# ---- one call per trigger / batch (Endpoint.event) ---------------------------------

import time  # noqa: E402

import orjson  # noqa: E402

FRAMES = [_fallback.FRAME_STRING, _fallback.FRAME_JSON, _fallback.FRAME_BATCH]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
event_data = st.one_of(
    json_values.map(orjson.dumps),  # what the client passes: orjson's output
    bodies(),  # and anything else: every path treats bytes alike
    st.sampled_from([b"", b'"', b"\\", b'\\"', b'"\\' * 50, b"\\" * 900]),
)
prefixes = st.one_of(
    st.sampled_from([b'{"name":"e","channels":["c"],"data":', b'{"batch":[', b""]),
    st.binary(max_size=120),
)


def event_signers(key: str, secret: str) -> list:  # type: ignore[type-arg]
    """The native signers: all C, and C framing with OpenSSL HMACs (always, and
    from this CPU's threshold on)."""
    return [
        native.Signer(key, secret),
        native.HybridSigner(key, secret, openssl_from=0),
        native.HybridSigner(key, secret),
    ]


@PROPERTY
@given(
    key=texts,
    secret=secrets,
    path=paths,
    frame=st.sampled_from(FRAMES),
    prefix=prefixes,
    data=event_data,
    timestamp=timestamps,
)
@example(key=KEY, secret=SECRET, path="/apps/3/events", frame=0,
         prefix=b'{"name":"foo","channels":["project-3"],"data":', data=b'{"some":"data"}',
         timestamp=1353088179)  # fmt: skip
def test_event_matches_fallback(
    sha_impl: int, key: str, secret: str, path: str, frame: int, prefix: bytes, data: bytes,
    timestamp: int,
) -> None:  # fmt: skip
    slow = _fallback.Signer(key, secret).endpoint("POST", path)
    body = _fallback.frame_body(frame, prefix, data)
    expected = (body, slow.sign(body, timestamp))
    assert slow.event(frame, prefix, data, timestamp) == expected
    for signer in event_signers(key, secret):
        assert signer.endpoint("POST", path).event(frame, prefix, data, timestamp) == expected


def test_event_worked_example(sha_impl: int) -> None:
    prefix = b'{"name":"foo","channels":["project-3"],"data":'
    for signer in [*event_signers(KEY, SECRET), _fallback.Signer(KEY, SECRET)]:
        body, query = signer.endpoint("POST", "/apps/3/events").event(
            _fallback.FRAME_STRING, prefix, b'{"some":"data"}', 1353088179
        )
        assert body == TRIGGER_BODY
        assert query == _fallback.Signer(KEY, SECRET).sign_query(
            "POST", "/apps/3/events", "", TRIGGER_BODY, 1353088179
        )


def _python_seconds(ns: int) -> float:
    """time.time()'s value for a clock reading of ``ns`` (CPython's _PyTime_AsSecondsDouble)."""
    if ns % 10**9 == 0:
        return float(ns // 10**9)
    return float(ns) / 1e9


@given(
    ns=st.one_of(
        st.integers(0, 2**63 - 1),
        st.integers(1_000_000_000, 9_000_000_000).map(lambda s: s * 10**9 + 500_000_000),
        st.integers(1_000_000_000, 9_000_000_000).flatmap(
            lambda s: st.integers(s * 10**9 + 499_999_990, s * 10**9 + 500_000_010)
        ),
    )
)
@example(ns=500_000_000)
@example(ns=1_500_000_000)
@example(ns=2_500_000_000)
def test_c_clock_rounds_like_python(ns: int) -> None:
    """pf_now() is round(time.time()) for the same clock reading, half to even included."""
    assert lib.pf_round_ns(ns) == round(_python_seconds(ns))


def test_c_clock_reads_the_same_clock_as_python() -> None:
    for _ in range(20):
        before = round(time.time())
        now = lib.pf_now()
        after = round(time.time())
        assert before <= now <= after


def test_event_now_uses_the_clock(sha_impl: int) -> None:
    """No timestamp: C reads the clock; the result is the fallback's at that second."""
    prefix, data = b'{"name":"e","channels":["c"],"data":', b'{"a":"\\"q\\""}'
    slow = _fallback.Signer(KEY, SECRET).endpoint("POST", "/apps/1/events")
    for signer in event_signers(KEY, SECRET):
        endpoint = signer.endpoint("POST", "/apps/1/events")
        for frame in FRAMES:
            before = round(time.time())
            body, query = endpoint.event(frame, prefix, data)
            after = round(time.time())
            ts = int(dict(p.split("=", 1) for p in query.split("&"))["auth_timestamp"])
            assert before <= ts <= after
            assert (body, query) == slow.event(frame, prefix, data, ts)


def test_event_now_follows_a_replaced_clock(sha_impl: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen time (tests, freezegun) is obeyed: C's clock is used only for the real one."""
    monkeypatch.setattr(time, "time", lambda: 1353088179.5)  # half to even: ...180
    prefix, data = b"{", b"1"
    expected = _fallback.Signer(KEY, SECRET).endpoint("POST", "/p").event(1, prefix, data)
    assert "auth_timestamp=1353088180&" in expected[1]
    for signer in event_signers(KEY, SECRET):
        assert signer.endpoint("POST", "/p").event(1, prefix, data) == expected


@pytest.mark.parametrize("frame", [3, -1, 99])
def test_event_refuses_unknown_frames_alike(frame: int) -> None:
    messages = set()
    for signer in [*event_signers(KEY, SECRET), _fallback.Signer(KEY, SECRET)]:
        for timestamp in (None, 5):
            with pytest.raises(ValueError, match="frame") as info:
                signer.endpoint("POST", "/p").event(frame, b"", b"", timestamp)
            messages.add(str(info.value))
    assert len(messages) == 1


@pytest.mark.parametrize("timestamp", [-1, -1.0, 2**63, True, 1.5, "1"])
def test_event_refuses_bad_timestamps_alike(timestamp: object) -> None:
    for signer in [*event_signers(KEY, SECRET), _fallback.Signer(KEY, SECRET)]:
        with pytest.raises((TypeError, ValueError)):
            signer.endpoint("POST", "/p").event(1, b"", b"", timestamp)


def test_event_accepts_bytes_like_and_refuses_str() -> None:
    expected = _fallback.Signer(KEY, SECRET).endpoint("POST", "/p").event(0, b"{", b'"', 7)
    for signer in event_signers(KEY, SECRET):
        endpoint = signer.endpoint("POST", "/p")
        assert endpoint.event(0, bytearray(b"{"), memoryview(b'"'), 7) == expected
        with pytest.raises(TypeError, match="data"):
            endpoint.event(0, b"{", '"', 7)


def test_event_buffers_grow_and_large_bodies_pass() -> None:
    """Bodies from empty to past the pooled-buffer limit, alternating, in one pool."""
    slow = _fallback.Signer(KEY, SECRET).endpoint("POST", "/p")
    sizes = [0, 10, 5000, 3, native._BODY_POOLED_MAX + 7, 1, 300_000, 2]
    for signer in event_signers(KEY, SECRET):
        endpoint = signer.endpoint("POST", "/p")
        for size in sizes:
            data = (b'ab"\\' * (size // 4 + 1))[:size]
            for frame in FRAMES:
                got = endpoint.event(frame, b"{", data)
                ts = int(got[1].split("auth_timestamp=")[1].split("&")[0])
                assert got == slow.event(frame, b"{", data, ts)


def test_event_threads_share_nothing() -> None:
    """Concurrent events (the GIL is released in C) each get their own buffers."""
    cases = [
        (i % 3, b"{" * (i % 7), b'x"\\' * (i * 37 % 900), 1_600_000_000 + i) for i in range(150)
    ]
    slow = _fallback.Signer(KEY, SECRET).endpoint("POST", "/apps/1/events")
    expected = [slow.event(*case) for case in cases]
    errors: list[int] = []

    def work(endpoint) -> None:  # type: ignore[no-untyped-def]
        for _ in range(5):
            for i, (case, want) in enumerate(zip(cases, expected)):
                if endpoint.event(*case) != want:
                    errors.append(i)

    endpoints = [s.endpoint("POST", "/apps/1/events") for s in event_signers(KEY, SECRET)]
    threads = [threading.Thread(target=work, args=(endpoints[i % 3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_c_event_checks_every_buffer() -> None:
    """Too-small buffers are refused before anything is written; exact ones suffice."""
    signer = native.Signer(KEY, SECRET)
    endpoint = signer.endpoint("POST", "/apps/3/events")
    prefix, data = b'{"x":', b'a"b\\c'
    bsize = lib.pf_event_body_size(0, prefix, len(prefix), data, len(data))
    assert bsize == len(_fallback.frame_body(0, prefix, data))
    qsize = lib.pf_sign_query_size(len(KEY), 1353088179, 0)
    for bcap, qcap, ok in [
        (bsize, qsize, True),
        (bsize - 1, qsize, False),
        (bsize, qsize - 1, False),
    ]:
        body = ffi.new("char[]", b"#" * bcap)
        query = ffi.new("char[]", b"#" * qcap)
        n = lib.pf_event_sign(
            endpoint._ep,
            1353088179,
            0,
            prefix,
            len(prefix),
            data,
            len(data),
            body,
            bcap,
            query,
            qcap,
        )
        if ok:
            assert n == bsize
        else:
            assert n == lib.PF_ERR_BUFFER
            assert ffi.buffer(body, bcap)[:] == b"#" * bcap
            assert ffi.buffer(query, qcap)[:] == b"#" * qcap


@PROPERTY
@given(
    key=texts,
    secret=secrets,
    message=bodies(),
    socket_id=socket_ids,
    channel=channel_names,
    data=texts,
    openssl_from=st.sampled_from([0, 1, 60, 100, 200, 384, 10**9]),
)
def test_hybrid_signer_matches_fallback_on_both_sides_of_its_threshold(
    sha_impl: int, key: str, secret: str, message: bytes, socket_id: str, channel: str,
    data: str, openssl_from: int,
) -> None:  # fmt: skip
    """Messages below ``openssl_from`` go to C, the others to OpenSSL: same bytes."""
    hybrid = native.HybridSigner(key, secret, openssl_from=openssl_from)
    slow = _fallback.Signer(key, secret)
    expected = slow.hmac_hex(message)
    assert hybrid.hmac_hex(message) == expected
    assert hybrid.verify(message, expected) is True
    assert hybrid.verify(message, expected[:-1] + "0") is (expected[-1] == "0")
    assert hybrid.channel_auth(socket_id, channel, data) == slow.channel_auth(
        socket_id, channel, data
    )
    assert hybrid.user_auth(socket_id, data) == slow.user_auth(socket_id, data)
    path = "/apps/3/" + data
    assert hybrid.sign_query("POST", path, "", message, 1353088179) == slow.sign_query(
        "POST", path, "", message, 1353088179
    )
    assert hybrid.endpoint("POST", path).sign(message, 7) == slow.endpoint("POST", path).sign(
        message, 7
    )


def test_hybrid_signer_routes_by_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long messages reach OpenSSL, short ones C (the routing the threshold promises)."""
    hybrid = native.HybridSigner(KEY, SECRET, openssl_from=100)
    to_openssl: list[int] = []
    real = _fallback.Signer.hmac_hex

    def spy(self, message):  # type: ignore[no-untyped-def]
        to_openssl.append(len(message))
        return real(self, message)

    monkeypatch.setattr(_fallback.Signer, "hmac_hex", spy)
    hybrid.hmac_hex(b"x" * 99)
    assert to_openssl == []
    hybrid.hmac_hex(b"x" * 100)
    assert to_openssl == [100]
    assert isinstance(hybrid.endpoint("POST", "/p"), native.HybridEndpoint)
    assert isinstance(
        native.HybridSigner(KEY, SECRET, openssl_from=10**6).endpoint("POST", "/p"),
        native.Endpoint,
    )

"""Request signing: the protocol's worked vectors, and the Signer contract.

The contract (``pusher_fast._fallback`` docstring) is checked against every
implementation available: the pure-Python ``_fallback.Signer`` always, the C
``_native_signer.Signer`` when it is built (required when
``PUSHER_FAST_REQUIRE_NATIVE=1``).  Expected values are either the published
vectors or recomputed here with ``hashlib``/``hmac``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pusher_fast
from pusher_fast import _fallback, _signing
from tests.helpers import (
    EXAMPLE_TIMESTAMP,
    KEY,
    SECRET,
    hmac_hex,
    make_client,
    parse_query,
    reference_query,
)

EXAMPLE_BODY = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
EXAMPLE_MD5 = "ec365a775a4cd0599faeb73354201b6f"
EXAMPLE_SIGNATURE = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
EXAMPLE_QUERY = (
    f"auth_key={KEY}&auth_signature={EXAMPLE_SIGNATURE}&auth_timestamp={EXAMPLE_TIMESTAMP}"
    f"&auth_version=1.0&body_md5={EXAMPLE_MD5}"
)
EXAMPLE_CHANNEL_AUTH = (
    "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
)

REQUIRE_NATIVE = os.environ.get("PUSHER_FAST_REQUIRE_NATIVE") == "1"
FORCED_PURE = os.environ.get("PUSHER_FAST_PURE") == "1"


def _load_native() -> types.ModuleType:
    if REQUIRE_NATIVE:
        return importlib.import_module("pusher_fast._native_signer")
    return pytest.importorskip("pusher_fast._native_signer")


@pytest.fixture(scope="module", params=["python", "native", "hybrid"])
def impl(request: pytest.FixtureRequest) -> types.ModuleType:
    """A module implementing the contract: ``Signer`` and ``md5_hex``.  "hybrid"
    is the native path of CPUs without SHA extensions (C framing, OpenSSL HMAC)."""
    if request.param == "python":
        return _fallback
    native = _load_native()
    if request.param == "hybrid":  # every HMAC from OpenSSL, whatever its length
        signer = functools.partial(native.HybridSigner, openssl_from=0)
        return types.SimpleNamespace(Signer=signer, md5_hex=native.md5_hex)  # type: ignore[return-value]
    return native


# -- the worked vectors, through the public API -----------------------------------


class TestWorkedVectorsThroughPublicApi:
    def test_trigger_reproduces_the_reference_body_md5_and_signature(self, monkeypatch):
        monkeypatch.setattr(time, "time", lambda: float(EXAMPLE_TIMESTAMP))
        client = make_client()
        client.trigger("project-3", "foo", {"some": "data"})
        request = client.http.last
        assert request.method == "POST"
        assert request.path == "/apps/3/events"
        assert request.body == EXAMPLE_BODY
        assert request.query_params["body_md5"] == EXAMPLE_MD5
        assert request.query_params["auth_signature"] == EXAMPLE_SIGNATURE
        assert request.query_string == EXAMPLE_QUERY

    def test_fractional_clock_rounds_to_the_same_second(self, monkeypatch):
        monkeypatch.setattr(time, "time", lambda: EXAMPLE_TIMESTAMP + 0.4)
        client = make_client()
        client.trigger("project-3", "foo", '{"some":"data"}')
        assert client.http.last.query_string == EXAMPLE_QUERY

    def test_clock_drives_the_timestamp(self, monkeypatch):
        monkeypatch.setattr(time, "time", lambda: float(EXAMPLE_TIMESTAMP + 1))
        client = make_client()
        client.trigger("project-3", "foo", {"some": "data"})
        query = client.http.last.query_params
        assert query["auth_timestamp"] == str(EXAMPLE_TIMESTAMP + 1)
        assert query["auth_signature"] != EXAMPLE_SIGNATURE

    def test_private_channel_auth_vector(self):
        client = make_client()
        assert client.authenticate("private-foobar", "1234.1234") == {"auth": EXAMPLE_CHANNEL_AUTH}

    def test_authorize_channel_alias_gives_the_same_vector(self):
        client = make_client()
        assert client.authorize_channel("private-foobar", "1234.1234")["auth"] == (
            EXAMPLE_CHANNEL_AUTH
        )

    def test_get_request_signs_md5_of_the_empty_body(self, monkeypatch):
        monkeypatch.setattr(time, "time", lambda: float(EXAMPLE_TIMESTAMP))
        client = make_client()
        client.channels_info(prefix_filter="presence-", attributes=["user_count"])
        request = client.http.last
        expected = reference_query(
            "GET",
            "/apps/3/channels",
            {"filter_by_prefix": "presence-", "info": "user_count"},
            b"",
            KEY,
            SECRET,
            EXAMPLE_TIMESTAMP,
        )
        assert request.query_string == expected
        assert request.query_params["body_md5"] == "d41d8cd98f00b204e9800998ecf8427e"


class TestImplementationSelection:
    def test_forced_pure_uses_the_fallback(self):
        if not FORCED_PURE:
            pytest.skip("PUSHER_FAST_PURE=1 not set")
        assert pusher_fast.IMPLEMENTATION == "python"
        assert _signing.Signer is _fallback.Signer

    def test_native_is_used_when_built(self):
        if FORCED_PURE:
            pytest.skip("PUSHER_FAST_PURE=1 forces the fallback")
        native = _load_native()
        assert pusher_fast.IMPLEMENTATION == "native"
        expected = native.Signer if pusher_fast.HASHING == "sha-ni" else native.HybridSigner
        assert _signing.Signer is expected

    def test_hashing_names_the_hmac_code(self):
        if _signing.Signer is _fallback.Signer:
            assert pusher_fast.HASHING in ("openssl", "hashlib")
            return
        from pusher_fast._native import lib

        hardware = lib.pf_sha256_impl() == lib.PF_SHA256_SHANI
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
        expected = "sha-ni" if hardware else ("portable+openssl" if x86 else "openssl")
        assert pusher_fast.HASHING == expected
        assert (pusher_fast.HASHING == "sha-ni") == (_signing.Signer.__name__ == "Signer")

    def test_forced_portable_sha_signs_with_openssl_and_the_same_bytes(self):
        """PUSHER_FAST_FORCE_PORTABLE_SHA=1: as on a CPU without SHA extensions,
        HMAC comes from the standard library; every request is byte-identical."""
        _load_native()
        script = (
            "import json, time\n"
            "time.time = lambda: 1353088179.4\n"
            "import pusher_fast\n"
            "from pusher_fast import _signing\n"
            "from pusher_fast._native import lib\n"
            "from tests.helpers import make_client\n"
            "c = make_client()\n"
            "reqs = [c._trigger_request('project-3', 'foo', {'some': 'da\"ta\\\\'}),\n"
            "        c._trigger_request('project-3', 'foo', 'text'),\n"
            "        c._batch_request([{'channel': 'a', 'name': 'b', 'data': {'x': 1}}]*3),\n"
            "        c._trigger_request(['a', 'b'], 'foo', {'x': 1}, socket_id='1.2')]\n"
            "print(json.dumps({'implementation': pusher_fast.IMPLEMENTATION,\n"
            "  'hashing': pusher_fast.HASHING, 'signer': _signing.Signer.__name__,\n"
            "  'portable': lib.pf_sha256_impl() == lib.PF_SHA256_PORTABLE,\n"
            "  'auth': c.authenticate('presence-x', '1.2', {'user_id': 'u'}),\n"
            "  'requests': [[r.body.decode(), r.query_string] for r in reqs]}))\n"
        )
        results = {}
        for name, extra in [
            ("portable", {"PUSHER_FAST_FORCE_PORTABLE_SHA": "1"}),
            ("pure", {"PUSHER_FAST_PURE": "1"}),
            ("default", {}),
        ]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHER_FAST_")}
            env.update(extra)
            out = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True,
                check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            ).stdout  # fmt: skip
            results[name] = json.loads(out)
        portable = results["portable"]
        assert portable["implementation"] == "native"
        x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
        assert portable["hashing"] == ("portable+openssl" if x86 else "openssl")
        assert portable["signer"] == "HybridSigner"
        assert portable["portable"] is True
        assert results["pure"]["implementation"] == "python"
        for other in ("pure", "default"):
            assert portable["requests"] == results[other]["requests"]
            assert portable["auth"] == results[other]["auth"]
        assert "auth_timestamp=1353088179&" in portable["requests"][0][1]

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize(
        ("hidden", "pure", "warns"),
        [(True, None, True), (True, "1", False), (False, None, False), (True, "0", True)],
        ids=["missing", "missing-forced-pure", "built", "missing-pure-0"],
    )
    def test_missing_extension_warns_once_unless_pure_is_forced(self, hidden, pure, warns):
        if not hidden:
            _load_native()  # "built" needs the extension
        result = _run_hiding_native(hidden, pure)
        assert result.returncode == 0, result.stderr
        implementation, count, message = result.stdout.strip().split("|", 2)
        assert implementation == ("python" if hidden or pure == "1" else "native")
        if warns:
            assert count == "1"
            assert "RuntimeWarning" in message
            assert "python build_ffi.py" in message and "C compiler" in message
            assert "PUSHER_FAST_PURE=1" in message
        else:
            assert count == "0", message

    @pytest.mark.timeout(120)
    def test_bench_says_which_path_is_active(self):
        for hidden, pure, expected in [
            (True, None, "signing path: python (pure Python: the C extension is missing"),
            (True, "1", "signing path: python (pure Python, forced by PUSHER_FAST_PURE=1)"),
        ]:
            result = _run_hiding_native(hidden, pure, bench=True)
            assert result.returncode == 0, result.stderr
            assert expected in result.stdout

    def test_implementation_names_the_active_signer(self):
        expected = "python" if _signing.Signer is _fallback.Signer else "native"
        assert pusher_fast.IMPLEMENTATION == expected


# -- the Signer contract ------------------------------------------------------------


def _sign(module: types.ModuleType, body: object = b"", timestamp: object = 1) -> str:
    return module.Signer(KEY, SECRET).sign_query("GET", "/p", "", body, timestamp)


class TestSignQuery:
    def test_worked_example(self, impl):
        signer = impl.Signer(KEY, SECRET)
        query = signer.sign_query("POST", "/apps/3/events", "", EXAMPLE_BODY, EXAMPLE_TIMESTAMP)
        assert query == EXAMPLE_QUERY

    def test_extra_parameters_are_merged_in_key_order(self, impl):
        signer = impl.Signer(KEY, SECRET)
        extra = "filter_by_prefix=presence-&info=user_count"
        query = signer.sign_query("GET", "/apps/3/channels", extra, b"", EXAMPLE_TIMESTAMP)
        keys = [item.partition("=")[0] for item in query.split("&")]
        assert keys == [
            "auth_key",
            "auth_signature",
            "auth_timestamp",
            "auth_version",
            "body_md5",
            "filter_by_prefix",
            "info",
        ]
        assert query == reference_query(
            "GET",
            "/apps/3/channels",
            {"filter_by_prefix": "presence-", "info": "user_count"},
            b"",
            KEY,
            SECRET,
            EXAMPLE_TIMESTAMP,
        )

    def test_keys_sort_by_code_point_around_the_auth_parameters(self, impl):
        signer = impl.Signer(KEY, SECRET)
        extra = "B=1&a=2&auth_zzz=3&body_md5x=4&zzz=5"
        query = signer.sign_query("GET", "/p", extra, b"", EXAMPLE_TIMESTAMP)
        keys = [item.partition("=")[0] for item in query.split("&")]
        assert keys == [
            "B",
            "a",
            "auth_key",
            "auth_signature",
            "auth_timestamp",
            "auth_version",
            "auth_zzz",
            "body_md5",
            "body_md5x",
            "zzz",
        ]
        params = {"B": "1", "a": "2", "auth_zzz": "3", "body_md5x": "4", "zzz": "5"}
        assert query == reference_query("GET", "/p", params, b"", KEY, SECRET, EXAMPLE_TIMESTAMP)

    def test_values_are_not_escaped(self, impl):
        signer = impl.Signer(KEY, SECRET)
        extra = "filter_by_prefix=a=b@c,d;e"
        query = signer.sign_query("GET", "/apps/3/channels", extra, b"", 7)
        assert "&filter_by_prefix=a=b@c,d;e" in query
        params = {"filter_by_prefix": "a=b@c,d;e"}
        assert query == reference_query("GET", "/apps/3/channels", params, b"", KEY, SECRET, 7)

    def test_empty_value_is_allowed(self, impl):
        signer = impl.Signer(KEY, SECRET)
        query = signer.sign_query("GET", "/p", "a=", b"", 7)
        assert query == reference_query("GET", "/p", {"a": ""}, b"", KEY, SECRET, 7)

    @pytest.mark.parametrize("timestamp", [0, 1, EXAMPLE_TIMESTAMP, 2**31 + 5, 4102444800])
    def test_timestamp_is_written_in_decimal(self, impl, timestamp):
        signer = impl.Signer(KEY, SECRET)
        query = signer.sign_query("POST", "/apps/3/events", "", b"{}", timestamp)
        assert parse_query(query)["auth_timestamp"] == str(timestamp)
        assert query == reference_query("POST", "/apps/3/events", {}, b"{}", KEY, SECRET, timestamp)

    @pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 4096, 1 << 20])
    def test_body_md5_for_bodies_across_block_boundaries(self, impl, size):
        body = bytes(i * 7 % 251 for i in range(size))
        signer = impl.Signer(KEY, SECRET)
        query = signer.sign_query("POST", "/apps/3/events", "", body, EXAMPLE_TIMESTAMP)
        assert parse_query(query)["body_md5"] == hashlib.md5(body).hexdigest()
        assert query == reference_query(
            "POST", "/apps/3/events", {}, body, KEY, SECRET, EXAMPLE_TIMESTAMP
        )

    @pytest.mark.parametrize(
        "secret",
        ["", "s", "x" * 63, "x" * 64, "x" * 65, "y" * 200, "sécret-ünïcode", "秘密"],
        ids=["empty", "one", "63", "64", "65", "200", "latin1", "cjk"],
    )
    def test_secrets_of_every_length_and_script(self, impl, secret):
        signer = impl.Signer(KEY, secret)
        query = signer.sign_query("POST", "/apps/3/events", "", EXAMPLE_BODY, EXAMPLE_TIMESTAMP)
        assert query == reference_query(
            "POST", "/apps/3/events", {}, EXAMPLE_BODY, KEY, secret, EXAMPLE_TIMESTAMP
        )

    @settings(max_examples=80, deadline=None)
    @given(
        method=st.sampled_from(["GET", "POST"]),
        path=st.from_regex(r"\A/apps/[0-9]{1,8}(/channels(/[-a-zA-Z0-9_=@,.;]{1,40})?)?\Z"),
        params=st.dictionaries(
            st.from_regex(r"\A[a-z_]{1,12}\Z").filter(lambda k: k not in _fallback._RESERVED),
            st.from_regex(r"\A[-a-zA-Z0-9_=@,.;]{0,30}\Z"),
            max_size=4,
        ),
        body=st.binary(max_size=300),
        timestamp=st.integers(min_value=0, max_value=2**40),
        secret=st.text(max_size=80),
    )
    def test_matches_the_protocol_for_any_request(
        self, impl, method, path, params, body, timestamp, secret
    ):
        extra = "&".join(f"{k}={params[k]}" for k in sorted(params))
        signer = impl.Signer(KEY, secret)
        query = signer.sign_query(method, path, extra, body, timestamp)
        assert query == reference_query(method, path, params, body, KEY, secret, timestamp)

    @pytest.mark.parametrize(
        "extra",
        [
            "info=x&filter_by_prefix=y",  # out of order
            "info=x&info=y",  # repeated
            "auth_key=x",
            "auth_signature=x",
            "auth_timestamp=1",
            "auth_version=2.0",
            "body_md5=x",
            "a=1&body_md5=x",
            "novalue",  # no '='
            "=v",  # empty key
            "a=1&&b=2",  # empty item
            "a=1&",  # trailing separator
            "&a=1",  # leading separator
        ],
    )
    def test_invalid_extra_is_a_value_error(self, impl, extra):
        signer = impl.Signer(KEY, SECRET)
        with pytest.raises(ValueError):
            signer.sign_query("GET", "/apps/3/channels", extra, b"", EXAMPLE_TIMESTAMP)

    def test_extra_of_every_length_up_to_1200_bytes(self, impl):
        # Crosses any fixed-size output buffer an implementation may keep.
        signer = impl.Signer(KEY, SECRET)
        for size in range(0, 1201, 7):
            params = {"filter_by_prefix": "p" * size, "info": "user_count"}
            extra = "&".join(f"{k}={params[k]}" for k in sorted(params))
            query = signer.sign_query("GET", "/apps/3/channels", extra, b"", 4102444800)
            expected = reference_query(
                "GET", "/apps/3/channels", params, b"", KEY, SECRET, 4102444800
            )
            assert query == expected, size

    def test_keys_of_every_length_and_multibyte_text(self, impl):
        for size in range(0, 301, 13):
            key = "ké" * size
            params = {"a": "ü€", "filter_by_prefix": "x" * size}
            extra = "&".join(f"{k}={params[k]}" for k in sorted(params))
            query = impl.Signer(key, SECRET).sign_query("GET", "/apps/é", extra, b"", 99)
            assert query == reference_query("GET", "/apps/é", params, b"", key, SECRET, 99)

    def test_bytes_like_bodies(self, impl):
        signer = impl.Signer(KEY, SECRET)
        for body in (bytearray(EXAMPLE_BODY), memoryview(EXAMPLE_BODY)):
            query = signer.sign_query("POST", "/apps/3/events", "", body, EXAMPLE_TIMESTAMP)
            assert query == EXAMPLE_QUERY

    @pytest.mark.parametrize(
        "call, fallback_checks",
        [
            pytest.param(lambda m: m.Signer(None, SECRET), False, id="key-None"),
            pytest.param(lambda m: m.Signer(KEY, None), False, id="secret-None"),
            pytest.param(lambda m: _sign(m, body="body"), True, id="str-body"),
            pytest.param(lambda m: _sign(m, timestamp=True), False, id="bool-timestamp"),
            pytest.param(lambda m: _sign(m, timestamp=1.5), False, id="float-timestamp"),
            pytest.param(lambda m: _sign(m, timestamp="1"), False, id="str-timestamp"),
            pytest.param(lambda m: m.Signer(KEY, SECRET).hmac_hex("text"), True, id="str-message"),
            pytest.param(
                lambda m: m.Signer(KEY, SECRET).verify(b"x", b"ab"), False, id="bytes-sig"
            ),
            pytest.param(lambda m: m.Signer(KEY, SECRET).verify(b"x", None), False, id="None-sig"),
        ],
    )
    def test_wrong_argument_types_are_type_errors(self, impl, call, fallback_checks, request):
        with pytest.raises(TypeError):
            call(impl)

    @pytest.mark.parametrize("timestamp", [-1, 2**63, 2**64])
    def test_timestamp_outside_int64_seconds_is_a_value_error(self, impl, timestamp, request):
        with pytest.raises(ValueError):
            impl.Signer(KEY, SECRET).sign_query("GET", "/p", "", b"", timestamp)

    def test_shared_signer_is_thread_safe(self, impl):
        signer = impl.Signer(KEY, SECRET)
        bodies = [f'{{"n":{i},"pad":"{"x" * (i * 37 % 300)}"}}'.encode() for i in range(8)]
        expected = [
            reference_query("POST", "/apps/3/events", {}, b, KEY, SECRET, 1000 + i)
            for i, b in enumerate(bodies)
        ]
        failures: list[str] = []
        barrier = threading.Barrier(8)

        def work(i: int) -> None:
            barrier.wait()
            for _ in range(1500):
                got = signer.sign_query("POST", "/apps/3/events", "", bodies[i], 1000 + i)
                if got != expected[i]:
                    failures.append(got)
                    return

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []


class TestHmacAndMd5:
    @pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 65536])
    def test_hmac_hex_matches_hmac_module(self, impl, size):
        message = bytes((i * 13 + 5) % 256 for i in range(size))
        assert impl.Signer(KEY, SECRET).hmac_hex(message) == hmac_hex(SECRET, message)

    def test_hmac_hex_channel_auth_vector(self, impl):
        signature = impl.Signer(KEY, SECRET).hmac_hex(b"1234.1234:private-foobar")
        assert f"{KEY}:{signature}" == EXAMPLE_CHANNEL_AUTH

    def test_hmac_hex_is_lowercase_hex(self, impl):
        signature = impl.Signer(KEY, SECRET).hmac_hex(b"anything")
        assert len(signature) == 64
        assert signature == signature.lower()
        int(signature, 16)

    def test_signer_reused_for_many_messages_does_not_carry_state(self, impl):
        signer = impl.Signer(KEY, SECRET)
        for message in [b"a", b"b" * 200, b"", b"a"]:
            assert signer.hmac_hex(message) == hmac_hex(SECRET, message)

    @pytest.mark.parametrize(
        "data, digest",
        [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (EXAMPLE_BODY, EXAMPLE_MD5),
        ],
    )
    def test_md5_hex_vectors(self, impl, data, digest):
        assert impl.md5_hex(data) == digest

    @pytest.mark.parametrize("size", [55, 56, 57, 63, 64, 65, 1 << 20])
    def test_md5_hex_across_block_boundaries(self, impl, size):
        data = bytes((i * 31) % 256 for i in range(size))
        assert impl.md5_hex(data) == hashlib.md5(data).hexdigest()


class TestVerify:
    MESSAGE = b'{"time_ms":1,"events":[]}'

    def good(self) -> str:
        return hmac.new(SECRET.encode(), self.MESSAGE, hashlib.sha256).hexdigest()

    def test_correct_signature_verifies(self, impl):
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, self.good()) is True

    def test_upper_case_signature_is_rejected(self, impl):
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, self.good().upper()) is False

    @pytest.mark.parametrize("mangle", ["truncated", "extended", "empty", "doubled"])
    def test_signature_of_another_length_is_rejected(self, impl, mangle):
        good = self.good()
        signature = {
            "truncated": good[:-1],
            "extended": good + "0",
            "empty": "",
            "doubled": good + good,
        }[mangle]
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, signature) is False

    @pytest.mark.parametrize("replacement", ["é", "\u0663", "\x00", "\uff41"])
    def test_non_ascii_signature_is_rejected(self, impl, replacement):
        signature = self.good()[:-1] + replacement
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, signature) is False

    def test_signature_of_another_message_is_rejected(self, impl):
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE + b" ", self.good()) is False

    def test_signature_made_with_another_secret_is_rejected(self, impl):
        other = hmac.new(b"other-secret", self.MESSAGE, hashlib.sha256).hexdigest()
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, other) is False

    def test_one_flipped_hex_digit_is_rejected(self, impl):
        good = self.good()
        flipped = ("1" if good[0] == "0" else "0") + good[1:]
        assert impl.Signer(KEY, SECRET).verify(self.MESSAGE, flipped) is False


# The extension is hidden by an import hook in a fresh interpreter, never deleted.
_HIDE_NATIVE = """
import importlib.abc, sys, warnings

class HideNative(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pusher_fast._native":
            raise ImportError("hidden by the test")
        return None

if HIDE:
    sys.meta_path.insert(0, HideNative())
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    import pusher_fast
    import pusher_fast.client, pusher_fast.bulk, pusher_fast.aio  # no second warning
if BENCH:
    import io
    from pusher_fast import _bench
    out = io.StringIO()
    _bench._cases = lambda: {}
    _bench.run(out)
    print(out.getvalue())
else:
    runtime = [w for w in seen if issubclass(w.category, RuntimeWarning)]
    shown = " ".join(f"{w.category.__name__}: {w.message}" for w in runtime)
    print(f"{pusher_fast.IMPLEMENTATION}|{len(runtime)}|{shown}")
"""


def _run_hiding_native(hide: bool, pure: str | None, bench: bool = False):
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "PUSHER_FAST_PURE"}
    if pure is not None:
        env["PUSHER_FAST_PURE"] = pure
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    code = f"HIDE = {hide!r}\nBENCH = {bench!r}\n" + _HIDE_NATIVE
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=100
    )

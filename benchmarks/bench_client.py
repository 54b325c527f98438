"""Per-call cost of building and signing requests, and of auth and webhooks.

Side by side, for each case: pusher_fast on the native path, pusher_fast on
the pure-Python path, the official ``pusher`` package, and the floor
(``hashlib.md5`` + ``hmac.digest`` on the same bytes).  No network: requests
are built and signed only.

    python -m pytest benchmarks/bench_client.py --benchmark-only \\
        --benchmark-json=out.json && python benchmarks/summarize.py out.json
    python benchmarks/interleaved.py      # the same cases, round-robin (noisy machines)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Callable

import pusher as official_pusher
import pytest

import pusher_fast
from pusher_fast import _signing

KEY, SECRET, APP_ID = "278d425bdf160c739803", "7ad3773142a6692b25b8", "123456"
MASTER = "bm9wZS1ub3BlLW5vcGUtbm9wZS1ub3BlLW5vcGUtMTI="
SMALL = {"message": "x" * 80}  # 100 B of JSON
LARGE = {"message": "y" * 9200}  # 9 KB of JSON
BATCH = [{"channel": f"channel-{i}", "name": "event", "data": SMALL} for i in range(10)]
PRESENCE = {"user_id": "user-42", "user_info": {"name": "Ada Lovelace"}}
USER = {"id": "user-42", "name": "Ada Lovelace"}
IMPLS = ("native", "python", "official", "floor")


def _ours(pure: bool) -> pusher_fast.Pusher:
    client = pusher_fast.Pusher(APP_ID, KEY, SECRET, encryption_master_key_base64=MASTER)
    if pure:
        client._use_signer(_signing.PythonSigner(KEY, SECRET))
    return client


def _client(impl: str) -> Any:
    if impl == "official":
        return official_pusher.Pusher(APP_ID, KEY, SECRET, encryption_master_key_base64=MASTER)
    return _ours(impl == "python")


def _floor_sign(body: bytes, path: bytes) -> Callable[[], str]:
    """md5 of the body, then HMAC of a string-to-sign of the usual size: the bare hashing."""
    secret = SECRET.encode()
    prefix = (
        b"POST\n" + path + b"\nauth_key=" + KEY.encode()
        + b"&auth_timestamp=1353088179&auth_version=1.0&body_md5="
    )  # fmt: skip

    def floor() -> str:
        return hmac.digest(secret, prefix + hashlib.md5(body).hexdigest().encode(), "sha256").hex()

    return floor


def _floor_hmac(message: bytes) -> Callable[[], str]:
    secret = SECRET.encode()
    return lambda: hmac.digest(secret, message, "sha256").hex()


def _trigger(impl: str, data: object) -> Callable[[], Any]:
    if impl == "floor":
        body = json.dumps({"name": "event", "channels": ["channel"], "data": json.dumps(data)})
        return _floor_sign(body.encode(), b"/apps/123456/events")
    if impl == "official":
        make = _client(impl)._pusher_client.trigger.make_request
        return lambda: make("channel", "event", data)
    build = _client(impl)._trigger_request
    return lambda: build("channel", "event", data)


def _batch(impl: str) -> Callable[[], Any]:
    if impl == "floor":
        body = json.dumps({"batch": [dict(e, data=json.dumps(e["data"])) for e in BATCH]})
        return _floor_sign(body.encode(), b"/apps/123456/batch_events")
    if impl == "official":
        make = _client(impl)._pusher_client.trigger_batch.make_request
    else:
        make = _client(impl)._batch_request
    # A fresh list each call: the official library writes the encoded data into its input.
    return lambda: make([dict(e) for e in BATCH])


def _auth(impl: str, channel: str, custom: Any) -> Callable[[], Any]:
    if impl == "floor":
        message = f"1234.5678:{channel}".encode()
        if custom is not None:
            message += b":" + json.dumps(custom).encode()
        return _floor_hmac(message)
    client = _client(impl)
    return lambda: client.authenticate(channel, "1234.5678", custom)


def _user_auth(impl: str) -> Callable[[], Any]:
    if impl == "floor":
        return _floor_hmac(b"1234.5678::user::" + json.dumps(USER).encode())
    client = _client(impl)
    return lambda: client.authenticate_user("1234.5678", USER)


def _webhook(impl: str) -> Callable[[], Any]:
    events = [{"name": "channel_occupied", "channel": f"presence-room-{i}"} for i in range(12)]
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": events})
    body += " " * (1024 - len(body))  # exactly 1 KB
    signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    if impl == "floor":
        secret, raw = SECRET.encode(), body.encode()
        return lambda: (
            hmac.compare_digest(hmac.digest(secret, raw, "sha256").hex(), signature)
            and json.loads(raw)
        )
    client = _client(impl)
    assert client.validate_webhook(KEY, signature, body) is not None
    return lambda: client.validate_webhook(KEY, signature, body)


CASES: dict[str, Callable[[str], Callable[[], Any]]] = {
    "trigger 100 B": lambda impl: _trigger(impl, SMALL),
    "trigger 9 KB": lambda impl: _trigger(impl, LARGE),
    "trigger_batch 10 x 100 B": _batch,
    "authenticate private": lambda impl: _auth(impl, "private-orders", None),
    "authenticate presence": lambda impl: _auth(impl, "presence-room", PRESENCE),
    "authenticate_user": _user_auth,
    "validate_webhook 1 KB": _webhook,
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_case(benchmark: Any, case: str, impl: str) -> None:
    if impl == "native" and _signing.IMPLEMENTATION != "native":
        pytest.skip("native extension not built")
    benchmark.group = case
    benchmark.name = f"{case} [{impl}]"
    benchmark(CASES[case](impl))

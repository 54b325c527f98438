"""Per-call cost of building and signing requests, and of auth and webhooks.

Side by side in one run, for each case: pusher_fast on the native path,
pusher_fast on the pure-Python path, the official ``pusher`` package, and the
floor (``hashlib.md5`` + ``hmac.digest`` on the same bytes).  No network:
requests are built and signed only.

    python -m pytest benchmarks/bench_client.py --benchmark-only \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

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


def _ours(pure: bool) -> pusher_fast.Pusher:
    client = pusher_fast.Pusher(APP_ID, KEY, SECRET, encryption_master_key_base64=MASTER)
    if pure:
        client._signer = _signing.PythonSigner(KEY, SECRET)
    return client


def _webhook_body() -> tuple[str, str]:
    events = [{"name": "channel_occupied", "channel": f"presence-room-{i}"} for i in range(12)]
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": events})
    body += " " * (1024 - len(body))  # exactly 1 KB
    signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return body, signature


IMPLS = ["native", "python", "official", "floor"]


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    if request.param == "native" and _signing.IMPLEMENTATION != "native":
        pytest.skip("native extension not built")
    return str(request.param)


def _trigger_fn(impl: str, data: object):  # type: ignore[no-untyped-def]
    if impl == "floor":
        body = json.dumps(
            {"name": "event", "channels": ["channel"], "data": json.dumps(data)}
        ).encode()
        secret = SECRET.encode()
        prefix = (
            b"POST\n/apps/123456/events\nauth_key="
            + KEY.encode()
            + b"&auth_timestamp=1353088179&auth_version=1.0&body_md5="
        )

        def floor() -> str:
            md5 = hashlib.md5(body).hexdigest()
            return hmac.digest(secret, prefix + md5.encode(), "sha256").hex()

        return floor
    if impl == "official":
        make = official_pusher.Pusher(APP_ID, KEY, SECRET)._pusher_client.trigger.make_request
        return lambda: make("channel", "event", data)
    build = _ours(impl == "python")._trigger_request
    return lambda: build("channel", "event", data)


def test_trigger_100B(benchmark, impl: str) -> None:
    benchmark.group = "trigger 100 B"
    benchmark(_trigger_fn(impl, SMALL))


def test_trigger_9KB(benchmark, impl: str) -> None:
    benchmark.group = "trigger 9 KB"
    benchmark(_trigger_fn(impl, LARGE))


def test_batch_10(benchmark, impl: str) -> None:
    benchmark.group = "trigger_batch 10 x 100 B"
    if impl == "floor":
        body = json.dumps({"batch": [dict(e, data=json.dumps(e["data"])) for e in BATCH]}).encode()
        secret = SECRET.encode()
        benchmark(
            lambda: hmac.digest(
                secret,
                b"POST\n/apps/123456/batch_events\n" + hashlib.md5(body).hexdigest().encode(),
                "sha256",
            ).hex()
        )
    elif impl == "official":
        make = official_pusher.Pusher(APP_ID, KEY, SECRET)._pusher_client.trigger_batch.make_request
        # the official library mutates its input: give it a fresh copy each call
        benchmark(lambda: make([dict(e) for e in BATCH]))
    else:
        build = _ours(impl == "python")._batch_request
        benchmark(lambda: build([dict(e) for e in BATCH]))


def _auth_fn(impl: str, channel: str, custom: object):  # type: ignore[no-untyped-def]
    if impl == "floor":
        secret = SECRET.encode()
        message = f"1234.5678:{channel}".encode()
        if custom is not None:
            message += b":" + json.dumps(custom).encode()
        return lambda: hmac.digest(secret, message, "sha256").hex()
    client = (
        official_pusher.Pusher(APP_ID, KEY, SECRET, encryption_master_key_base64=MASTER)
        if impl == "official"
        else _ours(impl == "python")
    )
    return lambda: client.authenticate(channel, "1234.5678", custom)


def test_authenticate_private(benchmark, impl: str) -> None:
    benchmark.group = "authenticate private"
    benchmark(_auth_fn(impl, "private-orders", None))


def test_authenticate_presence(benchmark, impl: str) -> None:
    benchmark.group = "authenticate presence"
    benchmark(_auth_fn(impl, "presence-room", PRESENCE))


def test_authenticate_user(benchmark, impl: str) -> None:
    benchmark.group = "authenticate_user"
    if impl == "floor":
        secret = SECRET.encode()
        message = b"1234.5678::user::" + json.dumps(USER).encode()
        benchmark(lambda: hmac.digest(secret, message, "sha256").hex())
        return
    client = (
        official_pusher.Pusher(APP_ID, KEY, SECRET)
        if impl == "official"
        else _ours(impl == "python")
    )
    benchmark(lambda: client.authenticate_user("1234.5678", USER))


def test_validate_webhook_1KB(benchmark, impl: str) -> None:
    benchmark.group = "validate_webhook 1 KB"
    body, signature = _webhook_body()
    if impl == "floor":
        secret, raw = SECRET.encode(), body.encode()
        benchmark(
            lambda: (
                hmac.compare_digest(hmac.digest(secret, raw, "sha256").hex(), signature)
                and json.loads(raw)
            )
        )
        return
    client = (
        official_pusher.Pusher(APP_ID, KEY, SECRET)
        if impl == "official"
        else _ours(impl == "python")
    )
    assert client.validate_webhook(KEY, signature, body) is not None
    benchmark(lambda: client.validate_webhook(KEY, signature, body))

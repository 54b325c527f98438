"""``pusher-fast bench``: quick signing micro-benchmarks, side by side in one run.

Medians of repeated timings (µs per call) for this library on the active
signing path and on the pure-Python path, the official ``pusher`` package when
installed, and the floor (``hashlib.md5`` + ``hmac.digest`` on the same bytes).
The pytest-benchmark suite in ``benchmarks/`` is the reference; this is a
quick look on any machine.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import statistics
import time
import timeit
from typing import Any, Callable, TextIO

from . import _signing
from ._auth import Authorizer
from ._crypto import ChannelBoxes
from ._events import EventEncoder, event_settings
from .client import Pusher

KEY, SECRET, APP_ID = "278d425bdf160c739803", "7ad3773142a6692b25b8", "123456"


def _median_us(fn: Callable[[], Any], seconds: float) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    repeats = max(3, int(seconds / max(timer.timeit(number) / number * number, 1e-6)))
    runs = timer.repeat(repeat=min(repeats, 15), number=number)
    return statistics.median(runs) / number * 1e6


def _cases() -> dict[str, dict[str, Callable[[], Any]]]:
    ours = Pusher(APP_ID, KEY, SECRET)
    # The same encoder and authorizer as a client's, on the pure-Python signer.
    pure_signer = _signing.PythonSigner(KEY, SECRET)
    pure_settings = event_settings(
        ours, pure_signer, APP_ID, 30720, 10240, None, ChannelBoxes(None)
    )
    pure_events = EventEncoder(pure_settings)
    pure_auth = Authorizer(pure_signer, KEY, None)
    ours_events = EventEncoder(ours.event_settings)
    data = {"message": "x" * 80}
    secret = SECRET.encode()
    body = b'{"name":"e","channels":["c"],"data":"' + b"x" * 100 + b'"}'
    to_sign = b"POST\n/apps/123456/events\nauth_key=" + KEY.encode() + b"&auth_timestamp=1&" * 3
    cases: dict[str, dict[str, Callable[[], Any]]] = {
        "trigger 100 B (build+sign)": {
            f"pusher_fast ({_signing.IMPLEMENTATION})": lambda: ours_events.trigger("c", "e", data),
            "pusher_fast (python)": lambda: pure_events.trigger("c", "e", data),
            "floor (md5+hmac)": lambda: (
                hashlib.md5(body).hexdigest(),
                hmac.digest(secret, to_sign, "sha256").hex(),
            ),
        },
        "authenticate private": {
            f"pusher_fast ({_signing.IMPLEMENTATION})": lambda: ours.authenticate(
                "private-c", "1234.5678"
            ),
            "pusher_fast (python)": lambda: pure_auth.channel("private-c", "1234.5678"),
            "floor (hmac)": lambda: hmac.digest(secret, b"1234.5678:private-c", "sha256").hex(),
        },
    }
    try:
        import pusher  # the official library, when installed

        official = pusher.Pusher(APP_ID, KEY, SECRET)
        make = official._pusher_client.trigger.make_request
        cases["trigger 100 B (build+sign)"]["official pusher"] = lambda: make("c", "e", data)
        cases["authenticate private"]["official pusher"] = lambda: official.authenticate(
            "private-c", "1234.5678"
        )
    except ImportError:
        pass
    return cases


def _describe_path() -> str:
    if _signing.IMPLEMENTATION == "native":
        return "the C extension"
    if os.environ.get("PUSHER_FAST_PURE") == "1":
        return "pure Python, forced by PUSHER_FAST_PURE=1"
    return "pure Python: the C extension is missing; rebuild with `python build_ffi.py`"


def run(out: TextIO, seconds: float = 0.2) -> None:
    started = time.perf_counter()
    out.write(f"signing path: {_signing.IMPLEMENTATION} ({_describe_path()})\n")
    for title, contenders in _cases().items():
        out.write(f"{title}\n")
        results = {name: _median_us(fn, seconds) for name, fn in contenders.items()}
        fastest = min(results.values())
        for name, us in results.items():
            out.write(f"  {name:28s} {us:8.2f} µs  ({us / fastest:4.1f}x the fastest)\n")
    out.write(f"(medians; {time.perf_counter() - started:.1f} s in all)\n")


# ---- pusher-fast bench --signing ----------------------------------------------------

SIGNING_COLUMNS = ("pusher_fast", "hashlib/hmac", "official")


def _signing_cases() -> dict[str, dict[str, Callable[[], Any]]]:
    """Per case: this library (active path), the bare standard-library hashing
    of the same bytes, and the official library when installed."""
    import json

    ours = Pusher(APP_ID, KEY, SECRET)
    encoder = EventEncoder(ours.event_settings)  # what trigger/trigger_batch build requests with
    secret = SECRET.encode()
    small = {"message": "x" * 80}  # 100 B of JSON
    large = {"message": "y" * 9200}  # 9 KB of JSON
    batch = [{"channel": f"channel-{i}", "name": "event", "data": small} for i in range(10)]
    presence = {"user_id": "user-42", "user_info": {"name": "Ada Lovelace"}}
    events = [{"name": "channel_occupied", "channel": f"presence-room-{i}"} for i in range(12)]
    hook = json.dumps({"time_ms": int(time.time() * 1000), "events": events})
    hook += " " * (1024 - len(hook))  # 1 KB
    hook_sig = hmac.new(secret, hook.encode(), hashlib.sha256).hexdigest()

    def floor_sign(body: bytes, path: bytes) -> Callable[[], Any]:
        head = b"POST\n" + path + b"\nauth_key=" + KEY.encode()
        head += b"&auth_timestamp=1353088179&auth_version=1.0&body_md5="
        return lambda: hmac.digest(
            secret, head + hashlib.md5(body).hexdigest().encode(), "sha256"
        ).hex()

    def floor_hmac(message: bytes) -> Callable[[], Any]:
        return lambda: hmac.digest(secret, message, "sha256").hex()

    def trigger_body(data: Any) -> bytes:
        return json.dumps({"name": "event", "channels": ["channel"], "data": json.dumps(data)})\
            .encode()  # fmt: skip

    batch_body = json.dumps({"batch": [dict(e, data=json.dumps(e["data"])) for e in batch]})
    raw_hook = hook.encode()
    cases: dict[str, dict[str, Callable[[], Any]]] = {
        "trigger 100 B": {
            "pusher_fast": lambda: encoder.trigger("channel", "event", small),
            "hashlib/hmac": floor_sign(trigger_body(small), b"/apps/123456/events"),
        },
        "trigger 9 KB": {
            "pusher_fast": lambda: encoder.trigger("channel", "event", large),
            "hashlib/hmac": floor_sign(trigger_body(large), b"/apps/123456/events"),
        },
        "trigger_batch 10 x 100 B": {
            "pusher_fast": lambda: encoder.batch([dict(e) for e in batch]),
            "hashlib/hmac": floor_sign(batch_body.encode(), b"/apps/123456/batch_events"),
        },
        "authenticate private": {
            "pusher_fast": lambda: ours.authenticate("private-orders", "1234.5678"),
            "hashlib/hmac": floor_hmac(b"1234.5678:private-orders"),
        },
        "authenticate presence": {
            "pusher_fast": lambda: ours.authenticate("presence-room", "1234.5678", presence),
            "hashlib/hmac": floor_hmac(b"1234.5678:presence-room:" + json.dumps(presence).encode()),
        },
        "validate_webhook 1 KB": {
            "pusher_fast": lambda: ours.validate_webhook(KEY, hook_sig, hook),
            "hashlib/hmac": lambda: (
                hmac.compare_digest(hmac.digest(secret, raw_hook, "sha256").hex(), hook_sig)
                and json.loads(raw_hook)
            ),
        },
    }
    _add_official(cases, small, large, batch, presence, hook, hook_sig)
    return cases


def _add_official(
    cases: dict[str, dict[str, Callable[[], Any]]],
    small: Any,
    large: Any,
    batch: list[dict[str, Any]],
    presence: dict[str, Any],
    hook: str,
    hook_sig: str,
) -> None:
    """The official library's contender for each case, when it is installed."""
    try:
        import pusher  # the official library, when installed
    except ImportError:
        return
    official = pusher.Pusher(APP_ID, KEY, SECRET)
    trigger = official._pusher_client.trigger.make_request
    trigger_batch = official._pusher_client.trigger_batch.make_request
    cases["trigger 100 B"]["official"] = lambda: trigger("channel", "event", small)
    cases["trigger 9 KB"]["official"] = lambda: trigger("channel", "event", large)
    # A fresh list each call: the official library writes the encoded data into its input.
    cases["trigger_batch 10 x 100 B"]["official"] = lambda: trigger_batch([dict(e) for e in batch])
    cases["authenticate private"]["official"] = lambda: official.authenticate(
        "private-orders", "1234.5678"
    )
    cases["authenticate presence"]["official"] = lambda: official.authenticate(
        "presence-room", "1234.5678", presence
    )
    cases["validate_webhook 1 KB"]["official"] = lambda: official.validate_webhook(
        KEY, hook_sig, hook
    )


def _median_seconds(fn: Callable[[], Any], seconds: float) -> float:
    """Median time per call over five runs that take about ``seconds`` in all."""
    timer = timeit.Timer(fn)
    number = 1
    while number < 1 << 20:
        if timer.timeit(number) >= seconds / 10:
            break
        number *= 4
    runs = timer.repeat(repeat=5, number=number)
    return statistics.median(runs) / number


def run_signing(out: TextIO, seconds: float = 0.2) -> None:
    """Signed requests per second on one core, as a Markdown table."""
    import platform

    started = time.perf_counter()
    out.write(
        f"pusher_fast {_signing.IMPLEMENTATION} path, HMAC by {_signing.HASHING}; "
        f"{platform.machine()}, Python {platform.python_version()}; "
        "signed requests per second on one core (medians)\n\n"
    )
    out.write("| case | pusher_fast | hashlib/hmac | official | vs official | vs hashlib/hmac |\n")
    out.write("|---|---|---|---|---|---|\n")
    for title, contenders in _signing_cases().items():
        rate = {name: 1 / _median_seconds(fn, seconds) for name, fn in contenders.items()}
        cells = [f"{rate[c]:,.0f}" if c in rate else "-" for c in SIGNING_COLUMNS]
        ours = rate["pusher_fast"]
        vs_official = f"{ours / rate['official']:.1f}x" if "official" in rate else "-"
        vs_floor = f"{ours / rate['hashlib/hmac']:.2f}x"
        out.write(f"| {title} | " + " | ".join(cells) + f" | {vs_official} | {vs_floor} |\n")
    out.write(f"\n({time.perf_counter() - started:.1f} s in all)\n")

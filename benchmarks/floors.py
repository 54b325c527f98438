"""What issue 14's per-call targets leave for Python: each target's time budget beside the parts
of the call that no Python code around them can remove.

For every case the official library's call is timed round-robin with the parts (medians over
``--rounds``), and the budget is the official time divided by the target ratio.  The parts:

- the one C call alone (``pf_event_sign`` for a trigger: framing, clock, MD5 of the body, HMAC;
  ``pf_channel_auth``; ``pf_hmac_verify``), called straight from Python with its arguments and
  buffers ready, as cheap as a cffi call gets;
- the JSON work the API's contract requires (``orjson.dumps`` of the data, ``orjson.loads`` of a
  webhook's payload: ``validate_webhook`` returns the parsed payload);
- the request object ``trigger`` hands to the transport.

"room" is the budget minus those parts: what is left for everything else (the method calls,
validation, buffer handling, the result's ``str``/``bytes``).  Negative means the target cannot
be met by any Python around that C call.  Native path only.

    python benchmarks/floors.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
import timeit
from typing import Any, Callable

import orjson
import pusher as official_pusher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_client import APP_ID, KEY, LARGE, PRESENCE, SECRET, SMALL

import pusher_fast
from pusher_fast import _signing
from pusher_fast._request import Request

TARGETS = {  # issue 14: at least this many times the official library
    "trigger 100 B": 10.0,
    "trigger 9 KB": 5.0,
    "authenticate private": 5.0,
    "authenticate presence": 4.0,
    "validate_webhook 1 KB": 3.0,
}


def _native() -> Any:
    from pusher_fast import _native

    return _native


def _event_call(data: Any) -> dict[str, Callable[[], Any]]:
    """The trigger's parts: orjson, the raw ``pf_event_sign`` call, the Request object."""
    native = _native()
    ffi, lib = native.ffi, native.lib
    client = pusher_fast.Pusher(APP_ID, KEY, SECRET)
    client._use_signer(_signing.Signer(KEY, SECRET))
    ctx = ffi.new("pf_hmac_ctx *")
    lib.pf_hmac_init(ctx, SECRET.encode(), len(SECRET))
    ep = ffi.new("pf_endpoint *")
    method, path, key = b"POST", b"/apps/123456/events", KEY.encode()
    lib.pf_endpoint_init(ep, ctx, method, len(method), path, len(path), key, len(key))
    prefix = b'{"name":"event","channels":["channel"],"data":'
    text = orjson.dumps(data)
    body_buf = bytearray(len(prefix) + 2 * len(text) + 3)
    query_size = lib.pf_sign_query_size(len(key), int(time.time()), 0)
    query_buf = bytearray(query_size)
    body_ptr, query_ptr = ffi.from_buffer(body_buf), ffi.from_buffer(query_buf)
    args = (ep, -1, 1, prefix, len(prefix), text, len(text), body_ptr, len(body_buf))
    assert lib.pf_event_sign(*args, query_ptr, query_size) > 0
    body, query = client._trigger_request("channel", "event", data).body, "q" * query_size
    return {
        "orjson.dumps": lambda: orjson.dumps(data),
        "C call": lambda: lib.pf_event_sign(*args, query_ptr, query_size),
        "Request()": lambda: Request(client, "POST", "/apps/123456/events", None, body, query),
    }


def _official_trigger(data: Any) -> Callable[[], Any]:
    make = official_pusher.Pusher(APP_ID, KEY, SECRET)._pusher_client.trigger.make_request
    return lambda: make("channel", "event", data)


def _auth_parts(channel: str, custom: Any) -> dict[str, Callable[[], Any]]:
    native = _native()
    ffi, lib = native.ffi, native.lib
    ctx = ffi.new("pf_hmac_ctx *")
    lib.pf_hmac_init(ctx, SECRET.encode(), len(SECRET))
    key, sid, ch = KEY.encode(), b"1234.5678", channel.encode()
    out = bytearray(len(key) + 65)
    out_ptr = ffi.from_buffer(out)
    data = orjson.dumps(custom) if custom is not None else b""
    args = (ctx, key, len(key), sid, len(sid), ch, len(ch), data, len(data), out_ptr, len(out))
    assert lib.pf_channel_auth(*args) == len(out)
    parts: dict[str, Callable[[], Any]] = {"C call": lambda: lib.pf_channel_auth(*args)}
    if custom is not None:
        parts["orjson.dumps"] = lambda: orjson.dumps(custom)
    return parts


def _official_auth(channel: str, custom: Any) -> Callable[[], Any]:
    client = official_pusher.Pusher(APP_ID, KEY, SECRET)
    return lambda: client.authenticate(channel, "1234.5678", custom)


def _webhook_body() -> tuple[bytes, str]:
    # The webhook of bench_client.py: 12 events, padded to exactly 1 KB.
    events = [{"name": "channel_occupied", "channel": f"presence-room-{i}"} for i in range(12)]
    body = json.dumps({"time_ms": int(time.time() * 1000), "events": events})
    body += " " * (1024 - len(body))
    return body.encode(), hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()


def _webhook_parts() -> dict[str, Callable[[], Any]]:
    native = _native()
    ffi, lib = native.ffi, native.lib
    ctx = ffi.new("pf_hmac_ctx *")
    lib.pf_hmac_init(ctx, SECRET.encode(), len(SECRET))
    raw, signature = _webhook_body()
    sig = signature.encode()
    assert lib.pf_hmac_verify(ctx, raw, len(raw), sig, len(sig)) == 1
    return {
        "C call": lambda: lib.pf_hmac_verify(ctx, raw, len(raw), sig, len(sig)),
        "orjson.loads": lambda: orjson.loads(raw),
    }


def _official_webhook() -> Callable[[], Any]:
    client = official_pusher.Pusher(APP_ID, KEY, SECRET)
    raw, signature = _webhook_body()
    body = raw.decode()
    assert client.validate_webhook(KEY, signature, body) is not None
    return lambda: client.validate_webhook(KEY, signature, body)


CASES: dict[str, Callable[[], tuple[Callable[[], Any], dict[str, Callable[[], Any]]]]] = {
    "trigger 100 B": lambda: (_official_trigger(SMALL), _event_call(SMALL)),
    "trigger 9 KB": lambda: (_official_trigger(LARGE), _event_call(LARGE)),
    "authenticate private": lambda: (
        _official_auth("private-orders", None),
        _auth_parts("private-orders", None),
    ),
    "authenticate presence": lambda: (
        _official_auth("presence-room", PRESENCE),
        _auth_parts("presence-room", PRESENCE),
    ),
    "validate_webhook 1 KB": lambda: (_official_webhook(), _webhook_parts()),
}


def _medians(fns: dict[str, Callable[[], Any]], rounds: int, seconds: float) -> dict[str, float]:
    numbers = {}
    for name, fn in fns.items():
        count, _ = timeit.Timer(fn).autorange()
        numbers[name] = max(1, int(count * seconds / 0.2))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = numbers[name]
            samples[name].append(timeit.timeit(fn, number=n) / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=0.02, help="per part per round")
    args = parser.parse_args()
    if _signing.IMPLEMENTATION != "native":
        raise SystemExit("the native extension is not active: nothing to measure")
    print(f"{args.rounds} rounds, medians in µs, native hashing: {pusher_fast.HASHING}")
    print()
    print("| case | official | target | budget | parts that stay | sum | room |")
    print("|---|---|---|---|---|---|---|")
    for case, make in CASES.items():
        official, parts = make()
        med = _medians({"official": official, **parts}, args.rounds, args.seconds)
        budget = med["official"] / TARGETS[case]
        fixed = sum(med[name] for name in parts)
        listed = ", ".join(f"{name} {med[name]:.2f}" for name in parts)
        print(
            f"| {case} | {med['official']:.2f} | {TARGETS[case]:.0f}x | {budget:.2f} "
            f"| {listed} | {fixed:.2f} | {budget - fixed:+.2f} |"
        )


if __name__ == "__main__":
    main()

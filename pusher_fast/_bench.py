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

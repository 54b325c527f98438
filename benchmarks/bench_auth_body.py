"""Channel authorization from the raw posted body vs ``authenticate`` on the same values.

``authorize_channel_from_body`` parses what pusher-js posted, then signs; the
target is at most 1.5x ``authenticate``.  Timed round-robin (medians over
many rounds) in CPU time of this process (``time.process_time``), so the load
of a shared machine skews the ratio as little as possible; ``--wall`` uses
wall-clock time instead.

    PYTHONPATH=. python benchmarks/bench_auth_body.py [--rounds 25] [--seconds 0.02]
    PUSHER_FAST_PURE=1 PYTHONPATH=. python benchmarks/bench_auth_body.py  # pure-Python path
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import time
import timeit
import urllib.parse
from typing import Any, Callable

import pusher_fast

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET_ID = "1234.1234"
MASTER = base64.b64encode(bytes(range(32))).decode()


def form(channel: str, **extra: str) -> bytes:
    # pusher-js's order: socket_id, channel_name, then the configured params.
    fields = {"socket_id": SOCKET_ID, "channel_name": channel, **extra}
    return urllib.parse.urlencode(fields).encode()


def cases(client: Any) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    presence = {"user_id": "u-1", "user_info": {"name": "Ann"}}
    out: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}

    def add(name: str, channel: str, body: bytes | str, custom: Any = None) -> None:
        expected = client.authenticate(channel, SOCKET_ID, custom)
        assert client.authorize_channel_from_body(body, custom) == expected
        out[name] = (
            lambda: client.authenticate(channel, SOCKET_ID, custom),
            lambda: client.authorize_channel_from_body(body, custom),
        )

    add("private, form", "private-orders", form("private-orders"))
    add("private, form + params", "private-orders", form("private-orders", user_id="u-1"))
    add("private, JSON", "private-orders", json.dumps(
        {"socket_id": SOCKET_ID, "channel_name": "private-orders"}).encode())  # fmt: skip
    add("presence, form", "presence-room", form("presence-room"), presence)
    add("private-encrypted, form", "private-encrypted-x", form("private-encrypted-x"))
    add("channel with @ (escaped), form", "private-a@b", form("private-a@b"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=0.02, help="per contender per round")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not CPU time")
    args = parser.parse_args()
    timer = time.perf_counter if args.wall else time.process_time
    client = pusher_fast.Pusher(
        app_id="1", key=KEY, secret=SECRET, encryption_master_key_base64=MASTER
    )
    print(f"{platform.machine()}, Python {platform.python_version()}, signing path "
          f"{pusher_fast.IMPLEMENTATION}, {args.rounds} rounds, medians in µs of "
          f"{'wall-clock' if args.wall else 'CPU'} time")  # fmt: skip
    print()
    print("| case | authenticate | from body | ratio |")
    print("|---|---|---|---|")
    for name, (plain, from_body) in cases(client).items():
        fns = [plain, from_body]
        numbers = []
        for fn in fns:
            count, _ = timeit.Timer(fn, timer=timer).autorange()
            numbers.append(max(1, int(count * args.seconds / 0.2)))
        samples: list[list[float]] = [[], []]
        for _ in range(args.rounds):
            for i, fn in enumerate(fns):
                elapsed = timeit.Timer(fn, timer=timer).timeit(number=numbers[i])
                samples[i].append(elapsed / numbers[i] * 1e6)
        a, b = (statistics.median(s) for s in samples)
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()

"""How many requests a second the local Pusher API (pusher_fast.testing) answers.

The claim under test: one client on one keep-alive connection gets at least 3,000 requests/s
from ``PusherServer`` (a small signed ``POST /apps/{id}/events`` each, every request fully
checked: signature, timestamp, body MD5, limits, then recorded).

Clients, each sending N requests one after another on one keep-alive connection:

- ``raw``: pre-built, pre-signed request bytes written to a socket, responses read back
  (the cheapest client there is: measures the server);
- ``urllib3``: ``HTTPConnectionPool.urlopen`` with pre-signed requests (a typical Python client);
- ``pusher_fast``: ``pusher_fast.Pusher(...).trigger(...)`` (signing included).

and two placements of the server: ``thread`` (in the benchmark's process, as in a test suite:
client and server share one GIL) and ``process`` (``pusher-fast serve`` in a child process).

    python benchmarks/bench_testing_server.py                 # all, 5,000 requests each
    python benchmarks/bench_testing_server.py -n 20000 --client raw --server process

Not a unit test: numbers depend on the machine; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pusher_fast._signing import IMPLEMENTATION, Signer  # noqa: E402
from pusher_fast.testing import (  # noqa: E402
    DEFAULT_APP_ID,
    DEFAULT_KEY,
    DEFAULT_SECRET,
    PusherServer,
)

MAX_REQUESTS = 200_000
TIME_LIMIT_S = 60.0
TARGET = 3000


@contextmanager
def server_in_thread() -> Iterator[tuple[int, Callable[[], int]]]:
    with PusherServer(max_recorded=MAX_REQUESTS) as server:
        yield server.port, lambda: len(server.events)


@contextmanager
def server_in_process() -> Iterator[tuple[int, Callable[[], int]]]:
    code = "import sys; from pusher_fast.testing._cli import serve; sys.exit(serve(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PUSHER_URL="):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
        yield port, lambda: -1  # events are counted in the child
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def presigned(n: int) -> list[tuple[str, bytes]]:
    """``n`` distinct signed trigger requests (target, body); signing is not timed."""
    signer = Signer(DEFAULT_KEY, DEFAULT_SECRET)
    path = f"/apps/{DEFAULT_APP_ID}/events"
    now = int(time.time())
    out = []
    for i in range(n):
        body = json.dumps(
            {"name": "order-created", "channels": ["orders"], "data": json.dumps({"id": i})},
            separators=(",", ":"),
        ).encode()
        out.append((path + "?" + signer.sign_query("POST", path, "", body, now), body))
    return out


def run_raw(port: int, requests: list[tuple[str, bytes]]) -> list[float]:
    wire = [
        (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for target, body in requests
    ]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies = []
    buf = b""
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        for data in wire:
            t0 = time.perf_counter()
            sock.sendall(data)
            while True:  # one response: headers, then Content-Length bytes
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    head = buf[:end].lower()
                    i = head.find(b"content-length:")
                    length = int(head[i + 15 :].split(b"\r\n", 1)[0]) if i >= 0 else 0
                    if len(buf) >= end + 4 + length:
                        if not buf.startswith(b"HTTP/1.1 200"):
                            raise RuntimeError(buf[:200])
                        buf = buf[end + 4 + length :]
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed")
                buf += chunk
            latencies.append(time.perf_counter() - t0)
            if time.monotonic() > deadline:
                break
    finally:
        sock.close()
    return latencies


def run_urllib3(port: int, requests: list[tuple[str, bytes]]) -> list[float]:
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, retries=False)
    headers = {"Content-Type": "application/json"}
    latencies = []
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        for target, body in requests:
            t0 = time.perf_counter()
            r = pool.urlopen("POST", target, body=body, headers=headers)
            if r.status != 200:
                raise RuntimeError(r.data[:200])
            latencies.append(time.perf_counter() - t0)
            if time.monotonic() > deadline:
                break
    finally:
        pool.close()
    return latencies


def run_pusher_fast(port: int, n: int) -> list[float]:
    import pusher_fast

    client: Any = pusher_fast.Pusher(
        app_id=DEFAULT_APP_ID,
        key=DEFAULT_KEY,
        secret=DEFAULT_SECRET,
        host="127.0.0.1",
        port=port,
        ssl=False,
    )
    latencies = []
    deadline = time.monotonic() + TIME_LIMIT_S
    for i in range(n):
        t0 = time.perf_counter()
        client.trigger("orders", "order-created", {"id": i})
        latencies.append(time.perf_counter() - t0)
        if time.monotonic() > deadline:
            break
    return latencies


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=5000)
    parser.add_argument("--client", choices=("raw", "urllib3", "pusher_fast", "all"), default="all")
    parser.add_argument("--server", choices=("thread", "process", "all"), default="all")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() for this process (diagnostic: with the server in a "
        "thread, client and server hand the GIL back and forth and some requests wait a "
        "whole switch interval, 5 ms by default)",
    )
    args = parser.parse_args(argv)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    n = max(1, min(args.requests, MAX_REQUESTS))
    clients = ["raw", "urllib3", "pusher_fast"] if args.client == "all" else [args.client]
    servers = ["thread", "process"] if args.server == "all" else [args.server]
    requests = presigned(n)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, signing: {IMPLEMENTATION}; "
        f"{n} requests per run, one keep-alive connection, target {TARGET:,} requests/s, "
        f"GIL switch interval {sys.getswitchinterval() * 1e3:g} ms"
    )
    print(f"{'server':8} {'client':12} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    raw_rates: dict[str, float] = {}
    for where in servers:
        for which in clients:
            ctx = server_in_thread() if where == "thread" else server_in_process()
            with ctx as (port, recorded):
                # warm up: connection, caches, first-call costs
                run_raw(port, requests[:50])
                started = time.perf_counter()
                if which == "raw":
                    lat = run_raw(port, requests)
                elif which == "urllib3":
                    lat = run_urllib3(port, requests)
                else:
                    try:
                        lat = run_pusher_fast(port, n)
                    except (ImportError, AttributeError) as e:
                        print(f"{where:8} {which:12} skipped: {e}")
                        continue
                elapsed = time.perf_counter() - started
                got = recorded()
                if got not in (-1, len(lat) + 50):
                    raise RuntimeError(f"server recorded {got} events, expected {len(lat) + 50}")
            rate = len(lat) / elapsed
            lat.sort()
            p50 = statistics.median(lat) * 1e3
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
            print(f"{where:8} {which:12} {len(lat):8} {rate:8,.0f} {p50:7.3f} {p99:7.3f}")
            if which == "raw":
                raw_rates[where] = rate
    for where, rate in raw_rates.items():
        verdict = "meets" if rate >= TARGET else "does NOT meet"
        print(
            f"server in a {where}, raw client: {rate:,.0f} requests/s {verdict} "
            f"the {TARGET:,}/s target"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The sync transports side by side: urllib3 (``Urllib3Backend``), the default transport
(``HTTPClientBackend``, labelled "default": sockets and httptools) and the official library's
``requests`` backend.

    /tmp/venv/bin/python benchmarks/bench_transport.py [--seconds 1.0] [--reps 5] [--pin]

One null server (``benchmarks/null_server.js``: uWebSockets.js on 127.0.0.1 answering 200 ``{}``
with keep-alive) for everything, repetitions interleaved (A B C, A B C, ...) so that drift on a
shared machine hits every contender alike; the table shows medians over ``--reps``.  CPU is the
client process's CPU time per HTTP request (threads included), so the server's share is not in it.

Measured:
  single     ``trigger`` in a loop: the official client (requests), pusher_fast on urllib3, on
             the default transport
  transport  one prebuilt, signed request sent again and again through each backend's
             ``send_request`` (the official ``pusher.requests.RequestsBackend`` sends our request
             objects too): the transport alone; plus a bare keep-alive socket (diag.) as the floor
  bulk       the ``BulkSender`` (concurrency 4, batches of 10) on urllib3 and on the default
             transport

``--pin`` puts the null server on the last CPU and this process on the first (Linux), which takes
much of the noise out of the CPU column on a small shared machine.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import pusher  # noqa: E402
import pusher.requests  # noqa: E402
from bench_throughput import DATA, NullServer, RawHTTP, kwargs_for, timed_loop  # noqa: E402

import pusher_fast  # noqa: E402
from pusher_fast.transports import HTTPClientBackend, Urllib3Backend  # noqa: E402

Result = dict[str, float]  # events, requests, seconds, cpu_s

SINGLE_OFFICIAL = "single  official (requests)"
SINGLE_URLLIB3 = "single  pusher_fast urllib3"
SINGLE_HTTPCLIENT = "single  pusher_fast default"
T_OFFICIAL = "transport official RequestsBackend"
T_URLLIB3 = "transport Urllib3Backend"
T_HTTPCLIENT = "transport HTTPClientBackend"
T_RAW = "transport bare socket (diag.)"
BULK_URLLIB3 = "bulk c=4 urllib3"
BULK_HTTPCLIENT = "bulk c=4 default"


def single(client: Any, seconds: float) -> Result:
    def step() -> int:
        client.trigger("bench", "ev", DATA)
        return 1

    return timed_loop(step, seconds)


def transport(send: Callable[[Any], Any], request: Any, seconds: float) -> Result:
    def step() -> int:
        send(request)
        return 1

    return timed_loop(step, seconds)


def bare_socket(client: Any, request: Any, seconds: float) -> Result:
    raw = RawHTTP(client)  # a new one each time: the server closes idle connections
    try:
        return transport(raw.send, request, seconds)
    finally:
        raw.sock.close()


def bulk(port: int, backend: Any, seconds: float, concurrency: int = 4) -> Result:
    client = pusher_fast.Pusher(**kwargs_for(port), backend=backend)
    with client.bulk(concurrency=concurrency, max_queue=400) as warm:  # connections up, code warm
        for _ in range(200):
            warm.add("bench", "ev", DATA)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + seconds
    sender = client.bulk(concurrency=concurrency, max_queue=2000)
    n = 0
    while time.perf_counter() < end:
        for _ in range(100):
            sender.add("bench", "ev", DATA)
        n += 100
    report = sender.close()
    elapsed = time.perf_counter() - t0
    client.http.close()
    assert report.ok and report.delivered == n, report.as_dict()
    return {"events": n, "requests": report.requests, "seconds": elapsed,
            "cpu_s": time.process_time() - cpu0}  # fmt: skip


def pin(server: NullServer) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    os.sched_setaffinity(server.proc.pid, {cpus[-1]})
    os.sched_setaffinity(0, {cpus[0]})
    return f"pinned: server on CPU {cpus[-1]}, client on CPU {cpus[0]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each measurement")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (median reported)")
    parser.add_argument("--pin", action="store_true", help="pin server and client to CPUs")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args()
    secs, reps = args.seconds, max(1, args.reps)

    server = NullServer()
    results: dict[str, list[Result]] = {}
    try:
        port = server.port
        pinning = pin(server) if args.pin else "not pinned"
        official = pusher.Pusher(**kwargs_for(port))
        on_urllib3 = pusher_fast.Pusher(**kwargs_for(port), backend=Urllib3Backend)
        on_httpclient = pusher_fast.Pusher(**kwargs_for(port), backend=HTTPClientBackend)
        request = on_httpclient._trigger_request("bench", "ev", DATA)
        requests_backend = pusher.requests.RequestsBackend(on_httpclient)
        cases: list[tuple[str, Callable[[], Result]]] = [
            (SINGLE_OFFICIAL, lambda: single(official, secs)),
            (SINGLE_URLLIB3, lambda: single(on_urllib3, secs)),
            (SINGLE_HTTPCLIENT, lambda: single(on_httpclient, secs)),
            (T_OFFICIAL, lambda: transport(requests_backend.send_request, request, secs)),
            (T_URLLIB3, lambda: transport(on_urllib3.http.send_request, request, secs)),
            (T_HTTPCLIENT, lambda: transport(on_httpclient.http.send_request, request, secs)),
            (T_RAW, lambda: bare_socket(on_httpclient, request, secs)),
            (BULK_URLLIB3, lambda: bulk(port, Urllib3Backend, secs)),
            (BULK_HTTPCLIENT, lambda: bulk(port, HTTPClientBackend, secs)),
        ]
        for rep in range(reps):
            for name, run in cases:
                results.setdefault(name, []).append(run())
            print(f"  rep {rep + 1}/{reps} done", file=sys.stderr)
        resends = on_httpclient.http.stale_resends
        opened = on_httpclient.http.connections_opened
    finally:
        server.stop()

    def med(name: str, f: Callable[[Result], float]) -> float:
        return statistics.median(f(r) for r in results[name])

    def events_s(r: Result) -> float:
        return r["events"] / r["seconds"]

    def requests_s(r: Result) -> float:
        return r["requests"] / r["seconds"]

    def cpu_us(r: Result) -> float:
        return r["cpu_s"] / r["requests"] * 1e6

    print()
    print(
        f"pusher_fast {pusher_fast.__version__} (signing: {pusher_fast.IMPLEMENTATION}), "
        f"official pusher {importlib.metadata.version('pusher')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, {pinning}"
    )
    print(f"median of {reps} x {secs:.1f}s; CPU = client process CPU per HTTP request")
    print()
    print(f"{'measurement':36} {'events/s':>9} {'req/s':>8} {'CPU µs/req':>11}  (CPU min-max)")
    print("-" * 84)
    for name in results:
        cpus = [cpu_us(r) for r in results[name]]
        print(
            f"{name:36} {med(name, events_s):9.0f} {med(name, requests_s):8.0f} "
            f"{med(name, cpu_us):11.1f}  ({min(cpus):.0f}-{max(cpus):.0f})"
        )
    print(
        f"(default transport, single client: {opened} connection(s) opened, "
        f"{resends} stale resends)"
    )
    print()

    def ratio(a: str, b: str) -> float:
        return med(a, events_s) / med(b, events_s)

    checks: list[tuple[str, float, str]] = [
        ("single: default / official", ratio(SINGLE_HTTPCLIENT, SINGLE_OFFICIAL), ">=5x"),
        ("single: urllib3 / official", ratio(SINGLE_URLLIB3, SINGLE_OFFICIAL), ">=5x"),
        ("single: default / urllib3", ratio(SINGLE_HTTPCLIENT, SINGLE_URLLIB3), ""),
        ("transport: default / urllib3", ratio(T_HTTPCLIENT, T_URLLIB3), ""),
        ("transport: default / requests", ratio(T_HTTPCLIENT, T_OFFICIAL), ""),
        ("bulk default / official single", ratio(BULK_HTTPCLIENT, SINGLE_OFFICIAL), ">=40x"),
        ("bulk urllib3 / official single", ratio(BULK_URLLIB3, SINGLE_OFFICIAL), ">=40x"),
    ]
    print(f"{'ratio (events/s)':40} {'value':>7} {'target':>7}  verdict")
    print("-" * 66)
    for label, value, target in checks:
        verdict = ""
        if target:
            verdict = "MET" if value >= float(target.strip(">=x")) else "MISSED"
        print(f"{label:40} {value:6.2f}x {target:>7}  {verdict}")
    single_cpu = med(SINGLE_HTTPCLIENT, cpu_us)
    verdict = "MET" if single_cpu <= 150 else "MISSED"
    print(f"{'single default CPU µs/request':40} {single_cpu:7.1f} {'<=150':>7}  {verdict}")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

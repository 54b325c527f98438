"""Throughput of pusher_fast vs the official Python ``pusher`` and the official Node ``pusher``.

    /tmp/venv/bin/python benchmarks/bench_throughput.py [--seconds 1.0] [--reps 3] [--no-soketi]

Everything runs in one go against one null server (``benchmarks/null_server.js``: uWebSockets.js
on 127.0.0.1 answering 200 ``{}`` with keep-alive), the repetitions interleaved (A B C, A B C, ...)
so that drift on a shared machine hits every contender alike.  Each measurement is a loop bounded
by ``--seconds``; the table shows medians over ``--reps``.

Measured (events/s; CPU µs per HTTP request of the whole Python process, worker threads included):
  (a) single ``trigger`` in a loop: pusher_fast, official Python, official Node (keep-alive Agent)
  (b) ``trigger_batch`` of 10 in a loop: the same three
  (c) pusher_fast ``BulkSender`` (concurrency 4, batches of 10) vs (a) official Python and the
      Node ``triggerBatch`` loop of (b); ``AsyncBulkSender`` (concurrency 8) beside it
  (d) 100 concurrent triggers (``asyncio.gather``): ``AsyncPusher`` (its default asyncio
      transport, and on aiohttp with ``backend=AsyncIOBackend``) vs the official
      ``pusher.aiohttp.AsyncIOBackend``
  plus single ``trigger`` loops against soketi for both Python libraries (soketi closes the
  connection after every response: no keep-alive there).

Rows marked ``(diag.)`` are diagnostics, not contenders: pusher_fast's request building over a
bare keep-alive socket (sync, and asyncio streams), the bulk sender with one worker, to show
how much of the time is the HTTP transport.

Optional Go contender: the official Go library, pusher-http-go v5, driven by our
``benchmarks/go_contender/main.go`` in (a) a ``Trigger`` loop, (b) a ``TriggerBatch`` loop and
(c) 4 goroutines each looping ``TriggerBatch`` of 10 (``--go-goroutines``), one shared client.
Its source is not part of this repository: pass a checkout with ``PUSHER_HTTP_GO_SRC=DIR`` or
``--go-src DIR``.  The driver is built offline (GOPATH mode, golang.org/x/crypto from Debian's
/usr/share/gocode) and cached under the temp dir; without ``go`` or the source the Go rows are
skipped with a one-line note.  Setup on Debian/Ubuntu, in one command:

    apt-get install -y golang-go golang-golang-x-crypto-dev && git clone --depth 1 \
        https://github.com/pusher/pusher-http-go /tmp/pusher-http-go

then ``PUSHER_HTTP_GO_SRC=/tmp/pusher-http-go python benchmarks/bench_throughput.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pusher  # noqa: E402
import pusher.aiohttp  # noqa: E402

import pusher_fast  # noqa: E402
from pusher_fast.aio import AsyncPusher  # noqa: E402
from pusher_fast.aiohttp import AsyncIOBackend  # noqa: E402

APP = {"app_id": "123456", "key": "bench-key", "secret": "bench-secret"}
DATA = {"text": "hello world", "n": 42}
BATCH = [{"channel": f"bench-{i}", "name": "ev", "data": DATA} for i in range(10)]
NODE = os.environ.get("NODE", "node")
NODE_ENV = {**os.environ, "NODE_PATH": str(ROOT / "peers" / "node_modules")}

Result = dict[str, float]  # events, requests, seconds, cpu_s

GO = os.environ.get("GO", "go")
GO_SRC_ENV = "PUSHER_HTTP_GO_SRC"
GO_DRIVER = HERE / "go_contender" / "main.go"
GO_MODULE = "github.com/pusher/pusher-http-go/v5"

# Diagnostic rows: pusher_fast's request building over a bare HTTP/1.1 socket instead of its
# transport, to show where the time goes (not contenders; see RawHTTP).
RAW_SINGLE = "a.single pusher_fast+raw (diag.)"
RAW_BULK = "c.bulk pusher_fast+raw c=4 (diag.)"
RAW_ASYNC = "d.async pusher_fast+raw x100 (diag.)"
ASYNC_BULK = "c.bulk async pusher_fast c=8"
# pusher_fast's AsyncPusher on its aiohttp transport (one pooled session) instead of the default.
AIOHTTP_ASYNC = "d.async pusher_fast+aiohttp x100"


# -- servers ---------------------------------------------------------------------------------


class NullServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [NODE, str(HERE / "null_server.js"), "0", "--exit-on-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=NODE_ENV,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"null_server.js did not start: {self.proc.stderr.read()}")
        self.port = int(json.loads(line)["port"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def kwargs_for(port: int) -> dict[str, Any]:
    return {**APP, "host": "127.0.0.1", "port": port, "ssl": False}


# -- measurements ----------------------------------------------------------------------------


def timed_loop(step: Callable[[], int], seconds: float, warmup: float = 0.1) -> Result:
    """Call ``step`` (returns events sent, one request) until ``seconds`` have passed."""
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        step()
    events = requests = 0
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        events += step()
        requests += 1
    elapsed = time.perf_counter() - t0
    return {"events": events, "requests": requests, "seconds": elapsed,
            "cpu_s": time.process_time() - cpu0}  # fmt: skip


def py_single(client: Any, seconds: float) -> Result:
    def step() -> int:
        client.trigger("bench", "ev", DATA)
        return 1

    return timed_loop(step, seconds)


def py_batch(client: Any, seconds: float) -> Result:
    def step() -> int:
        # A fresh list each call: the official library writes the encoded data into its input.
        client.trigger_batch([dict(e) for e in BATCH])
        return 10

    return timed_loop(step, seconds)


class RawHTTP:
    """Diagnostic only: pusher_fast's request builder over a bare keep-alive HTTP/1.1 socket
    (one ``sendall`` per request, Content-Length responses).  Shows the floor a purpose-built
    transport could reach; not a contender."""

    def __init__(self, client: Any) -> None:
        import socket

        self.client = client
        self.sock = socket.create_connection((client.host, client.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"Host: {client.host}:{client.port}\r\n".encode()
        self.buf = bytearray(65536)

    def send(self, request: Any) -> bytes:
        body = request.body
        head = (
            f"{request.method} {request.path}?{request.query_string} HTTP/1.1\r\n".encode()
            + self.host
            + b"Content-Type: application/json\r\nX-Pusher-Library: bench\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        self.sock.sendall(head + body)
        data = b""
        while True:
            n = self.sock.recv_into(self.buf)
            if not n:
                raise ConnectionError("closed")
            data += self.buf[:n]
            end = data.find(b"\r\n\r\n")
            if end < 0:
                continue
            i = data.lower().find(b"content-length:", 0, end)
            length = int(data[i + 15 : data.find(b"\r\n", i)]) if i >= 0 else 0
            if len(data) >= end + 4 + length:
                if not data.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(data[:100])
                return data[end + 4 : end + 4 + length]


def raw_single(client: Any, seconds: float) -> Result:
    raw = RawHTTP(client)

    def step() -> int:
        raw.send(client._trigger_request("bench", "ev", DATA))
        return 1

    try:
        return timed_loop(step, seconds)
    finally:
        raw.sock.close()


class RawBackend:
    """Diagnostic only: a ``backend=`` with ``send_raw`` over one RawHTTP socket per thread."""

    def __init__(self, client: Any) -> None:
        import threading

        self.client = client
        self.local = threading.local()

    def send_raw(self, request: Any) -> tuple[int, bytes, dict[str, str]]:
        raw = getattr(self.local, "raw", None)
        if raw is None:
            raw = self.local.raw = RawHTTP(self.client)
        return 200, raw.send(request), {}

    def send_request(self, request: Any) -> Any:
        return json.loads(self.send_raw(request)[1])


def fast_bulk(port: int, seconds: float, concurrency: int = 4, raw: bool = False) -> Result:
    client = pusher_fast.Pusher(**kwargs_for(port), backend=RawBackend if raw else None)
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
    assert report.ok and report.delivered == n, report.as_dict()
    return {"events": n, "requests": report.requests, "seconds": elapsed,
            "cpu_s": time.process_time() - cpu0}  # fmt: skip


def async_bulk(port: int, seconds: float, concurrency: int = 8) -> Result:
    """``AsyncBulkSender`` on the default asyncio transport, fed as fast as it takes events."""

    async def main() -> Result:
        async with AsyncPusher(**kwargs_for(port)) as client:
            async with client.bulk(concurrency=concurrency, max_queue=400) as warm:
                for _ in range(200):
                    await warm.add("bench", "ev", DATA)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            end = t0 + seconds
            sender = client.bulk(concurrency=concurrency, max_queue=2000)
            n = 0
            while time.perf_counter() < end:
                for _ in range(100):
                    await sender.add("bench", "ev", DATA)
                n += 100
            report = await sender.close()
            elapsed = time.perf_counter() - t0
            assert report.ok and report.delivered == n, report.as_dict()
            return {"events": n, "requests": report.requests, "seconds": elapsed,
                    "cpu_s": time.process_time() - cpu0}  # fmt: skip

    return asyncio.run(main())


def async_gather(make_client: Callable[[], Any], seconds: float, close: bool) -> Result:
    async def main() -> Result:
        client = make_client()

        async def round_() -> None:
            results = await asyncio.gather(
                *(client.trigger("bench", "ev", DATA) for _ in range(100))
            )
            assert len(results) == 100

        await round_()  # warm-up: connections opened
        events = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await round_()
            events += 100
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        if close:
            await client.aclose()
        return {"events": events, "requests": events, "seconds": elapsed, "cpu_s": cpu}

    return asyncio.run(main())


def async_raw(port: int, seconds: float) -> Result:
    """Diagnostic only: pusher_fast's request builder over a pool of bare asyncio streams."""

    async def main() -> Result:
        client = pusher_fast.Pusher(**kwargs_for(port))
        pool: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(100):
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        host = f"Host: 127.0.0.1:{port}\r\n".encode()

        async def trigger() -> bytes:
            req = client._trigger_request("bench", "ev", DATA)
            reader, writer = await pool.get()
            try:
                writer.write(
                    f"POST {req.path}?{req.query_string} HTTP/1.1\r\n".encode()
                    + host
                    + b"Content-Type: application/json\r\nX-Pusher-Library: bench\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(req.body)
                    + req.body
                )
                head = await reader.readuntil(b"\r\n\r\n")
                i = head.lower().find(b"content-length:")
                length = int(head[i + 15 : head.find(b"\r\n", i)])
                return await reader.readexactly(length)
            finally:
                pool.put_nowait((reader, writer))

        async def round_() -> None:
            await asyncio.gather(*(trigger() for _ in range(100)))

        await round_()
        events = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await round_()
            events += 100
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        while not pool.empty():
            pool.get_nowait()[1].close()
        return {"events": events, "requests": events, "seconds": elapsed, "cpu_s": cpu}

    return asyncio.run(main())


def node_loop(port: int, mode: str, seconds: float) -> Result:
    opts = {"port": port, "mode": mode, "seconds": seconds, "warmup": 0.2, "repeat": 1,
            "appId": APP["app_id"], "key": APP["key"], "secret": APP["secret"]}  # fmt: skip
    out = subprocess.run(
        [NODE, str(HERE / "node_trigger.js"), json.dumps(opts)],
        capture_output=True, text=True, env=NODE_ENV, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- the Go contender -------------------------------------------------------------------------


def go_version() -> str:
    out = subprocess.run([GO, "version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def go_binary(src_dir: str) -> tuple[Path | None, str]:
    """Build (or reuse from the temp dir) the Go driver against the pusher-http-go source in
    ``src_dir``; returns ``(binary, "")``, or ``(None, why not)``."""
    if not src_dir:
        return None, f"no pusher-http-go source: set {GO_SRC_ENV}=DIR or --go-src DIR"
    if shutil.which(GO) is None:
        return None, f"`{GO}` not found (apt-get install -y golang-go golang-golang-x-crypto-dev)"
    src = Path(src_dir).resolve()
    go_mod = src / "go.mod"
    if not go_mod.is_file() or f"module {GO_MODULE}" not in go_mod.read_text():
        return None, f"{src} is not a pusher-http-go v5 source tree (no go.mod of {GO_MODULE})"
    version = go_version()
    # Keyed by everything that goes into the binary, so an edit to either side rebuilds it.
    digest = hashlib.sha256(version.encode() + GO_DRIVER.read_bytes())
    for f in sorted(src.glob("*.go")):
        if not f.name.endswith("_test.go"):
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
    cache = Path(tempfile.gettempdir()) / "pusher_fast_bench_go"
    binary = cache / f"go_contender-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary, ""
    cache.mkdir(exist_ok=True)
    print(f"building the Go contender ({version}) ...", file=sys.stderr)
    env = {**os.environ, "GOFLAGS": ""}
    if not (env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")):
        env["GOCACHE"] = str(cache / "gocache")
    errors = []
    with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
        # 1. GOPATH mode, offline: the source linked in under its import path, the other
        # GOPATH entries (Debian's /usr/share/gocode has golang.org/x/crypto) after it.
        root = Path(tmp) / "gopath"
        (root / "src" / Path(GO_MODULE).parent).mkdir(parents=True)
        (root / "src" / GO_MODULE).symlink_to(src, target_is_directory=True)
        (root / "src" / "go_contender").mkdir()
        shutil.copy(GO_DRIVER, root / "src" / "go_contender" / "main.go")
        gopath = [str(root)]
        user_gopath = subprocess.run([GO, "env", "GOPATH"], capture_output=True, text=True)
        gopath += [p for p in user_gopath.stdout.strip().split(os.pathsep) if p]
        if Path("/usr/share/gocode").is_dir():
            gopath.append("/usr/share/gocode")
        attempts = [
            (root / "src" / "go_contender",
             {**env, "GO111MODULE": "off", "GOPATH": os.pathsep.join(gopath)}),
        ]  # fmt: skip
        # 2. Module mode with the source as a replace: needs the module proxy (the network)
        # for golang.org/x/crypto unless it is already in the module cache.
        mod = Path(tmp) / "mod"
        mod.mkdir()
        shutil.copy(GO_DRIVER, mod / "main.go")
        (mod / "go.mod").write_text(
            f"module go_contender\n\ngo 1.17\n\nrequire {GO_MODULE} v5.0.0\n\n"
            f"replace {GO_MODULE} => {src}\n"
        )
        attempts.append((mod, {**env, "GO111MODULE": "on", "GOFLAGS": "-mod=mod"}))
        for cwd, build_env in attempts:
            out = subprocess.run(
                [GO, "build", "-o", str(Path(tmp) / "go_contender"), "."],
                cwd=cwd, env=build_env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if out.returncode == 0:
                os.replace(Path(tmp) / "go_contender", binary)
                return binary, ""
            lines = (out.stderr or out.stdout).strip().splitlines()
            errors.append(lines[-1] if lines else f"exit status {out.returncode}")
    return None, "go build failed: " + " / ".join(errors)


def go_loop(binary: Path, port: int, mode: str, seconds: float, goroutines: int) -> Result:
    args = ["-port", str(port), "-mode", mode, "-seconds", str(seconds), "-warmup", "0.2",
            "-goroutines", str(goroutines), "-batch", str(len(BATCH)), "-data", json.dumps(DATA),
            "-app-id", APP["app_id"], "-key", APP["key"], "-secret", APP["secret"]]  # fmt: skip
    out = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- report ----------------------------------------------------------------------------------


def rate(r: Result) -> float:
    return r["events"] / r["seconds"]


def cpu_us(r: Result) -> float:
    return r["cpu_s"] / r["requests"] * 1e6 if r["requests"] else float("nan")


def median_of(results: list[Result], f: Callable[[Result], float]) -> float:
    return statistics.median(f(r) for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each measurement")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--no-soketi", action="store_true", help="skip the soketi loops")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--only", default="", help="comma-separated name prefixes of the cases to run (a.,c.)"
    )
    parser.add_argument(
        "--go-src",
        default=os.environ.get(GO_SRC_ENV, ""),
        help=f"pusher-http-go v5 source tree for the Go rows (default: ${GO_SRC_ENV})",
    )
    parser.add_argument("--go-goroutines", type=int, default=4, help="senders of the Go bulk row")
    parser.add_argument("--no-go", action="store_true", help="skip the Go rows")
    args = parser.parse_args()
    secs, reps = args.seconds, max(1, args.reps)
    prefixes = tuple(args.only.split(",")) if args.only else ("",)
    go_g = max(1, args.go_goroutines)
    go_names = ("a.single go", "b.batch10 go", f"c.bulk go g={go_g}")
    go_bin: Path | None = None
    if not args.no_go and any(name.startswith(prefixes) for name in go_names):
        go_bin, why = go_binary(args.go_src)
        if go_bin is None:
            print(f"go contender skipped: {why}", file=sys.stderr)

    server = NullServer()
    results: dict[str, list[Result]] = {}
    try:
        port = server.port
        fast = pusher_fast.Pusher(**kwargs_for(port))
        official = pusher.Pusher(**kwargs_for(port))
        cases: list[tuple[str, Callable[[], Result]]] = [
            ("a.single pusher_fast", lambda: py_single(fast, secs)),
            ("a.single official py", lambda: py_single(official, secs)),
            ("a.single official node", lambda: node_loop(port, "single", secs)),
            (go_names[0], lambda: go_loop(go_bin, port, "single", secs, 1)),
            (RAW_SINGLE, lambda: raw_single(fast, secs)),
            ("b.batch10 pusher_fast", lambda: py_batch(fast, secs)),
            ("b.batch10 official py", lambda: py_batch(official, secs)),
            ("b.batch10 official node", lambda: node_loop(port, "batch", secs)),
            (go_names[1], lambda: go_loop(go_bin, port, "batch", secs, 1)),
            ("c.bulk pusher_fast c=4", lambda: fast_bulk(port, secs)),
            (go_names[2], lambda: go_loop(go_bin, port, "bulk", secs, go_g)),
            ("c.bulk pusher_fast c=1 (diag.)", lambda: fast_bulk(port, secs, 1)),
            (RAW_BULK, lambda: fast_bulk(port, secs, 4, raw=True)),
            (ASYNC_BULK, lambda: async_bulk(port, secs)),
            ("d.async pusher_fast x100", lambda: async_gather(
                lambda: AsyncPusher(**kwargs_for(port)), secs, close=True)),
            (AIOHTTP_ASYNC, lambda: async_gather(
                lambda: AsyncPusher(**kwargs_for(port), backend=AsyncIOBackend), secs, close=True)),
            (RAW_ASYNC, lambda: async_raw(port, secs)),
            ("d.async official aiohttp x100", lambda: async_gather(
                lambda: pusher.Pusher(**kwargs_for(port), backend=pusher.aiohttp.AsyncIOBackend),
                secs, close=False)),
        ]  # fmt: skip
        if go_bin is None:
            cases = [case for case in cases if case[0] not in go_names]
        cases = [case for case in cases if case[0].startswith(prefixes)]
        for rep in range(reps):
            for name, run in cases:
                results.setdefault(name, []).append(run())
            print(f"  rep {rep + 1}/{reps} done", file=sys.stderr)
    finally:
        server.stop()

    if not args.no_soketi:
        from tests.peers import peers_missing_reason
        from tests.peers.soketi import start_soketi

        if peers_missing_reason():
            print(f"soketi skipped: {peers_missing_reason()}", file=sys.stderr)
        else:
            soketi = start_soketi(
                [{"id": APP["app_id"], "key": APP["key"], "secret": APP["secret"]}]
            )
            try:
                sk_fast = pusher_fast.Pusher(**kwargs_for(soketi.port))
                sk_official = pusher.Pusher(**kwargs_for(soketi.port))
                for _ in range(reps):
                    results.setdefault("s.soketi single pusher_fast", []).append(
                        py_single(sk_fast, secs)
                    )
                    results.setdefault("s.soketi single official py", []).append(
                        py_single(sk_official, secs))  # fmt: skip
            finally:
                soketi.stop()

    med = {name: median_of(rs, rate) for name, rs in results.items()}
    cpu = {name: median_of(rs, cpu_us) for name, rs in results.items()}

    print()
    node_version = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout
    print(
        f"pusher_fast {pusher_fast.__version__} (signing: {pusher_fast.IMPLEMENTATION}), "
        f"Python {platform.python_version()}, node {node_version.strip()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    if go_bin is not None:
        print(f"{go_version()}, pusher-http-go from {Path(args.go_src).resolve()}")
    print(f"median of {reps} x {secs:.1f}s; CPU = client process CPU per HTTP request")
    print()
    print(f"{'measurement':34} {'events/s':>10} {'req/s':>9} {'CPU µs/req':>11}")
    print("-" * 67)
    for name, rs in results.items():
        reqs = median_of(rs, lambda r: r["requests"] / r["seconds"])
        c = cpu[name]
        own_process = "node" in name or name in go_names
        cpu_text = f"{c:11.0f}*" if own_process else f"{c:11.0f}"
        print(f"{name:34} {med[name]:10.0f} {reqs:9.0f} {cpu_text}")
    print("(* node, go: CPU of that node / Go process per request)")
    print()

    def ratio(a: str, b: str) -> float:
        return med[a] / med[b] if a in med and b in med and med[b] else float("nan")

    fast_single, py_single_, node_single = (
        "a.single pusher_fast",
        "a.single official py",
        "a.single official node",
    )
    fast_b, py_b, node_b = (
        "b.batch10 pusher_fast",
        "b.batch10 official py",
        "b.batch10 official node",
    )
    bulk, a_fast, a_py = (
        "c.bulk pusher_fast c=4",
        "d.async pusher_fast x100",
        "d.async official aiohttp x100",
    )
    sk_fast_, sk_py = "s.soketi single pusher_fast", "s.soketi single official py"
    checks = [
        ("single: pusher_fast / official py", ratio(fast_single, py_single_), 5.0),
        ("single: pusher_fast / official node", ratio(fast_single, node_single), 1.2),
        ("batch10: pusher_fast / official py", ratio(fast_b, py_b), None),
        ("batch10: pusher_fast / official node", ratio(fast_b, node_b), None),
        ("bulk / official py single loop", ratio(bulk, py_single_), 40.0),
        # Issue 14's targets for the bulk senders: 5x Node's triggerBatch loop, never below a
        # plain trigger_batch loop, and at least the Go library's goroutines.
        ("bulk / node triggerBatch loop", ratio(bulk, node_b), 5.0),
        ("async bulk / node triggerBatch loop", ratio(ASYNC_BULK, node_b), 5.0),
        ("bulk / pusher_fast trigger_batch loop", ratio(bulk, fast_b), 1.0),
        ("async bulk / pusher_fast trigger_batch loop", ratio(ASYNC_BULK, fast_b), 1.0),
        ("single: pusher_fast / go", ratio(fast_single, go_names[0]), None),
        ("batch10: pusher_fast / go", ratio(fast_b, go_names[1]), None),
        (f"bulk / go g={go_g} TriggerBatch", ratio(bulk, go_names[2]), 1.0),
        (f"async bulk / go g={go_g}", ratio(ASYNC_BULK, go_names[2]), 1.0),
        ("async x100: pusher_fast / official aiohttp", ratio(a_fast, a_py), 5.0),
        ("soketi single: pusher_fast / official py", ratio(sk_fast_, sk_py), None),
        ("diag: single, raw socket / official py", ratio(RAW_SINGLE, py_single_), None),
        ("diag: bulk, raw socket / official py single", ratio(RAW_BULK, py_single_), None),
        ("diag: bulk, raw socket / node triggerBatch", ratio(RAW_BULK, node_b), None),
        ("async x100: pusher_fast+aiohttp / official", ratio(AIOHTTP_ASYNC, a_py), None),
        ("diag: async, raw streams / official aiohttp", ratio(RAW_ASYNC, a_py), None),
    ]
    print(f"{'ratio':44} {'value':>7} {'target':>7}  verdict")
    print("-" * 70)
    for label, value, target in checks:
        if value != value:  # NaN: not measured
            continue
        verdict = "" if target is None else ("MET" if value >= target else "MISSED")
        tgt = "" if target is None else f">={target:g}x"
        print(f"{label:44} {value:6.2f}x {tgt:>7}  {verdict}")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``pusher-fast serve`` and ``pusher-fast demo``: the local Pusher HTTP API from a shell.

``serve(argv)`` runs :class:`PusherServer` in the foreground and prints its ``PUSHER_URL``;
``demo(argv)`` starts one in-process and drives it with ``pusher_fast.Pusher`` end to end.
Both return a process exit code.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib
import os
import signal
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any, Optional, TextIO

import orjson

from ._core import RecordedRequest
from ._server import DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET, PusherServer

__all__ = ["demo", "serve"]


def _parser(command: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"pusher-fast {command}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--app-id", default=DEFAULT_APP_ID, help="the app id it serves")
    parser.add_argument("--key", default=DEFAULT_KEY, help="the app's key")
    parser.add_argument("--secret", default=DEFAULT_SECRET, help="the app's secret (test value)")
    parser.add_argument(
        "--encryption-master-key-base64",
        default=None,
        help="32-byte key, base64: encrypted-channel events are decrypted and shown",
    )
    parser.add_argument("--max-payload-bytes", type=int, default=10240, help="data size limit")
    parser.add_argument("--max-batch-size", type=int, default=10, help="events per batch limit")
    parser.add_argument(
        "--max-timestamp-skew", type=float, default=600, help="seconds auth_timestamp may be off"
    )


def _make_server(args: argparse.Namespace, **extra: Any) -> PusherServer:
    return PusherServer(
        args.app_id,
        args.key,
        args.secret,
        host=args.host,
        port=args.port,
        max_payload_bytes=args.max_payload_bytes,
        max_batch_size=args.max_batch_size,
        max_timestamp_skew=args.max_timestamp_skew,
        encryption_master_key_base64=args.encryption_master_key_base64,
        **extra,
    )


def serve(argv: list[str]) -> int:
    """Run the local Pusher HTTP API until Ctrl-C (or SIGTERM); print its ``PUSHER_URL``."""
    parser = _parser(
        "serve",
        "Run a local Pusher Channels HTTP API (signatures, limits, status codes "
        "as the service). Point a client at the printed PUSHER_URL.",
    )
    _server_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="print one line per request")
    args = parser.parse_args(argv)
    out = sys.stdout
    try:
        server = _make_server(args, max_recorded=10_000)
        server.start()
    except (OSError, ValueError) as e:
        print(f"pusher-fast serve: {e}", file=sys.stderr)
        return 1
    if args.verbose:
        server.on_request(lambda req: _log_request(server, req, out))
    # SIGTERM and SIGINT (Ctrl-C) handled before the URL is printed: a supervisor (or a test)
    # may stop us right after reading it, before the main thread gets back from printing.
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_stop(signum: int, frame: Optional[FrameType]) -> None:
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_stop)
    print(f"PUSHER_URL={server.pusher_url}", file=out)
    print(
        f"Local Pusher HTTP API on {server.url}  app_id={server.app_id} key={server.key} "
        f"secret={server.secret}",
        file=out,
    )
    print(
        "Use: pusher_fast.Pusher.from_url(os.environ['PUSHER_URL']) "
        "(or Pusher(..., host, port, ssl=False)). Ctrl-C to stop.",
        file=out,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.stop()
    core = server._core
    print(
        f"\nStopped. {core.request_count} request(s), {core.event_count} event(s) accepted.",
        file=out,
        flush=True,
    )
    return 0


def _log_request(server: PusherServer, req: RecordedRequest, out: TextIO) -> None:
    line = f"{time.strftime('%H:%M:%S')} {req.status} {req.method} {req.path}"
    if req.error:
        line += f"  ({req.error[:200]})"
    elif req.method == "POST" and req.path.endswith("events"):
        line += f"  {len(req.body)} bytes"
    print(line, file=out, flush=True)


# -- demo ----------------------------------------------------------------------------------------

_DEMO_CHANNELS = ("orders", "prices", "private-alerts", "presence-lobby")
_DEMO_MEMBERS = {
    "alice": {"name": "Alice"},
    "bob": {"name": "Bob"},
    "carol": {"name": "Carol"},
}


def _client_factory(which: str) -> Any:
    # Imported by name at run time: the official package is a test extra, and the command
    # must start (and say what is missing) even where a client cannot be imported.
    if which == "official":
        return importlib.import_module("pusher").Pusher
    factory = getattr(importlib.import_module("pusher_fast"), "Pusher", None)
    if factory is None:
        raise ImportError("pusher_fast.Pusher is not available in this build")
    return factory


def _demo_event(i: int) -> dict[str, Any]:
    channel = _DEMO_CHANNELS[i % len(_DEMO_CHANNELS)]
    if channel == "prices":
        data: dict[str, Any] = {"symbol": "PFST", "price": round(100 + (i % 97) * 0.25, 2)}
    elif channel == "presence-lobby":
        data = {"from": "alice", "text": f"message {i}"}
    elif channel == "private-alerts":
        data = {"level": "info", "code": i % 7}
    else:
        data = {"order_id": i, "items": [{"sku": f"SKU-{i % 13}", "qty": 1 + i % 3}]}
    return {"channel": channel, "name": f"{channel.split('-')[-1]}-update", "data": data}


def _demo_stream(
    client: Any, server: PusherServer, count: int, batch_size: int, out: TextIO
) -> bool:
    """Step 1; True when the server got every event."""
    # 1. A stream of events: through the bulk sender (batches of --batch-size,
    #    4 requests in flight) with pusher_fast, trigger_batch in a loop otherwise.
    events = [_demo_event(i) for i in range(count)]
    latencies: list[float] = []
    started = time.perf_counter()
    if hasattr(client, "bulk"):
        with client.bulk(batch_size=batch_size) as sender:
            for event in events:
                sender.add(event["channel"], event["name"], event["data"])
        report = sender.report
        how = (
            f"the bulk sender ({report.requests} batch requests, "
            f"{len(report.failed)} failed, {report.retries} retried)"
        )
    else:
        for start in range(0, len(events), batch_size):
            group = [dict(e) for e in events[start : start + batch_size]]
            t0 = time.perf_counter()
            client.trigger_batch(group)
            latencies.append(time.perf_counter() - t0)
        how = f"{len(latencies)} trigger_batch calls of {batch_size}"
    elapsed = time.perf_counter() - started
    received = server.events
    per_channel = Counter(e.channel for e in received)
    ok = len(received) == len(events)
    requests = len(server.requests)
    print(
        f"\n1. Sent {len(events)} events through {how}: {elapsed:.2f} s, "
        f"{len(events) / elapsed:,.0f} events/s, {requests / elapsed:,.0f} requests/s",
        file=out,
    )
    print(
        f"   Server accepted {len(received)} events"
        f" ({'all' if ok else 'MISSING SOME'}): "
        + ", ".join(f"{c}={n}" for c, n in sorted(per_channel.items())),
        file=out,
    )
    return ok


def _demo_encrypted(client: Any, server: PusherServer, out: TextIO) -> None:
    # 2. One end-to-end encrypted event, decrypted by the server that holds the key.
    try:
        client.trigger("private-encrypted-vault", "secret", {"pin": 1234})
        sealed = server.events_for("private-encrypted-vault")[-1]
        print(
            f"\n2. Encrypted event: on the wire {sealed.data[:60]}...; "
            f"server decrypted {sealed.decrypted_data}",
            file=out,
        )
    except Exception as e:  # the client may not support encryption
        print(f"\n2. Encrypted event skipped: {type(e).__name__}: {e}", file=out)


def _demo_queries(client: Any, out: TextIO) -> None:
    # 3. Queries answered from the simulated state.
    print("\n3. Queries:", file=out)
    print(f"   channels_info()                = {client.channels_info()}", file=out)
    print(
        "   channels_info('presence-', ['user_count']) = "
        f"{client.channels_info('presence-', ['user_count'])}",
        file=out,
    )
    print(
        "   channel_info('presence-lobby', ['user_count', 'subscription_count']) = "
        f"{client.channel_info('presence-lobby', ['user_count', 'subscription_count'])}",
        file=out,
    )
    print(f"   users_info('presence-lobby')   = {client.users_info('presence-lobby')}", file=out)


def _demo_auth(client: Any, server: PusherServer, out: TextIO) -> bool:
    """Step 4; True when the signature verifies."""
    # 4. Authorize a presence subscription and check the signature ourselves.
    socket_id = "1234.5678"
    auth = client.authenticate(
        channel="presence-lobby",
        socket_id=socket_id,
        custom_data={"user_id": "alice", "user_info": {"name": "Alice"}},
    )
    signed = f"{socket_id}:presence-lobby:{auth['channel_data']}".encode()
    expected = hmac.new(server.secret.encode(), signed, hashlib.sha256).hexdigest()
    auth_ok: bool = auth["auth"] == f"{server.key}:{expected}"
    print(
        f"\n4. authenticate(presence-lobby) -> {auth}\n   signature "
        f"{'verifies' if auth_ok else 'DOES NOT VERIFY'}",
        file=out,
    )
    return auth_ok


def _demo_webhook(client: Any, server: PusherServer, out: TextIO) -> bool:
    """Step 5; True when the webhook validates and a forged one does not."""
    # 5. A webhook signed as the service signs it, validated by the client.
    body = orjson.dumps(
        {
            "time_ms": int(time.time() * 1000),
            "events": [
                {"name": "channel_occupied", "channel": "orders"},
                {"name": "member_added", "channel": "presence-lobby", "user_id": "dave"},
            ],
        }
    ).decode()
    signature = hmac.new(server.secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    webhook = client.validate_webhook(key=server.key, signature=signature, body=body)
    forged = client.validate_webhook(key=server.key, signature="0" * 64, body=body)
    webhook_ok = webhook is not None and forged is None
    print(
        f"\n5. validate_webhook (X-Pusher-Signature {signature[:16]}...) -> "
        f"{len(webhook['events']) if webhook else 0} events; forged signature -> {forged}",
        file=out,
    )
    return webhook_ok


def demo(argv: list[str]) -> int:
    """Start a local server, drive it with ``pusher_fast.Pusher`` and print what happened."""
    parser = _parser(
        "demo",
        "Send a stream of events to an in-process local Pusher HTTP API with "
        "pusher_fast.Pusher, query it, authorize a presence channel, validate a webhook.",
    )
    parser.add_argument("--events", type=int, default=3000, help="events to send")
    parser.add_argument("--batch-size", type=int, default=10, help="events per batch request")
    parser.add_argument(
        "--client",
        choices=("pusher_fast", "official"),
        default="pusher_fast",
        help="client library to drive the server with",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.batch_size <= 10:
        parser.error("--events must be >= 1 and --batch-size 1..10")
    out = sys.stdout
    try:
        factory = _client_factory(args.client)
    except ImportError as e:
        print(f"pusher-fast demo: cannot use the {args.client} client: {e}", file=sys.stderr)
        return 1

    master_key = base64.b64encode(hashlib.sha256(b"pusher-fast demo").digest()).decode()
    with PusherServer(encryption_master_key_base64=master_key) as server:
        for user_id, info in _DEMO_MEMBERS.items():
            server.add_member("presence-lobby", user_id, info)
        server.add_member("presence-lobby", "alice")  # a second tab: 4 connections, 3 users
        server.add_subscriber("orders", 12)
        server.add_subscriber("prices", 40)
        server.add_subscriber("private-alerts", 2)
        client = factory(**server.client_kwargs())
        print(f"Local Pusher HTTP API: {server.url} (app {server.app_id})", file=out)
        print(f"Client: {type(client).__module__}.{type(client).__name__}", file=out)

        ok = _demo_stream(client, server, args.events, args.batch_size, out)
        _demo_encrypted(client, server, out)
        _demo_queries(client, out)
        auth_ok = _demo_auth(client, server, out)
        webhook_ok = _demo_webhook(client, server, out)

        statuses = Counter(r.status for r in server.requests)
        print(f"\nServer saw {len(server.requests)} requests, statuses {dict(statuses)}", file=out)
        out.flush()
    return 0 if ok and auth_ok and webhook_ok else 1


def main() -> int:  # pragma: no cover - manual entry point
    argv = sys.argv[1:]
    command = argv[0] if argv else ""
    if command == "serve":
        return serve(argv[1:])
    if command == "demo":
        return demo(argv[1:])
    print(f"usage: {os.path.basename(sys.argv[0])} serve|demo [options]", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

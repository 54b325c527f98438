"""The ``pusher-fast`` command (also ``python -m pusher_fast``).

Credentials come from ``--url`` or the ``PUSHER_URL`` environment variable
(``http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID``), or from ``--app-id``,
``--key``, ``--secret`` with ``--cluster`` or ``--host``/``--port``.

Exit codes: 0 success; 1 some events failed or some input lines were bad
(the rest was still sent); 2 bad usage or credentials; 3 the API could not be
reached or refused the request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from . import IMPLEMENTATION, Pusher
from .errors import PusherBadAuth, PusherError, PusherForbidden, PusherTransportError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API = 0, 1, 2, 3


class UsageError(Exception):
    pass


def _client(args: argparse.Namespace) -> Pusher:
    options: dict[str, Any] = {"timeout": args.timeout}
    try:
        if args.url or (os.environ.get("PUSHER_URL") and not args.app_id):
            return Pusher.from_url(args.url or os.environ["PUSHER_URL"], **options)
        if not (args.app_id and args.key and args.secret):
            raise UsageError(
                "no credentials: set PUSHER_URL, pass --url, or pass --app-id, --key and --secret"
            )
        return Pusher(
            app_id=args.app_id,
            key=args.key,
            secret=args.secret,
            cluster=args.cluster,
            host=args.host,
            port=args.port,
            ssl=not args.no_ssl,
            **options,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad credentials: {exc}") from None


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, ensure_ascii=False, sort_keys=True) + "\n")


def cmd_trigger(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    try:
        result = client.trigger(args.channel, args.event, args.data, socket_id=args.socket_id)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    _print_json(result, out)
    return EXIT_OK


def cmd_channels(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    try:
        if args.command == "channels":
            result = client.channels_info(args.prefix, args.info or ())
        elif args.command == "channel":
            result = client.channel_info(args.channel, args.info or ())
        else:
            result = client.users_info(args.channel)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    _print_json(result, out)
    return EXIT_OK


def _read_events(
    stream: TextIO, errors: list[tuple[int, str]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            errors.append((number, f"not JSON: {exc}"))
            continue
        if not isinstance(event, dict):
            errors.append((number, "not a JSON object"))
            continue
        missing = [k for k in ("name", "data") if k not in event]
        if "channel" not in event and "channels" not in event:
            missing.insert(0, "channel")
        if missing:
            errors.append((number, f"missing {', '.join(missing)}"))
            continue
        yield number, event


class _Progress:
    """A one-line live display on a terminal: events/s, delivered, failed."""

    def __init__(self, sender: Any, stream: TextIO) -> None:
        self._sender = sender
        self._stream = stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._draw()
        self._stream.write("\n")

    def _draw(self) -> None:
        report = self._sender.report
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._stream.write(
            f"\r{report.delivered / elapsed:10.0f} events/s  delivered {report.delivered}"
            f"  failed {len(report.failed)}  queued {self._sender.pending}   "
        )
        self._stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._draw()


def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    try:  # fail fast on bad credentials or an unreachable server
        client.channels_info()
    except PusherBadAuth as exc:
        raise UsageError(f"credentials refused by {client.base_url}: {exc}") from None
    stream: TextIO = sys.stdin if args.file in (None, "-") else open(args.file, encoding="utf-8")
    line_errors: list[tuple[int, str]] = []
    sender = client.bulk(
        batch_size=args.batch_size, concurrency=args.concurrency, retries=args.retries
    )
    show = args.progress or (args.progress is None and sys.stderr.isatty())
    progress: Any = _Progress(sender, sys.stderr) if show else None
    interrupted = False
    try:
        if progress:
            progress.__enter__()
        with sender:
            try:
                for number, event in _read_events(stream, line_errors):
                    try:
                        sender.add(
                            event.get("channel", ()),
                            event["name"],
                            event["data"],
                            event.get("socket_id"),
                            channels=event.get("channels"),
                        )
                    except (ValueError, TypeError) as exc:
                        line_errors.append((number, str(exc)))
            except KeyboardInterrupt:
                # Stop reading; what was queued is still sent (bounded) and reported.
                interrupted = True
                sender.shutdown_timeout = min(sender.shutdown_timeout, 10.0)
    finally:
        if progress:
            progress.__exit__(None, None, None)
        if stream is not sys.stdin:
            stream.close()
    report = sender.report
    for number, message in line_errors:
        sys.stderr.write(f"pusher-fast: line {number}: {message}\n")
    if args.failures and report.failed:
        with open(args.failures, "w", encoding="utf-8") as handle:
            for failure in report.failed:
                record = dict(failure.event, error=failure.reason, status=failure.status)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary = report.as_dict()
    summary["bad_lines"] = len(line_errors)
    summary["failures_file"] = args.failures if report.failed else None
    summary["interrupted"] = interrupted
    _print_json(summary, out)
    if interrupted:
        return 130
    return EXIT_OK if report.ok and not line_errors else EXIT_FAILED


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    from ._bench import run, run_signing

    if args.signing:
        run_signing(out, seconds=args.seconds)
    else:
        run(out, seconds=args.seconds)
    return EXIT_OK


def cmd_testing(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import _cli

    entry = _cli.serve if args.command == "serve" else _cli.demo
    return int(entry(args.rest))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pusher-fast",
        description=f"Pusher Channels HTTP API from the command line (signing: {IMPLEMENTATION}).",
    )
    creds = argparse.ArgumentParser(add_help=False)
    group = creds.add_argument_group("credentials (default: $PUSHER_URL)")
    group.add_argument("--url", help="http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID")
    group.add_argument("--app-id")
    group.add_argument("--key")
    group.add_argument("--secret")
    group.add_argument("--cluster")
    group.add_argument("--host")
    group.add_argument("--port", type=int)
    group.add_argument("--no-ssl", action="store_true", help="plain HTTP")
    group.add_argument("--timeout", type=float, default=5.0)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("trigger", parents=[creds], help="trigger one event")
    p.add_argument("channel")
    p.add_argument("event")
    p.add_argument("data", nargs="?", default="{}", help="event data, sent as given (default {})")
    p.add_argument("--socket-id")
    p.set_defaults(func=cmd_trigger)

    p = sub.add_parser(
        "send", parents=[creds], help="send JSON-lines events through the bulk sender"
    )
    p.add_argument("file", nargs="?", help="JSON lines file (default: stdin)")
    p.add_argument("--failures", help="write failed events here, as JSON lines to replay")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("channels", parents=[creds], help="list occupied channels")
    p.add_argument("--prefix")
    p.add_argument("--info", help="attributes, e.g. user_count")
    p.set_defaults(func=cmd_channels)
    p = sub.add_parser("channel", parents=[creds], help="one channel's state")
    p.add_argument("channel")
    p.add_argument("--info", help="attributes, e.g. subscription_count,user_count")
    p.set_defaults(func=cmd_channels)
    p = sub.add_parser("users", parents=[creds], help="users on a presence channel")
    p.add_argument("channel")
    p.set_defaults(func=cmd_channels)

    p = sub.add_parser("bench", help="signing micro-benchmarks (this library vs the floor)")
    p.add_argument("--seconds", type=float, default=0.2, help="time per case")
    p.add_argument(
        "--signing",
        action="store_true",
        help="signed requests per second per core for the common shapes, as a table",
    )
    p.set_defaults(func=cmd_bench)

    for name, text in (
        ("serve", "run a local Pusher HTTP API (pusher_fast.testing) in the foreground"),
        ("demo", "start a local API in-process and push a realistic stream through it"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=cmd_testing)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("serve", "demo"):
        # Their options belong to pusher_fast.testing's own parsers.
        return cmd_testing(argparse.Namespace(command=argv[0], rest=argv[1:]), sys.stdout)
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args, sys.stdout))
    except UsageError as exc:
        sys.stderr.write(f"pusher-fast: {exc}\n")
        return EXIT_USAGE
    except PusherTransportError as exc:
        sys.stderr.write(f"pusher-fast: cannot reach the API: {exc}\n")
        return EXIT_API
    except (PusherBadAuth, PusherForbidden) as exc:
        sys.stderr.write(f"pusher-fast: credentials refused: {exc}\n")
        return EXIT_USAGE
    except PusherError as exc:
        sys.stderr.write(f"pusher-fast: API error: {exc}\n")
        return EXIT_API
    except KeyboardInterrupt:
        sys.stderr.write("pusher-fast: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())

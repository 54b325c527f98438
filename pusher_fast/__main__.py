"""The ``pusher-fast`` command (also ``python -m pusher_fast``).

Credentials come from ``--url`` or the ``PUSHER_URL`` environment variable
(``http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID``), or from ``--app-id``,
``--key`` and the secret (``PUSHER_SECRET``, ``--secret-file`` or, visible to
other users of the machine, ``--secret``) with ``--cluster`` or
``--host``/``--port``.  The secret is never printed.

Exit codes: 0 success; 1 some events failed or some input lines were bad
(the rest was still sent); 2 bad usage or credentials; 3 the API could not be
reached or refused the request; 130 interrupted (Ctrl-C; ``send`` prints the
``--start-line`` to resume from).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from . import IMPLEMENTATION, Pusher
from ._events import Item
from .bulk import BulkSender, _replay
from .errors import PusherBadAuth, PusherError, PusherForbidden, PusherTransportError
from .types import ChannelInfo, ChannelsInfo, UsersInfo
from .version import VERSION

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EPILOG = (
    "exit codes: 0 success; 1 some events failed or input lines were bad; 2 bad usage or "
    "credentials; 3 API unreachable or error; 130 interrupted (Ctrl-C)"
)


class UsageError(Exception):
    pass


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for options that have a meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text + " (default: %(default)s)"
        return text


def _bounded(
    kind: Callable[[str], Any], low: float, high: float | None = None, rule: str = ""
) -> Any:
    """An argparse ``type=`` that refuses values outside [low, high] with a usage error."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value) or value < low or (high is not None and value > high):
            wanted = rule or (f">= {low}" if high is None else f"between {low} and {high}")
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_positive_int = _bounded(int, 1)
_non_negative_int = _bounded(int, 0)
_positive_float = _bounded(float, 1e-9, None, "a finite number > 0")


def _secret(args: argparse.Namespace) -> str | None:
    if args.secret:
        return str(args.secret)
    if args.secret_file:
        try:
            with open(args.secret_file, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise UsageError(f"cannot read --secret-file: {exc.strerror}: {exc.filename}") from None
    return os.environ.get("PUSHER_SECRET") or None


# Clients made by the running command, closed by main() when it ends.
_OPENED: list[Pusher] = []


def _client(args: argparse.Namespace) -> Pusher:
    client = _new_client(args)
    _OPENED.append(client)
    return client


def _new_client(args: argparse.Namespace) -> Pusher:
    options: dict[str, Any] = {"timeout": args.timeout}
    try:
        if args.url or (os.environ.get("PUSHER_URL") and not args.app_id):
            return Pusher.from_url(args.url or os.environ["PUSHER_URL"], **options)
        secret = _secret(args)
        if not (args.app_id and args.key and secret):
            raise UsageError(
                "no credentials: set PUSHER_URL, pass --url, or pass --app-id and --key with "
                "the secret in PUSHER_SECRET or --secret-file"
            )
        return Pusher(
            app_id=args.app_id,
            key=args.key,
            secret=secret,
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
    result: ChannelsInfo | ChannelInfo | UsersInfo
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


# -- send ---------------------------------------------------------------------------------------


def _check_event(line: str) -> tuple[dict[str, Any] | None, str]:
    """The event on a JSON line, or None and why it is rejected."""
    try:
        event = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    missing = [k for k in ("name", "data") if k not in event]
    if "channel" not in event and "channels" not in event:
        missing.insert(0, "channel")
    if missing:
        return None, f"missing {', '.join(missing)}"
    return event, ""


def _lines(stream: TextIO, start: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines from line ``start`` on."""
    for number, line in enumerate(stream, 1):
        if number >= start and line.strip():
            yield number, line


def _count_lines(path: str, start: int) -> int:
    with open(path, encoding="utf-8") as stream:
        return sum(1 for _ in _lines(stream, start))


class _StopAdding(Exception):
    """Ctrl-C while add() waited for room: the line was not queued."""


class _CtrlC:
    """Ctrl-C during ``send``, taken at a line boundary.

    A KeyboardInterrupt raised at any point could land inside the sender's
    code, between taking a lock and the ``with``/``try`` that releases it, or
    between queueing an event and counting it.  So while a line is handed to
    the sender, Ctrl-C only sets a flag, read once the line is done (a line
    waiting for room gives up within 0.1 s); while the input is read (stdin
    may block), it raises as usual.
    """

    def __init__(self, sender: _LineSender) -> None:
        self._sender = sender
        self.busy = False  # a line is being handed to the sender
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self._sender.interrupted = True
        if not self.busy:
            raise KeyboardInterrupt

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _LineSender(BulkSender):
    """A bulk sender that knows which source line each event came from.

    Every failed event is recorded with its line, and a line counts as done
    once all of its events are settled (delivered or failed): that is what the
    progress shows and what makes the resume line exact.
    """

    def __init__(self, client: Pusher, **options: Any) -> None:
        super().__init__(client, **options)
        self.line = 0  # the line being added
        self.lines_done = 0
        self.failures: list[dict[str, Any]] = []
        self._line_of: dict[int, int] = {}  # id(item) -> line, while the item is unsettled
        self._open_lines: dict[int, int] = {}  # line -> events not yet settled
        self._track = threading.Lock()
        encode = self._encode  # what add() calls: the encoder's method, bound once

        def tracking_encode(
            channels: str | Iterable[str], name: str, data: Any, socket_id: str | None
        ) -> list[Item]:
            items = encode(channels, name, data, socket_id)
            with self._track:
                for item in items:
                    self._line_of[id(item)] = self.line
                self._open_lines[self.line] = self._open_lines.get(self.line, 0) + len(items)
            return items

        self._encode = tracking_encode
        #: Set by Ctrl-C (see :class:`_CtrlC`): an add() waiting for room gives up.
        self.interrupted = False

    def _wait_for_room(self) -> None:
        super()._wait_for_room()  # 0.1 s at most
        if self.interrupted:
            raise _StopAdding  # lock held: the with statement in _add_slow() releases it

    def _add_slow(self, items: list[Item]) -> int:
        try:
            return super()._add_slow(items)
        except _StopAdding:
            with self._track:  # never queued: the line is read again when resuming
                for item in items:
                    self._line_of.pop(id(item), None)
                self._open_lines.pop(self.line, None)
            raise

    def line_rejected(self) -> None:
        with self._track:
            self.lines_done += 1

    def _forget(self, items: list[Any]) -> None:
        with self._track:
            for item in items:
                line = self._line_of.pop(id(item), None)
                if line is None:
                    continue
                left = self._open_lines[line] - 1
                if left:
                    self._open_lines[line] = left
                else:
                    del self._open_lines[line]
                    self.lines_done += 1

    def _settle(self, ident: int, items: list[Any], delivered: bool, *rest: Any, **kw: Any) -> None:
        super()._settle(ident, items, delivered, *rest, **kw)
        self._forget(items)

    def _fail(
        self,
        items: list[Any],
        reason: str,
        status: int | None = None,
        attempts: int = 0,
        ambiguous: bool = False,
    ) -> None:
        with self._track:
            records = [
                dict(_replay(item), line=self._line_of.get(id(item)), error=reason, status=status)
                for item in items
            ]
            self.failures.extend(records)
        super()._fail(items, reason, status, attempts, ambiguous)
        self._forget(items)


class _Progress:
    """Lines done of the total: a tqdm bar on a terminal, else a log line every ``interval``."""

    def __init__(self, sender: _LineSender, total: int | None, bar: bool, interval: float) -> None:
        self._sender = sender
        self._total = total
        self._interval = interval
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._shown = 0
        self._bar: Any = None
        if bar:
            try:
                tqdm = importlib.import_module("tqdm").tqdm  # optional: the cli extra
            except ImportError:
                sys.stderr.write("pusher-fast: install pusher-fast[cli] for a progress bar\n")
            else:
                self._bar = tqdm(total=total, unit="line", file=sys.stderr, dynamic_ncols=True)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._show()
        if self._bar is not None:
            self._bar.close()

    def _run(self) -> None:
        while not self._stop.wait(0.2 if self._bar is not None else self._interval):
            self._show()

    def _show(self) -> None:
        done = self._sender.lines_done
        failed = len(self._sender.report.failed)
        if self._bar is not None:
            self._bar.set_postfix(failed=failed, refresh=False)
            self._bar.update(done - self._shown)
            self._shown = done
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = done / elapsed
        text = f"pusher-fast: {done}"
        if self._total:
            left = (self._total - done) / rate if rate else float("inf")
            eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left < 86400 * 7 else "?"
            text += f"/{self._total} lines ({100 * done / self._total:.1f}%)"
            text += f", {rate:.0f} lines/s, {eta} left"
        else:
            text += f" lines, {rate:.0f} lines/s"
        sys.stderr.write(f"{text}, {failed} events failed\n")
        sys.stderr.flush()


def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    client = _client(args)
    from_stdin = args.file in (None, "-")
    try:
        total = None if from_stdin else _count_lines(args.file, args.start_line)
        stream: TextIO = sys.stdin if from_stdin else open(args.file, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    try:  # fail fast on bad credentials or an unreachable server
        client.channels_info()
    except BaseException as exc:
        if not from_stdin:
            stream.close()
        if isinstance(exc, PusherBadAuth):
            raise UsageError(f"credentials refused by {client.base_url}: {exc}") from None
        raise
    sender = _LineSender(
        client,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        retries=args.retries,
        max_queue=args.max_queue,
    )
    progress = None
    if args.progress is not False:
        on_tty = sys.stderr.isatty()
        progress = _Progress(sender, total, bar=on_tty, interval=args.progress_interval)
    try:
        if progress:
            progress.__enter__()
        with sender:
            run = _feed(sender, stream, args.start_line)
    finally:
        if progress:
            progress.__exit__(None, None, None)
        if not from_stdin:
            stream.close()
    return _finish(args, sender, run, out)


@dataclass
class _Run:
    """What reading the input came to."""

    last_read: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


def _feed(sender: _LineSender, stream: TextIO, start_line: int) -> _Run:
    """Add each line's event to ``sender``; a bad line is recorded, Ctrl-C stops reading."""
    run = _Run(start_line - 1)
    try:
        with _CtrlC(sender) as ctrl_c:
            for number, line in _lines(stream, start_line):
                ctrl_c.busy = True  # no KeyboardInterrupt until the line is accounted for
                _feed_line(sender, run, number, line)
                run.last_read = number
                ctrl_c.busy = False
                if sender.interrupted:
                    raise KeyboardInterrupt
    except (KeyboardInterrupt, _StopAdding):
        # Stop reading; what was queued is still sent (bounded) and accounted for.
        run.interrupted = True
        sender.shutdown_timeout = min(sender.shutdown_timeout, 10.0)
        sys.stderr.write("pusher-fast: interrupted, sending what is queued\n")
    return run


def _feed_line(sender: _LineSender, run: _Run, number: int, line: str) -> None:
    """Add one line's event, or record the line as rejected."""
    event, why = _check_event(line)
    if event is not None:
        sender.line = number
        try:
            sender.add(
                event.get("channel", ()),
                event["name"],
                event["data"],
                event.get("socket_id"),
                channels=event.get("channels"),
            )
        except (ValueError, TypeError) as exc:
            event, why = None, str(exc)
    if event is None:
        run.rejected.append({"line": number, "error": why, "input": line.rstrip("\n")})
        sender.line_rejected()


def _finish(args: argparse.Namespace, sender: _LineSender, run: _Run, out: TextIO) -> int:
    """Report the run: rejected lines, the failures file, the summary and the exit code."""
    rejected = run.rejected
    for record in rejected:
        sys.stderr.write(f"pusher-fast: line {record['line']}: {record['error']}\n")
    failures = sorted(rejected + sender.failures, key=lambda r: r["line"] or 0)
    if args.failures and failures:
        with open(args.failures, "w", encoding="utf-8") as handle:
            for record in failures:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary: dict[str, Any] = dict(sender.report.as_dict())  # plus the CLI's own keys
    summary["bad_lines"] = len(rejected)
    summary["failures_file"] = args.failures if failures and args.failures else None
    summary["interrupted"] = run.interrupted
    if run.interrupted:
        resume = run.last_read + 1
        lost = [r["line"] for r in sender.failures if r["line"] is not None]
        if lost and not args.failures:
            resume = min(resume, *lost)  # no failures file: those events must be sent again
        summary["resume_line"] = resume
    _print_json(summary, out)
    if run.interrupted:
        where = f" {args.file}" if args.file not in (None, "-") else ""
        saved = f" (failed events are in {args.failures})" if args.failures and failures else ""
        sys.stderr.write(
            f"pusher-fast: interrupted after line {run.last_read}{saved}; resume with: "
            f"pusher-fast send{where} --start-line {summary['resume_line']}\n"
        )
        return EXIT_INTERRUPTED
    return EXIT_OK if sender.report.ok and not rejected else EXIT_FAILED


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


def _credentials_parser() -> argparse.ArgumentParser:
    """The credential options every API command takes."""
    creds = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    group = creds.add_argument_group(
        "credentials",
        "Default: $PUSHER_URL. Otherwise --app-id and --key with the secret from "
        "$PUSHER_SECRET or --secret-file. Do not pass the secret on the command line: "
        "other users of the machine can read it (ps, shell history).",
    )
    group.add_argument(
        "--url", help="http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID (prefer $PUSHER_URL)"
    )
    group.add_argument("--app-id", help="the app's id")
    group.add_argument("--key", help="the app's key")
    group.add_argument(
        "--secret-file",
        metavar="PATH",
        help="read the secret from this file (default: $PUSHER_SECRET)",
    )
    group.add_argument(
        "--secret", help="the secret itself: visible to other users, prefer $PUSHER_SECRET"
    )
    group.add_argument("--cluster", help="e.g. eu, us2 (host api-CLUSTER.pusher.com)")
    group.add_argument("--host", help="API host (default: api.pusherapp.com, or from --cluster)")
    group.add_argument(
        "--port", type=_bounded(int, 1, 65535), help="API port (default: 443, or 80 with --no-ssl)"
    )
    group.add_argument("--no-ssl", action="store_true", help="plain HTTP")
    group.add_argument("--timeout", type=_positive_float, default=5.0, help="seconds per request")
    return creds


def _send_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``send``."""
    p.add_argument(
        "file", nargs="?", help='JSON lines {"channel"|"channels", "name", "data"} (default: stdin)'
    )
    p.add_argument(
        "--failures",
        metavar="PATH",
        help="write rejected lines and failed events here, as JSON lines with their line numbers "
        "(failed events can be replayed with send)",
    )
    p.add_argument(
        "--start-line", type=_positive_int, default=1, help="skip the lines before this one"
    )
    p.add_argument("--batch-size", type=_positive_int, default=10, help="events per request")
    p.add_argument("--concurrency", type=_positive_int, default=4, help="requests in flight")
    p.add_argument(
        "--max-queue",
        type=_positive_int,
        default=10_000,
        help="events read ahead of sending (what Ctrl-C still sends)",
    )
    p.add_argument(
        "--retries", type=_non_negative_int, default=5, help="retries of a failed request"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress (default: a bar on a terminal, else periodic log lines)",
    )
    p.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress log lines when not on a terminal",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pusher-fast",
        description=f"Pusher Channels HTTP API from the command line (signing: {IMPLEMENTATION}).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"pusher-fast {VERSION} (signing: {IMPLEMENTATION})"
    )
    creds = _credentials_parser()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, parents: list[argparse.ArgumentParser]) -> Any:
        return sub.add_parser(
            name, parents=parents, help=text, description=text, epilog=EPILOG,
            formatter_class=_HelpFormatter,
        )  # fmt: skip

    p = command("trigger", "trigger one event", [creds])
    p.add_argument("channel")
    p.add_argument("event")
    p.add_argument("data", nargs="?", default="{}", help="event data, sent as given")
    p.add_argument("--socket-id", help="exclude this connection from receiving the event")
    p.set_defaults(func=cmd_trigger)

    p = command("send", "send JSON-lines events through the bulk sender", [creds])
    _send_arguments(p)
    p.set_defaults(func=cmd_send)

    p = command("channels", "list occupied channels", [creds])
    p.add_argument("--prefix", help="only channels starting with this")
    p.add_argument("--info", help="attributes, e.g. user_count")
    p.set_defaults(func=cmd_channels)
    p = command("channel", "one channel's state", [creds])
    p.add_argument("channel")
    p.add_argument("--info", help="attributes, e.g. subscription_count,user_count")
    p.set_defaults(func=cmd_channels)
    p = command("users", "users on a presence channel", [creds])
    p.add_argument("channel")
    p.set_defaults(func=cmd_channels)

    p = command("bench", "signing micro-benchmarks (this library vs the floor)", [])
    p.add_argument("--seconds", type=_positive_float, default=0.2, help="time per case")
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
        return _run(args)
    finally:
        while _OPENED:
            _OPENED.pop().close()


def _run(args: argparse.Namespace) -> int:
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
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

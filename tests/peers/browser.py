"""Drive a real pusher-js client (``tests/peers/client.js``, Node) from Python.

Usage::

    from tests.peers.browser import BrowserClient

    with BrowserClient(soketi, auth_server, user_id="alice", user_info={"name": "Alice"}) as b:
        socket_id = b.socket_id                       # waits for the "connected" report
        b.subscribe("private-foo")                    # waits for "subscribed" (or raises)
        ev = b.wait_for_event("private-foo", "my-event", timeout=5)
        ev["data"]                                    # parsed by pusher-js (decrypted if encrypted)

``BrowserClient(soketi, auth=None, *, key=None, user_id=None, user_info=None, auth_params=None,
user_auth_params=None, channel_auth_url=None, user_auth_url=None, connect_timeout=10.0,
log_to_console=False)``:

- ``soketi``: a ``SoketiServer`` (or anything with ``.host``, ``.port``, ``.key``); ``auth``: an
  ``AuthServer`` (its ``channel_auth_url`` / ``user_auth_url`` are used unless given explicitly).
- ``user_id`` / ``user_info``: sent as form fields ``user_id`` / ``user_info`` (JSON) with every
  channel-auth and user-auth request (pusher-js ``params``); the ``AuthServer`` turns them into
  the presence ``custom_data`` / sign-in ``user_data``.
- Commands: ``subscribe(channel, wait=True, timeout=5)`` (returns the ``subscribed`` report, raises
  ``SubscriptionError`` on ``subscription_error``), ``unsubscribe``, ``signin(wait=True)``
  (returns ``signed_in`` once the ``#server-to-user-<id>`` channel is subscribed too),
  ``disconnect``, ``reconnect``, ``members(channel)``, ``state()``, ``send(cmd_dict)``.
- Reports are JSON dicts with a ``type``: ``connected`` (``socket_id``), ``state_change``,
  ``disconnected``, ``subscribed``, ``subscription_error``, ``event`` (``channel``, ``event``,
  ``data``), ``member_added``, ``member_removed``, ``signed_in`` (``user_data``),
  ``user_subscribed``, ``user_event`` (send_to_user events), ``pusher_error`` (a
  ``pusher:error`` frame, e.g. code 4009), ``connection_error``, ``error``, ``exit``.
  ``reports`` holds all of them; ``events(channel=None, event=None)`` the received events.
- ``wait_for(kind, predicate=None, timeout=5.0)`` returns the first report of that type matching
  the predicate (already received or arriving before the timeout), else raises ``TimeoutError``
  with everything received so far. ``wait_for_event(channel, event, predicate=None, timeout)``.
- ``stop()`` (also on ``__exit__``): asks the client to exit, then terminates/kills it by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

from . import NODE_MODULES, node_executable, peers_missing_reason

CLIENT_JS = Path(__file__).with_name("client.js")

Report = dict[str, Any]


class SubscriptionError(RuntimeError):
    def __init__(self, report: Report) -> None:
        super().__init__(f"subscription failed: {report}")
        self.report = report


class BrowserClient:
    def __init__(
        self,
        soketi: Any,
        auth: Any = None,
        *,
        key: str | None = None,
        user_id: str | None = None,
        user_info: Any = None,
        auth_params: dict[str, str] | None = None,
        user_auth_params: dict[str, str] | None = None,
        channel_auth_url: str | None = None,
        user_auth_url: str | None = None,
        connect_timeout: float = 10.0,
        wait_connected: bool = True,
        log_to_console: bool = False,
    ) -> None:
        reason = peers_missing_reason()
        if reason:
            raise RuntimeError(reason)
        host = getattr(soketi, "host", "127.0.0.1")
        if host != "127.0.0.1":
            raise ValueError(f"only 127.0.0.1 is allowed, got {host!r}")
        params: dict[str, str] = {}
        if user_id is not None:
            params["user_id"] = str(user_id)
        if user_info is not None:
            params["user_info"] = json.dumps(user_info)
        options = {
            "key": key or soketi.key,
            "wsHost": host,
            "wsPort": int(soketi.port),
            "authEndpoint": channel_auth_url or (auth.channel_auth_url if auth else None),
            "userAuthEndpoint": user_auth_url or (auth.user_auth_url if auth else None),
            "authParams": {**params, **(auth_params or {})},
            "userAuthParams": {**params, **(user_auth_params or {})},
            "logToConsole": log_to_console,
        }
        env = dict(os.environ)
        env["NODE_PATH"] = str(NODE_MODULES)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        node = node_executable()
        assert node is not None
        self.reports: list[Report] = []
        self.stderr_lines: list[str] = []
        self._cond = threading.Condition()
        self._stopped = False
        self.process = subprocess.Popen(
            [node, str(CLIENT_JS), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(CLIENT_JS.parent),
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.pid = self.process.pid
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._readers:
            t.start()
        if wait_connected:
            try:
                self.wait_for("connected", timeout=connect_timeout)
            except BaseException:
                self.stop()
                raise

    # -- I/O -----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                report = json.loads(line)
            except ValueError:
                report = {"type": "stdout", "line": line}
            with self._cond:
                self.reports.append(report)
                self._cond.notify_all()
        with self._cond:
            self.reports.append({"type": "process_exit"})
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._cond:
                self.stderr_lines.append(line.rstrip("\n"))

    def send(self, command: dict[str, Any]) -> None:
        if self.process.poll() is not None or self.process.stdin is None:
            raise RuntimeError(f"client.js is not running; reports: {self._summary()}")
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    # -- waiting -------------------------------------------------------------------------------
    def _summary(self, limit: int = 40) -> str:
        with self._cond:
            reps = self.reports[-limit:]
            err = self.stderr_lines[-20:]
        text = "\n  ".join(json.dumps(r)[:400] for r in reps)
        if err:
            text += "\n stderr:\n  " + "\n  ".join(err)
        return text

    def wait_for(
        self,
        kind: str | Iterable[str],
        predicate: Callable[[Report], bool] | None = None,
        timeout: float = 5.0,
        *,
        start: int = 0,
    ) -> Report:
        """First report whose ``type`` is ``kind`` (or one of them) and that matches ``predicate``,
        looking at reports from index ``start`` on; waits at most ``timeout`` seconds."""
        kinds = {kind} if isinstance(kind, str) else set(kind)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.reports):
                    r = self.reports[i]
                    i += 1
                    if r.get("type") in kinds and (predicate is None or predicate(r)):
                        return r
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
        raise TimeoutError(
            f"no {sorted(kinds)} report within {timeout}s (pid {self.pid}). "
            f"Got:\n  {self._summary()}"
        )

    def wait_for_event(
        self,
        channel: str,
        event: str,
        predicate: Callable[[Report], bool] | None = None,
        timeout: float = 5.0,
    ) -> Report:
        return self.wait_for(
            "event",
            lambda r: (
                r.get("channel") == channel
                and r.get("event") == event
                and (predicate is None or predicate(r))
            ),
            timeout,
        )

    def events(self, channel: str | None = None, event: str | None = None) -> list[Report]:
        with self._cond:
            return [
                r
                for r in self.reports
                if r.get("type") == "event"
                and (channel is None or r.get("channel") == channel)
                and (event is None or r.get("event") == event)
            ]

    def mark(self) -> int:
        """Index of the next report: pass as ``start=`` to ``wait_for`` to ignore older ones."""
        with self._cond:
            return len(self.reports)

    # -- commands ------------------------------------------------------------------------------
    @property
    def socket_id(self) -> str:
        """The socket id of the most recent connection."""
        with self._cond:
            for r in reversed(self.reports):
                if r.get("type") == "connected":
                    return str(r["socket_id"])
        return str(self.wait_for("connected")["socket_id"])

    def subscribe(self, channel: str, *, wait: bool = True, timeout: float = 5.0) -> Report | None:
        start = self.mark()
        self.send({"cmd": "subscribe", "channel": channel})
        if not wait:
            return None
        r = self.wait_for(
            ("subscribed", "subscription_error"),
            lambda r: r.get("channel") == channel,
            timeout,
            start=start,
        )
        if r["type"] == "subscription_error":
            raise SubscriptionError(r)
        return r

    def unsubscribe(self, channel: str) -> None:
        start = self.mark()
        self.send({"cmd": "unsubscribe", "channel": channel})
        self.wait_for("unsubscribed", lambda r: r.get("channel") == channel, 5.0, start=start)

    def signin(self, *, wait: bool = True, timeout: float = 5.0) -> Report | None:
        """Sign in (user authentication); with ``wait``, returns the ``signed_in`` report once
        pusher-js has also subscribed to the user's ``#server-to-user-<id>`` channel."""
        start = self.mark()
        self.send({"cmd": "signin"})
        if not wait:
            return None
        signed_in = self.wait_for("signed_in", None, timeout, start=start)
        self.wait_for("user_subscribed", None, timeout, start=start)
        return signed_in

    def members(self, channel: str, timeout: float = 5.0) -> Report:
        start = self.mark()
        self.send({"cmd": "members", "channel": channel})
        return self.wait_for("members", lambda r: r.get("channel") == channel, timeout, start=start)

    def state(self, timeout: float = 5.0) -> Report:
        start = self.mark()
        self.send({"cmd": "state"})
        return self.wait_for("state", None, timeout, start=start)

    def disconnect(self) -> None:
        self.send({"cmd": "disconnect"})

    def reconnect(self) -> None:
        self.send({"cmd": "connect"})

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self, timeout: float = 3.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        proc = self.process
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.write(json.dumps({"cmd": "exit"}) + "\n")
                    proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
        for t in self._readers:  # the process is gone: they reach EOF
            t.join(timeout=2.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> BrowserClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<BrowserClient pid={self.pid}>"

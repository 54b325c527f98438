"""Start and stop a real soketi server (Pusher-protocol server) bound to 127.0.0.1 only.

Usage::

    from tests.peers.soketi import start_soketi

    with start_soketi() as server:            # or: server = start_soketi(); ...; server.stop()
        client = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                               host=server.host, port=server.port, ssl=False)

``start_soketi(apps=None, *, webhook_url=None, webhook_events=DEFAULT_WEBHOOK_EVENTS,
user_authentication=False, user_authentication_timeout_ms=15000, options=None,
startup_timeout=30.0) -> SoketiServer``

- ``apps``: list of app dicts in soketi's array-app-manager format (``id``, ``key``, ``secret``,
  optionally ``webhooks``, ``enableUserAuthentication``, ``enableClientMessages``,
  ``maxEventPayloadInKb``, ...). Default: one app, :data:`DEFAULT_APP` (id ``123456``: the
  official Python library only accepts numeric app ids).
- ``webhook_url``: added to every app that has no ``webhooks`` of its own, for ``webhook_events``.
- ``user_authentication``: sets ``enableUserAuthentication`` on every app that does not set it.
  Then soketi drops connections that do not sign in within ``user_authentication_timeout_ms``.
- ``options``: extra soketi options, dotted keys as in soketi's config
  (``{"eventLimits.maxPayloadInKb": 200}``).

``SoketiServer`` has ``host`` (``127.0.0.1``), ``port`` (HTTP API and WebSocket), ``url``
(``http://127.0.0.1:PORT``), ``metrics_port``, ``cluster_port`` (UDP), ``apps``, ``app`` (the
first app), ``app_id`` / ``key`` / ``secret`` (of the first app), ``client_kwargs()`` (for
``Pusher(**kwargs)``), ``pid``, ``config`` (what was written), ``log()`` (soketi's output so far),
``alive()``, ``stop()``; it is a context manager.

Loopback only: soketi listens on 0.0.0.0 by default and its cluster discovery (node-discover)
broadcasts UDP to 255.255.255.255. The JSON config written here pins ``host``, ``metrics.host``,
``cluster.address`` (UDP bind), ``cluster.unicast`` (UDP destination: itself) and
``cluster.broadcast`` to 127.0.0.1, with free ports for all three. soketi reads ``SOKETI_*``
environment variables and ``./.env`` *after* the config file, so those variables are removed
from its environment and it runs in a fresh temporary directory.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import NODE_MODULES, SOKETI_BIN, node_executable, peers_missing_reason

LOOPBACK = "127.0.0.1"

DEFAULT_APP: dict[str, Any] = {
    "id": "123456",
    "key": "pf-test-key",
    "secret": "pf-test-secret",
}

DEFAULT_WEBHOOK_EVENTS: tuple[str, ...] = (
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
)

_RUNNING: set[SoketiServer] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 right now (TCP by default, or ``socket.SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _free_tcp_ports(n: int) -> list[int]:
    # Hold all sockets open while choosing, so the ports are distinct.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class SoketiError(RuntimeError):
    pass


class SoketiServer:
    host = LOOPBACK

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        metrics_port: int,
        cluster_port: int,
        apps: list[dict[str, Any]],
        config: dict[str, Any],
        workdir: tempfile.TemporaryDirectory[str],
        log_path: Path,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.port = port
        self.metrics_port = metrics_port
        self.cluster_port = cluster_port
        self.apps = apps
        self.config = config
        self._workdir = workdir
        self.log_path = log_path
        self._stopped = False

    # -- convenience -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def app(self) -> dict[str, Any]:
        return self.apps[0]

    @property
    def app_id(self) -> str:
        return str(self.app["id"])

    @property
    def key(self) -> str:
        return str(self.app["key"])

    @property
    def secret(self) -> str:
        return str(self.app["secret"])

    def client_kwargs(self, app: dict[str, Any] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``Pusher(...)`` (official API) pointing at this server."""
        app = app or self.app
        return {
            "app_id": str(app["id"]),
            "key": str(app["key"]),
            "secret": str(app["secret"]),
            "host": self.host,
            "port": self.port,
            "ssl": False,
        }

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Stop soketi by PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        _RUNNING.discard(self)
        proc = self.process
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        try:
            self._workdir.cleanup()
        except OSError:
            pass

    def __enter__(self) -> SoketiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SoketiServer pid={self.pid} {self.url} apps={[a['id'] for a in self.apps]}>"


def listening_tcp_ports(pid: int) -> set[tuple[str, int]] | None:
    """(address, port) of the TCP sockets the process ``pid`` listens on (IPv4), from /proc;
    None where /proc is not available."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] != "0A" or parts[9] not in inodes:  # 0A: LISTEN
                    continue
                addr_hex, port_hex = parts[1].split(":")
                addr = socket.inet_ntoa(int(addr_hex, 16).to_bytes(4, "little"))
                found.add((addr, int(port_hex, 16)))
    except OSError:
        return None
    return found


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    # No proxies: every request goes straight to 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def build_config(
    *,
    port: int,
    metrics_port: int,
    cluster_port: int,
    apps: list[dict[str, Any]],
    user_authentication_timeout_ms: int,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The soketi JSON config. Keys are dotted paths: soketi applies each top-level key of the
    config file with ``dot.set``, so ``{"cluster": {...}}`` would wipe the other cluster
    defaults, while ``"cluster.address"`` changes just that one."""
    config: dict[str, Any] = {
        "debug": False,
        "host": LOOPBACK,
        "port": port,
        "mode": "full",
        "metrics.enabled": False,
        "metrics.host": LOOPBACK,
        "metrics.port": metrics_port,
        # node-discover (UDP): bind to loopback, send hellos only to ourselves.
        "cluster.address": LOOPBACK,
        "cluster.port": cluster_port,
        "cluster.hostname": LOOPBACK,
        "cluster.unicast": f"{LOOPBACK}:{cluster_port}",
        "cluster.broadcast": LOOPBACK,
        "cluster.multicast": None,
        "adapter.driver": "local",
        "appManager.driver": "array",
        "appManager.cache.enabled": False,
        "appManager.array.apps": apps,
        "cache.driver": "memory",
        "queue.driver": "sync",
        "rateLimiter.driver": "local",
        "webhooks.batching.enabled": False,
        # Fast shutdown (default waits 3 s after closing sockets).
        "shutdownGracePeriod": 50,
        "userAuthenticationTimeout": user_authentication_timeout_ms,
    }
    if options:
        config.update(options)
    return config


def _prepare_apps(
    apps: Iterable[dict[str, Any]] | None,
    webhook_url: str | None,
    webhook_events: Iterable[str],
    user_authentication: bool,
) -> list[dict[str, Any]]:
    prepared = []
    for app in apps if apps is not None else [DEFAULT_APP]:
        a = dict(app)
        a["id"] = str(a["id"])
        a.setdefault("enabled", True)
        a.setdefault("enableClientMessages", False)
        a.setdefault("maxConnections", -1)
        a.setdefault("maxBackendEventsPerSecond", -1)
        a.setdefault("maxClientEventsPerSecond", -1)
        a.setdefault("maxReadRequestsPerSecond", -1)
        if "webhooks" not in a:
            a["webhooks"] = (
                [{"url": webhook_url, "event_types": list(webhook_events)}] if webhook_url else []
            )
        a.setdefault("enableUserAuthentication", bool(user_authentication))
        prepared.append(a)
    if not prepared:
        raise ValueError("at least one app is needed")
    return prepared


def start_soketi(
    apps: Iterable[dict[str, Any]] | None = None,
    *,
    webhook_url: str | None = None,
    webhook_events: Iterable[str] = DEFAULT_WEBHOOK_EVENTS,
    user_authentication: bool = False,
    user_authentication_timeout_ms: int = 15000,
    options: dict[str, Any] | None = None,
    startup_timeout: float = 30.0,
    attempts: int = 2,
) -> SoketiServer:
    """Start soketi on free loopback ports and wait until its HTTP API answers."""
    reason = peers_missing_reason()
    if reason:
        raise SoketiError(reason)
    if webhook_url is not None and not webhook_url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"webhook_url must be on http://{LOOPBACK}: got {webhook_url!r}")
    prepared = _prepare_apps(apps, webhook_url, webhook_events, user_authentication)
    last_error: Exception | None = None
    for _ in range(max(1, attempts)):
        try:
            return _start_once(prepared, user_authentication_timeout_ms, options, startup_timeout)
        except SoketiError as e:  # e.g. a port was taken between choosing and binding
            last_error = e
    assert last_error is not None
    raise last_error


def _start_once(
    apps: list[dict[str, Any]],
    user_authentication_timeout_ms: int,
    options: dict[str, Any] | None,
    startup_timeout: float,
) -> SoketiServer:
    port, metrics_port = _free_tcp_ports(2)
    cluster_port = free_port(socket.SOCK_DGRAM)
    config = build_config(
        port=port,
        metrics_port=metrics_port,
        cluster_port=cluster_port,
        apps=apps,
        user_authentication_timeout_ms=user_authentication_timeout_ms,
        options=options,
    )
    workdir = tempfile.TemporaryDirectory(prefix="soketi-")
    wd = Path(workdir.name)
    config_path = wd / "soketi.json"
    config_path.write_text(json.dumps(config, indent=2))
    log_path = wd / "soketi.log"

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SOKETI_")}
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["DISCOVERY_HOSTNAME"] = LOOPBACK
    # soketi's @pm2/io probes $PM2_HOME/interactor.sock (a unix socket): keep it in the temp dir.
    env["PM2_HOME"] = str(wd / ".pm2")
    env["NODE_PATH"] = str(NODE_MODULES)

    node = node_executable()
    assert node is not None
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [node, str(SOKETI_BIN.resolve()), "start", f"--config={config_path}"],
            cwd=wd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    server = SoketiServer(
        process=proc,
        port=port,
        metrics_port=metrics_port,
        cluster_port=cluster_port,
        apps=apps,
        config=config,
        workdir=workdir,
        log_path=log_path,
    )
    _RUNNING.add(server)

    deadline = time.monotonic() + startup_timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = server.log()
            server.stop()
            raise SoketiError(f"soketi exited with {proc.returncode} during startup:\n{log}")
        try:
            status, body = _http_get(f"{server.url}/", timeout=1.0)
            if status == 200 and body.strip() == b"OK" and proc.poll() is None:
                # soketi logs "up and running" even when uWS could not bind the port, and then
                # someone else answered: check that this process is the one listening.
                ports = listening_tcp_ports(proc.pid)
                if ports is None or (LOOPBACK, port) in ports:
                    return server
                log = server.log()
                server.stop()
                raise SoketiError(f"port {port} is taken by another process. Output:\n{log}")
        except OSError as e:
            last = e
        time.sleep(0.05)
    log = server.log()
    server.stop()
    raise SoketiError(
        f"soketi did not answer on {server.url} within {startup_timeout}s ({last!r}). "
        f"Output:\n{log}"
    )


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(timeout=2.0)

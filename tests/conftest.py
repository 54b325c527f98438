"""Shared pytest configuration and real-peer fixtures.

Markers:
- ``integration``: needs the real peers (Node, ``peers/node_modules``). When they are missing the
  test is skipped, or FAILS if the environment variable ``CI`` is set.
- ``deviation``: relies on a deliberate deviation of pusher_fast from the official library
  (README), or on a pusher_fast-only extension (bulk sender, ``AsyncPusher``); skipped when the
  module under test is the official ``pusher``.

Module under test: the ``pusher_module`` fixture returns ``pusher_fast``, or the official
``pusher`` package when ``PEER_TEST_MODULE=pusher`` (to show the official library passes the same
tests); the name is decided by ``tests.peers.module_under_test_name()`` only.

Fixtures (session-scoped servers are shared: use unique channel names, see ``uid``):
- ``pusher_module`` (session): the module under test.
- ``master_key_b64`` (session): the base64 encryption master key used by all clients.
- ``soketi`` (session): ``SoketiServer`` (app ``123456``), no user authentication, no webhooks.
- ``soketi_user_auth`` (session): ``SoketiServer`` with user authentication enabled (connections
  that do not sign in are dropped after 15 s) and webhooks (channel_occupied, channel_vacated,
  member_added, member_removed, client_event) sent to ``auth_server.webhook_url``. Same app id,
  key and secret as ``soketi``.
- ``auth_server`` (function; the server itself lives for the session): ``AuthServer`` whose
  ``client`` is a fresh ``pusher_module.Pusher`` for the shared app; its hooks and extra clients
  are reset after each test.
- ``make_client`` (function): ``make_client(server=soketi, **overrides) -> pusher_module.Pusher``
  pointing at ``server`` (``host='127.0.0.1'``, ``port``, ``ssl=False``, the master key).
- ``pusher_client`` / ``pusher_client_user_auth`` (function): ``make_client(soketi)`` and
  ``make_client(soketi_user_auth)``.
- ``browser`` (function): factory ``browser(server=None, **BrowserClient kwargs) -> BrowserClient``
  (defaults to ``soketi`` and ``auth_server``); every client is stopped after the test.
- ``uid`` (function): a short unique string for channel and user names.
"""

from __future__ import annotations

import base64
import importlib
import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from tests.peers import (  # noqa: E402
    MASTER_KEY,
    MODULE_ENV,
    module_under_test_name,
    official_module_under_test,
    peers_missing_reason,
)
from tests.peers.auth_server import AuthServer, start_auth_server  # noqa: E402
from tests.peers.browser import BrowserClient  # noqa: E402
from tests.peers.soketi import SoketiServer, start_soketi  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: needs real peers (soketi, pusher-js under Node); "
        "skipped when peers/node_modules is missing, a failure if $CI is set",
    )
    config.addinivalue_line(
        "markers", "slow: takes seconds (real servers, several processes); -m 'not slow' skips"
    )
    config.addinivalue_line(
        "markers",
        "deviation: relies on a deliberate deviation from (or an extension of) the official "
        "pusher library; "
        f"skipped when {MODULE_ENV}=pusher",
    )


def pytest_report_header(config: pytest.Config) -> str:
    name = module_under_test_name()
    return f"module under test: {name} (set {MODULE_ENV}=pusher for the official one)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration") is not None:
        reason = peers_missing_reason()
        if reason:
            if os.environ.get("CI"):
                pytest.fail(f"real peers are required in CI: {reason}", pytrace=False)
            pytest.skip(f"real peers unavailable: {reason}")
    if item.get_closest_marker("deviation") is not None and official_module_under_test():
        pytest.skip("relies on a deliberate deviation from / extension of the official library")


# -- module under test -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pusher_module() -> Any:
    return importlib.import_module(module_under_test_name())


@pytest.fixture(scope="session")
def master_key_b64() -> str:
    return base64.b64encode(MASTER_KEY).decode("ascii")


# -- servers -----------------------------------------------------------------------------------


def _require_peers() -> None:
    reason = peers_missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"real peers are required in CI: {reason}", pytrace=False)
        pytest.skip(f"real peers unavailable: {reason}")


@pytest.fixture(scope="session")
def soketi() -> Iterator[SoketiServer]:
    _require_peers()
    server = start_soketi()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _auth_server_session() -> Iterator[AuthServer]:
    server = start_auth_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def soketi_user_auth(_auth_server_session: AuthServer) -> Iterator[SoketiServer]:
    _require_peers()
    server = start_soketi(
        user_authentication=True,
        user_authentication_timeout_ms=15000,
        webhook_url=_auth_server_session.webhook_url,
    )
    try:
        yield server
    finally:
        server.stop()


# -- clients -----------------------------------------------------------------------------------


@pytest.fixture
def make_client(
    pusher_module: Any, soketi: SoketiServer, master_key_b64: str
) -> Callable[..., Any]:
    def make(server: SoketiServer | None = None, **overrides: Any) -> Any:
        kwargs: dict[str, Any] = dict((server or soketi).client_kwargs())
        kwargs["encryption_master_key_base64"] = master_key_b64
        kwargs.update(overrides)
        return pusher_module.Pusher(**kwargs)

    return make


@pytest.fixture
def pusher_client(make_client: Callable[..., Any]) -> Any:
    return make_client()


@pytest.fixture
def pusher_client_user_auth(make_client: Callable[..., Any], soketi_user_auth: SoketiServer) -> Any:
    return make_client(soketi_user_auth)


@pytest.fixture
def auth_server(
    _auth_server_session: AuthServer, make_client: Callable[..., Any]
) -> Iterator[AuthServer]:
    server = _auth_server_session
    server.client = make_client()
    try:
        yield server
    finally:
        server.client = None
        server.clients.clear()
        server.presence_data = None
        server.user_data = None
        server.auth_requests.clear()


@pytest.fixture
def browser(
    soketi: SoketiServer, auth_server: AuthServer
) -> Iterator[Callable[..., BrowserClient]]:
    clients: list[BrowserClient] = []

    def make(server: SoketiServer | None = None, **kwargs: Any) -> BrowserClient:
        kwargs.setdefault("auth", auth_server)
        client = BrowserClient(server or soketi, **kwargs)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.stop()


_uid_counter = itertools.count(1)


@pytest.fixture
def uid() -> str:
    return f"t{os.getpid() % 10000}x{int(time.time() * 1000) % 100000}n{next(_uid_counter)}"


# -- shared fixtures of the transport tests ----------------------------------------------------

PROXY_VARIABLES = ["http_proxy", "https_proxy", "all_proxy", "no_proxy"]


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variables: a proxy would change which transport a client gets."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def mini() -> Iterator[Any]:
    """A scriptable raw HTTP server on 127.0.0.1 (``tests.helpers.MiniServer``)."""
    from tests.helpers import MiniServer

    server = MiniServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def faults() -> Iterator[Any]:
    """A scripted fault-injecting server on 127.0.0.1 (``tests.faultserver.FaultServer``)."""
    from tests.faultserver import FaultServer

    server = FaultServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A self-signed CA and a certificate for 127.0.0.1 (``tests.helpers.Certificates``)."""
    import shutil

    from tests.helpers import cryptography_certs, openssl_certs

    folder = tmp_path_factory.mktemp("tls")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl is available")
        return openssl_certs(folder)
    return cryptography_certs(folder)


@pytest.fixture
def tls_server(certificates: Any) -> Iterator[Any]:
    """A MiniServer speaking TLS with ``certificates``."""
    from tests.helpers import tls_mini_server

    server = tls_mini_server(certificates.cert, certificates.key)
    try:
        yield server
    finally:
        server.stop()


# -- the two socket transports, one scenario each ------------------------------------------------


class SocketTransportHarness:
    """Drives the sync or the asyncio socket transport through one API, so a scenario is
    written once: ``client(port, **options)`` makes a client on it, ``run(value)`` returns a
    result (awaiting it, on one event loop for the whole test, when it is a coroutine), and
    ``http(client)`` is the client's transport, checked to be the one under test."""

    def __init__(self, kind: str) -> None:
        import asyncio

        from pusher_fast.transports import AsyncSocketTransport, SocketTransport

        self.kind = kind
        self.is_async = kind == "async"
        self.transport: type = AsyncSocketTransport if self.is_async else SocketTransport
        self.loop = asyncio.new_event_loop() if self.is_async else None
        self._clients: list[Any] = []

    def client(self, port: int, **options: Any) -> Any:
        import pusher_fast
        from pusher_fast.aio import AsyncPusher
        from tests.helpers import loopback_client

        options.setdefault("backend", self.transport)
        make = AsyncPusher if self.is_async else pusher_fast.Pusher
        client = loopback_client(make, port, **options)
        self._clients.append(client)
        return client

    def run(self, value: Any) -> Any:
        import inspect

        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(value)
        return value

    def http(self, client: Any) -> Any:
        assert type(client.http) is self.transport
        return client.http

    def close(self) -> None:
        for client in self._clients:
            if self.loop is None:
                client.close()
            else:
                self.loop.run_until_complete(client.aclose())
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def socket_transport(request: pytest.FixtureRequest) -> Iterator[SocketTransportHarness]:
    """Each socket transport in turn (``SocketTransport``, ``AsyncSocketTransport``)."""
    harness = SocketTransportHarness(request.param)
    try:
        yield harness
    finally:
        harness.close()

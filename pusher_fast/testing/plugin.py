"""pytest fixtures for code that talks to Pusher: a local Pusher HTTP API and a client for it.

Registered through the ``pytest11`` entry point, so installing ``pusher-fast`` makes these
fixtures available in every test session. Importing this module only defines fixtures: the
server and the client are imported when a test first asks for them.

- ``pusher_server``: a started :class:`pusher_fast.testing.PusherServer` (one per test).
- ``pusher_client``: a ``pusher_fast.Pusher`` pointed at ``pusher_server``.
- ``pusher_server_factory``: ``factory(**PusherServer kwargs)`` for servers with other limits,
  apps or keys; every server it made is stopped after the test.
- ``pusher_url``: ``pusher_server``'s ``PUSHER_URL``, also set in the environment for the test,
  so code that calls ``Pusher.from_env()`` reaches the local server.
- ``wait_for_events``: ``wait_for_events(count, timeout=5.0, channel=None, name=None)`` blocks
  until ``pusher_server`` accepted that many matching events (for code that sends from a
  thread or a bulk sender) and returns them.

Example::

    def test_order_created_is_announced(pusher_server, pusher_client):
        create_order(pusher_client, order_id=7)
        (event,) = pusher_server.events_for("orders", name="order-created")
        assert event.json() == {"id": 7}
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

import pytest

if TYPE_CHECKING:
    from ._server import PusherServer

__all__ = [
    "pusher_client",
    "pusher_server",
    "pusher_server_factory",
    "pusher_url",
    "wait_for_events",
]


@pytest.fixture
def pusher_server_factory() -> Iterator[Callable[..., PusherServer]]:
    """Make started ``PusherServer`` objects with any constructor arguments."""
    from ._server import PusherServer

    made: list[PusherServer] = []

    def factory(*args: Any, **kwargs: Any) -> PusherServer:
        server = PusherServer(*args, **kwargs).start()
        made.append(server)
        return server

    yield factory
    for server in reversed(made):
        server.stop()


@pytest.fixture
def pusher_server() -> Iterator[PusherServer]:
    """A local Pusher HTTP API on 127.0.0.1, stopped after the test."""
    from ._server import PusherServer

    with PusherServer() as server:
        yield server


@pytest.fixture
def pusher_client(pusher_server: PusherServer) -> Iterator[Any]:
    """A ``pusher_fast.Pusher`` whose requests go to ``pusher_server``."""
    import importlib

    # Looked up at run time: the fixture module must import even where pusher_fast.Pusher
    # cannot (for example while only the testing server is used).
    pusher_class = importlib.import_module("pusher_fast").Pusher
    client = pusher_class(**pusher_server.client_kwargs())
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


@pytest.fixture
def pusher_url(pusher_server: PusherServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``pusher_server``'s URL, also exported as ``PUSHER_URL`` for the test."""
    url = pusher_server.pusher_url
    monkeypatch.setenv("PUSHER_URL", url)
    return url


@pytest.fixture
def wait_for_events(pusher_server: PusherServer) -> Callable[..., list[Any]]:
    """``pusher_server.wait_for_events``: block until events arrived, return them."""
    return pusher_server.wait_for_events

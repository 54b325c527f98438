"""An embedded local Pusher Channels HTTP API, for development without an account and for tests.

``PusherServer`` is a real HTTP server on 127.0.0.1 (standard library only) that checks
signatures, timestamps and body MD5s, enforces the service's limits and answers with the
service's status codes; it records accepted events and requests, simulates channel occupancy and
presence members, and injects faults (errors, stalls, resets) on demand::

    import pusher_fast
    from pusher_fast.testing import PusherServer

    with PusherServer() as server:
        client = pusher_fast.Pusher(**server.client_kwargs())
        client.trigger("orders", "created", {"id": 1})
        assert server.events_for("orders")[0].json() == {"id": 1}

The pytest plugin (``pusher_fast.testing.plugin``) provides the fixtures ``pusher_server``,
``pusher_client``, ``pusher_url``, ``wait_for_events`` and ``pusher_server_factory``.
"""

from __future__ import annotations

from ._core import App, Limits, RecordedEvent, RecordedRequest, Reply
from ._server import DEFAULT_APP_ID, DEFAULT_KEY, DEFAULT_SECRET, PusherServer

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_KEY",
    "DEFAULT_SECRET",
    "App",
    "Limits",
    "PusherServer",
    "RecordedEvent",
    "RecordedRequest",
    "Reply",
]

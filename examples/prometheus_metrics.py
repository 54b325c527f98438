"""Prometheus metrics for pusher_fast requests, from the ``on_request=`` hook.

    pip install 'pusher-fast[prometheus]'

``metrics_hook()`` makes a request counter (by method, path, status or error) and a
latency histogram, and returns the callable to pass as ``on_request=``; serve them with
``prometheus_client.start_http_server(port)`` or your framework's metrics endpoint.
Run this file to see them against the embedded test server.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from pusher_fast import Pusher, RequestRecord

# /apps/<id>/channels/<name> would make one series per channel: keep the route only.
_CHANNEL = re.compile(r"^(/apps/[^/]+/channels)/[^/]+")


def route(path: str) -> str:
    """The path with channel names folded, so the label's values stay few."""
    return _CHANNEL.sub(r"\1/{channel}", path)


def metrics_hook(
    registry: Optional[CollectorRegistry] = None,
) -> Callable[[RequestRecord], None]:
    """Register the metrics in ``registry`` (the default one if None); the hook feeding them."""
    registry = REGISTRY if registry is None else registry
    requests = Counter(
        "pusher_requests",
        "Pusher HTTP API request attempts, by outcome",
        ["method", "path", "outcome"],
        registry=registry,
    )
    latency = Histogram(
        "pusher_request_duration_seconds",
        "Pusher HTTP API request attempt latency",
        ["method", "path"],
        registry=registry,
    )

    def on_request(record: RequestRecord) -> None:
        path = route(record.path)
        # The status when one came back, else the error's class (PusherTransportError...).
        outcome = str(record.status) if record.status is not None else str(record.error)
        requests.labels(record.method, path, outcome).inc()
        latency.labels(record.method, path).observe(record.duration)

    return on_request


def main() -> None:
    from pusher_fast.testing import PusherServer

    registry = CollectorRegistry()
    with PusherServer() as server:
        client = Pusher(**server.client_kwargs(), on_request=metrics_hook(registry))
        for i in range(3):
            client.trigger("orders", "created", {"id": i})
        client.channel_info("orders")
    print(generate_latest(registry).decode())


if __name__ == "__main__":
    main()

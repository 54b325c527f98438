"""OpenTelemetry spans for pusher_fast requests, from the ``on_request=`` hook.

    pip install 'pusher-fast[otel]'   # opentelemetry-api; configure an SDK to export

The hook runs after each attempt, so ``span_hook()`` makes a span with the attempt's
start and end times (from ``record.duration``), HTTP attributes, and an error status when
no answer came or the answer was an error.  Without an SDK configured, the API's default
tracer makes no-op spans, so leaving the hook installed costs next to nothing.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from pusher_fast import Pusher, RequestRecord


def span_hook(tracer: Optional[Tracer] = None) -> Callable[[RequestRecord], None]:
    """The ``on_request=`` hook making one CLIENT span per request attempt."""
    tracer = trace.get_tracer("pusher_fast") if tracer is None else tracer

    def on_request(record: RequestRecord) -> None:
        end = time.time_ns()
        start = end - int(record.duration * 1e9)
        attributes: dict[str, str | int | bool] = {
            "http.request.method": record.method,
            "url.path": record.path,  # never the query: it holds the signature
            "http.request.body.size": record.bytes_sent,
            "http.request.resend_count": record.attempt - 1,
        }
        if record.status is not None:
            attributes["http.response.status_code"] = record.status
        if record.error is not None:
            attributes["error.type"] = record.error
        if record.reused is not None:
            attributes["pusher.connection.reused"] = record.reused
        span = tracer.start_span(
            f"{record.method} {record.path}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if record.error is not None or (record.status is not None and record.status >= 400):
            span.set_status(Status(StatusCode.ERROR, record.error or str(record.status)))
        span.end(end_time=end)

    return on_request


def main() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    from pusher_fast.testing import PusherServer

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    with PusherServer() as server:
        client = Pusher(**server.client_kwargs(), on_request=span_hook(provider.get_tracer("demo")))
        client.trigger("orders", "created", {"id": 1})


if __name__ == "__main__":
    main()

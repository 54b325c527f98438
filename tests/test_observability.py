"""Logs and metrics: the ``pusher_fast`` logger, the ``on_request=`` hook and its
``RequestRecord``, and the two examples (Prometheus, OpenTelemetry) run against the embedded
server."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import pusher_fast
from pusher_fast import RequestRecord
from pusher_fast.aio import AsyncPusher
from pusher_fast.testing import PusherServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SECRET_DATA = "sensitive-payload-7f3a"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Any:
    with PusherServer() as srv:
        yield srv


def all_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as it would be shown, with its arguments and any traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) + repr(r.__dict__) for r in caplog.records)


def assert_nothing_secret(caplog: pytest.LogCaptureFixture, server: PusherServer) -> None:
    text = all_text(caplog)
    assert server.secret not in text
    assert "auth_signature" not in text
    assert "body_md5" not in text  # no query string at all
    assert SECRET_DATA not in text


# -- the logger --------------------------------------------------------------------------------


def test_the_logger_is_silent_by_default() -> None:
    logger = logging.getLogger("pusher_fast")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_debug_line_per_request(server: PusherServer, caplog: pytest.LogCaptureFixture) -> None:
    client = pusher_fast.Pusher(**server.client_kwargs())
    with caplog.at_level(logging.DEBUG, logger="pusher_fast"):
        client.trigger("orders", "created", {"secret": SECRET_DATA})
        client.trigger("orders", "created", {"secret": SECRET_DATA})
    lines = [r for r in caplog.records if r.name == "pusher_fast" and r.levelno == logging.DEBUG]
    assert [r.getMessage().split(" in ")[0] for r in lines] == [
        "POST /apps/123456/events -> 200",
        "POST /apps/123456/events -> 200",
    ]
    assert "attempt 1, new connection" in lines[0].getMessage()
    assert "attempt 1, reused connection" in lines[1].getMessage()
    assert " ms " in lines[0].getMessage()
    record = lines[1].pusher_request  # type: ignore[attr-defined]
    assert isinstance(record, RequestRecord) and record.reused is True
    assert_nothing_secret(caplog, server)


def test_nothing_is_logged_above_debug_for_a_good_request(
    server: PusherServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = pusher_fast.Pusher(**server.client_kwargs())
    with caplog.at_level(logging.INFO, logger="pusher_fast"):
        client.trigger("orders", "created", {})
    assert caplog.records == []


def test_warning_on_a_retry(server: PusherServer, caplog: pytest.LogCaptureFixture) -> None:
    client = pusher_fast.Pusher(**server.client_kwargs(), retries=2)
    server.fail_next(1, 503)
    with caplog.at_level(logging.DEBUG, logger="pusher_fast"):
        assert client.trigger("orders", "created", {"secret": SECRET_DATA}) == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert message.startswith("POST /apps/123456/events: attempt 1 failed (status 503)")
    assert "retrying in" in message
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "-> 503" in debug[0] and "attempt 1" in debug[0]
    assert "-> 200" in debug[1] and "attempt 2" in debug[1]
    assert_nothing_secret(caplog, server)


def test_warning_on_a_retry_async(server: PusherServer, caplog: pytest.LogCaptureFixture) -> None:
    records: list[RequestRecord] = []

    async def main() -> None:
        client = AsyncPusher(**server.client_kwargs(), retries=2, on_request=records.append)
        server.fail_next(1, 503)
        await client.trigger("orders", "created", {"secret": SECRET_DATA})
        await client.http.aclose()

    with caplog.at_level(logging.WARNING, logger="pusher_fast"):
        asyncio.run(main())
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "attempt 1 failed (status 503)" in caplog.records[0].getMessage()
    assert [(r.status, r.attempt) for r in records] == [(503, 1), (200, 2)]


def test_warning_on_a_stale_resend(
    server: PusherServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pusher_fast.transports import sockets

    records: list[RequestRecord] = []
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=records.append)
    client.trigger("orders", "created", {})
    transport = client.http
    (conn,) = transport._idle
    # The kept-alive connection's peer is gone, and the pool cannot tell before writing.
    ours, theirs = socket.socketpair()
    theirs.close()
    conn.sock.close()
    conn.sock, conn.poller = ours, None
    monkeypatch.setattr(sockets._Connection, "dropped", lambda self: False)
    with caplog.at_level(logging.WARNING, logger="pusher_fast"):
        assert client.trigger("orders", "created", {"secret": SECRET_DATA}) == {}
    assert transport.stale_resends == 1
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "POST /apps/123456/events: kept-alive connection closed" in warning.getMessage()
    # One attempt (the resend is the transport's own), carried by a new connection.
    assert records[-1].status == 200 and records[-1].reused is False
    assert_nothing_secret(caplog, server)


def test_warning_on_a_bulk_retry(server: PusherServer, caplog: pytest.LogCaptureFixture) -> None:
    client = pusher_fast.Pusher(**server.client_kwargs())
    server.fail_next(1, 503)
    with caplog.at_level(logging.WARNING, logger="pusher_fast"):
        with client.bulk(batch_size=10, concurrency=1, backoff_base=0.01) as sender:
            for i in range(5):
                sender.add("orders", "created", {"secret": SECRET_DATA, "i": i})
    assert sender.report.delivered == 5
    (warning,) = caplog.records
    assert warning.name == "pusher_fast.bulk" and warning.levelno == logging.WARNING
    assert warning.getMessage().startswith("bulk: batch of 5 event(s), attempt 1 failed (503")
    assert_nothing_secret(caplog, server)


def test_error_per_failed_bulk_batch(
    server: PusherServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = pusher_fast.Pusher(**server.client_kwargs())
    server.fail_next(5, 400)
    with caplog.at_level(logging.DEBUG, logger="pusher_fast"):
        with client.bulk(retries=0, batch_size=10, concurrency=1) as sender:
            for i in range(15):
                sender.add("orders", "created", {"secret": SECRET_DATA, "i": i})
    assert len(sender.report.failed) == 15
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # two batches (10 + 5 events), one line each
    assert sorted(r.getMessage().split(" event")[0] for r in errors) == ["bulk: 10", "bulk: 5"]
    assert all("after 1 attempt(s): 400" in r.getMessage() for r in errors)
    assert_nothing_secret(caplog, server)


def test_nothing_is_measured_without_a_hook_or_debug(
    server: PusherServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pusher_fast import _observe

    def boom(*args: Any) -> None:
        raise AssertionError("an attempt was measured with neither a hook nor DEBUG")

    monkeypatch.setattr(_observe, "_report", boom)
    client = pusher_fast.Pusher(**server.client_kwargs(), retries=1)
    with caplog.at_level(logging.INFO, logger="pusher_fast"):
        client.trigger("orders", "created", {})
        with client.bulk() as sender:
            sender.add("orders", "created", {})

        async def main() -> None:
            aclient = AsyncPusher(**server.client_kwargs())
            await aclient.trigger("orders", "created", {})
            await aclient.http.aclose()

        asyncio.run(main())
    assert len(server.events) == 3


# -- the on_request hook -----------------------------------------------------------------------


def test_hook_records_sync(server: PusherServer) -> None:
    records: list[RequestRecord] = []
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=records.append)
    client.trigger("orders", "created", {"id": 1})
    client.channel_info("orders")
    first, second = records
    assert (first.method, first.path, first.status, first.error) == (
        "POST",
        "/apps/123456/events",
        200,
        None,
    )
    assert first.attempt == 1 and first.reused is False and second.reused is True
    assert first.bytes_sent == len(server.requests[0].body) > 0
    assert 0 < first.duration < 5
    assert (second.method, second.path, second.bytes_sent) == (
        "GET",
        "/apps/123456/channels/orders",
        0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = 500  # type: ignore[misc]


def test_hook_records_an_error_class_when_no_answer(server: PusherServer) -> None:
    records: list[RequestRecord] = []
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=records.append)
    server.stop()
    with pytest.raises(pusher_fast.PusherTransportError):
        client.trigger("orders", "created", {})
    (record,) = records
    assert record.status is None and record.error == "PusherTransportError"


def test_hook_records_async(server: PusherServer) -> None:
    records: list[RequestRecord] = []

    async def main() -> None:
        client = AsyncPusher(**server.client_kwargs(), on_request=records.append)
        await client.trigger("orders", "created", {"id": 1})
        await client.trigger("orders", "created", {"id": 2})
        async with client.bulk() as sender:
            for i in range(3):
                await sender.add("orders", "created", {"i": i})
        await client.http.aclose()

    asyncio.run(main())
    triggers, bulk = records[:2], records[2:]
    assert [(r.path, r.status) for r in triggers] == [("/apps/123456/events", 200)] * 2
    assert [r.reused for r in triggers] == [False, True]
    # The bulk sender's I/O thread sends on connections of its own: its first is new.
    assert bulk and {(r.path, r.status) for r in bulk} == {("/apps/123456/batch_events", 200)}
    assert bulk[0].reused is False and all(r.reused for r in bulk[1:])
    assert len(server.events) == 2 + 3


def test_hook_records_bulk(server: PusherServer) -> None:
    records: list[RequestRecord] = []
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=records.append)
    server.fail_next(1, 503)
    with client.bulk(batch_size=10, concurrency=1, backoff_base=0.01) as sender:
        for i in range(20):
            sender.add("orders", "created", {"i": i})
    assert sender.report.delivered == 20
    assert [(r.status, r.attempt) for r in records] == [(503, 1), (200, 2), (200, 1)]
    assert {r.path for r in records} == {"/apps/123456/batch_events"}


def test_a_raising_hook_is_logged_and_the_request_stands(
    server: PusherServer, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(record: RequestRecord) -> None:
        raise RuntimeError("metrics backend down")

    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=hook)
    with caplog.at_level(logging.ERROR, logger="pusher_fast"):
        assert client.trigger("orders", "created", {}) == {}
    (record,) = caplog.records
    assert "on_request hook raised" in record.getMessage()
    assert record.exc_info is not None and "metrics backend down" in str(record.exc_info[1])
    assert len(server.events) == 1


def test_a_raising_hook_async(server: PusherServer) -> None:
    def hook(record: RequestRecord) -> None:
        raise ValueError("boom")

    async def main() -> Any:
        client = AsyncPusher(**server.client_kwargs(), on_request=hook)
        try:
            return await client.trigger("orders", "created", {})
        finally:
            await client.http.aclose()

    assert asyncio.run(main()) == {}


def test_on_request_must_be_callable(server: PusherServer) -> None:
    with pytest.raises(TypeError, match="on_request should be a callable"):
        pusher_fast.Pusher(**server.client_kwargs(), on_request=42)


def test_other_transports_report(server: PusherServer) -> None:
    from pusher_fast.requests import RequestsBackend
    from pusher_fast.transports import Urllib3Backend

    for backend in (RequestsBackend, Urllib3Backend):
        records: list[RequestRecord] = []
        client = pusher_fast.Pusher(
            **server.client_kwargs(), backend=backend, on_request=records.append
        )
        client.trigger("orders", "created", {})
        assert [(r.status, r.reused) for r in records] == [(200, None)], backend


def test_aiohttp_transport_reports(server: PusherServer) -> None:
    from pusher_fast.aiohttp import AsyncIOBackend

    records: list[RequestRecord] = []

    async def main() -> None:
        client = AsyncPusher(
            **server.client_kwargs(), backend=AsyncIOBackend, on_request=records.append
        )
        await client.trigger("orders", "created", {})
        await client.http.aclose()

    asyncio.run(main())
    assert [(r.status, r.path) for r in records] == [(200, "/apps/123456/events")]


def test_tornado_transport_reports(server: PusherServer) -> None:
    from pusher_fast.tornado import TornadoBackend

    records: list[RequestRecord] = []

    async def main() -> Any:
        client = pusher_fast.Pusher(
            **server.client_kwargs(), backend=TornadoBackend, on_request=records.append
        )
        return await client.trigger("orders", "created", {})

    assert asyncio.run(main()) == {}
    assert [(r.status, r.path, r.reused) for r in records] == [(200, "/apps/123456/events", None)]


# -- the examples ------------------------------------------------------------------------------


def test_prometheus_example(server: PusherServer) -> None:
    from prometheus_client import CollectorRegistry

    example = load_example("prometheus_metrics")
    registry = CollectorRegistry()
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=example.metrics_hook(registry))
    for i in range(3):
        client.trigger("orders", "created", {"i": i})
    client.channel_info("orders")
    server.fail_next(1, 400)
    with pytest.raises(pusher_fast.PusherBadRequest):
        client.trigger("orders", "created", {})
    server.stop()
    with pytest.raises(pusher_fast.PusherTransportError):
        client.trigger("orders", "created", {})

    def value(name: str, **labels: str) -> Any:
        return registry.get_sample_value(name, labels)

    events = "/apps/123456/events"
    assert value("pusher_requests_total", method="POST", path=events, outcome="200") == 3
    assert value("pusher_requests_total", method="POST", path=events, outcome="400") == 1
    assert (
        value("pusher_requests_total", method="POST", path=events, outcome="PusherTransportError")
        == 1
    )
    channel = "/apps/123456/channels/{channel}"
    assert value("pusher_requests_total", method="GET", path=channel, outcome="200") == 1
    assert value("pusher_request_duration_seconds_count", method="POST", path=events) == 5
    assert value("pusher_request_duration_seconds_sum", method="POST", path=events) > 0


def test_opentelemetry_example(server: PusherServer) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    example = load_example("opentelemetry_spans")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hook = example.span_hook(provider.get_tracer("test"))
    client = pusher_fast.Pusher(**server.client_kwargs(), on_request=hook, retries=1)
    server.fail_next(1, 503)
    client.trigger("orders", "created", {"secret": SECRET_DATA})
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["POST /apps/123456/events"] * 2
    failed, ok = spans
    assert failed.kind is SpanKind.CLIENT
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["http.response.status_code"] == 503
    assert ok.attributes["http.response.status_code"] == 200
    assert ok.attributes["http.request.resend_count"] == 1
    assert ok.attributes["http.request.body.size"] == len(server.requests[-1].body)
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.end_time is not None and ok.start_time is not None
    assert ok.end_time > ok.start_time
    for span in spans:
        assert all(SECRET_DATA not in str(v) for v in span.attributes.values())

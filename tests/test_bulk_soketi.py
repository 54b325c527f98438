"""The bulk sender against a real soketi, counted at a real pusher-js subscriber.

Every event carries a sequence number; the subscriber's view is compared with the sender's
report event by event: none seen twice, none missing, and what is reported failed was not seen.

soketi facts used here: it answers API errors with HTTP 200 and ``{"error", "code"}`` (the bulk
sender's ``classify`` turns those into failures); per-app limits ``maxEventBatchSize`` (default
10), ``maxEventPayloadInKb`` and ``maxBackendEventsPerSecond`` (``start_soketi`` sets the rate
limits to -1, unlimited, unless an app sets them); it closes the connection after every API
response.  A soketi restart on the same port reuses ``start_soketi`` with its port choice pinned
(``tests.peers.soketi._free_tcp_ports``; ``start_soketi`` has no ``port=`` argument).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

import pusher_fast
import tests.peers.soketi as soketi_module
from pusher_fast.bulk import BulkReport
from pusher_fast.transports import Urllib3Backend
from tests.peers.browser import BrowserClient
from tests.peers.soketi import SoketiServer, start_soketi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MAIN = {"id": "123456", "key": "bulk-key", "secret": "bulk-secret"}
SMALL = {
    "id": "234567",
    "key": "small-key",
    "secret": "small-secret",
    "maxEventBatchSize": 5,
    "maxEventPayloadInKb": 1,
}
RATE = {
    "id": "345678",
    "key": "rate-key",
    "secret": "rate-secret",
    "maxBackendEventsPerSecond": 100,
}
APPS = [MAIN, SMALL, RATE]


@pytest.fixture(scope="module")
def server() -> Any:
    srv = start_soketi(APPS)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def browsers() -> Any:
    made: list[BrowserClient] = []

    def make(srv: SoketiServer, app: dict[str, Any]) -> BrowserClient:
        b = BrowserClient(srv, key=app["key"])
        made.append(b)
        return b

    try:
        yield make
    finally:
        for b in made:
            b.stop()


def client_for(srv: SoketiServer, app: dict[str, Any], **kw: Any) -> pusher_fast.Pusher:
    return pusher_fast.Pusher(**srv.client_kwargs(app), **kw)


def barrier(srv: SoketiServer, app: dict[str, Any], b: BrowserClient, channel: str) -> None:
    """A marker sent after everything else: once the subscriber has it, it has all before it."""
    marker = {"barrier": time.time()}
    assert client_for(srv, app).trigger(channel, "barrier", marker) == {"ok": True}
    b.wait_for_event(channel, "barrier", lambda r: r["data"] == marker, timeout=15)


def seen_seqs(b: BrowserClient, channel: str) -> Counter[int]:
    return Counter(int(r["data"]["seq"]) for r in b.events(channel, "ev"))


def failed_seqs(report: BulkReport) -> list[int]:
    return [int(json.loads(f.event["data"])["seq"]) for f in report.failed]


def assert_matches_subscriber(report: BulkReport, seen: Counter[int], n: int) -> None:
    twice = {s: c for s, c in seen.items() if c > 1}
    assert not twice, f"seen more than once: {dict(list(twice.items())[:10])}"
    failed = failed_seqs(report)
    assert len(failed) == len(set(failed)), "reported failed twice"
    assert report.submitted == n == report.delivered + len(report.failed), report.as_dict()
    assert set(seen).isdisjoint(failed), "reported failed, but the subscriber got it"
    missing = set(range(n)) - set(seen) - set(failed)
    assert not missing, (
        f"{len(missing)} delivered events never arrived, e.g. {sorted(missing)[:10]}"
    )
    assert len(seen) == report.delivered


# -- 10,000 events ---------------------------------------------------------------------------------


def test_ten_thousand_events_arrive_exactly_once(server, browsers):
    n = 10_000
    channel = f"bulk-{time.monotonic_ns()}"
    b = browsers(server, MAIN)
    b.subscribe(channel)
    client = client_for(server, MAIN)
    started = time.monotonic()
    with client.bulk(concurrency=4) as sender:
        for i in range(n):
            sender.add(channel, "ev", {"seq": i})
    elapsed = time.monotonic() - started
    report = sender.report
    assert report.ok, report.as_dict()
    # Batches are full but for a few: a partial first one sent at once to an idle
    # worker (latency first), and the remainder at close.
    assert n // 10 <= report.requests <= n // 10 + 4 and report.retries == 0
    barrier(server, MAIN, b, channel)
    seen = seen_seqs(b, channel)
    assert_matches_subscriber(report, seen, n)
    assert sorted(seen) == list(range(n))
    print(f"\n10,000 events to soketi: {elapsed:.2f}s, {n / elapsed:.0f} events/s")


# -- soketi's in-body errors -------------------------------------------------------------------


def test_wrong_secret_fails_every_batch_without_retries(server, browsers):
    channel = f"auth-{time.monotonic_ns()}"
    b = browsers(server, MAIN)
    b.subscribe(channel)
    bad = pusher_fast.Pusher(**{**server.client_kwargs(MAIN), "secret": "wrong"})
    with bad.bulk(concurrency=2, retries=3) as sender:
        for i in range(45):
            sender.add(channel, "ev", {"seq": i})
    report = sender.report
    # 401 is never retried: one request per batch (5 of 10, or 6 with a partial first one)
    assert report.requests in (5, 6) and report.retries == 0
    assert report.delivered == 0 and sorted(failed_seqs(report)) == list(range(45))
    for f in report.failed:
        assert f.status == 401 and "authentication failed" in f.reason and f.attempts == 1
    barrier(server, MAIN, b, channel)
    assert_matches_subscriber(report, seen_seqs(b, channel), 45)


def test_batches_over_the_server_limit_fail_and_replay_smaller(server, browsers):
    channel = f"size-{time.monotonic_ns()}"
    b = browsers(server, SMALL)
    b.subscribe(channel)
    client = client_for(server, SMALL)
    # The first event is sent alone (the queue is empty); the other 29 go in batches of 10,
    # over this app's maxEventBatchSize of 5.
    sender = client.bulk(concurrency=1, batch_size=10, retries=3)
    sender.add(channel, "ev", {"seq": 0})
    time.sleep(0.3)
    for i in range(1, 30):
        sender.add(channel, "ev", {"seq": i})
    report = sender.close()
    assert report.delivered >= 1 and report.failed
    for f in report.failed:
        assert f.status == 400 and "batch-send" in f.reason and f.attempts == 1
    barrier(server, SMALL, b, channel)
    assert_matches_subscriber(report, seen_seqs(b, channel), 30)

    with client.bulk(batch_size=5) as replay:
        for f in report.failed:
            replay.add(**f.event)
    assert replay.report.ok
    barrier(server, SMALL, b, channel)
    seen = seen_seqs(b, channel)
    assert sorted(seen) == list(range(30)) and max(seen.values()) == 1


def test_oversized_event_fails_its_batch_only(server, browsers):
    channel = f"big-{time.monotonic_ns()}"
    b = browsers(server, SMALL)
    b.subscribe(channel)
    client = client_for(server, SMALL)
    big = "x" * 2000  # under our 10 KB limit, over this app's 1 KB
    with client.bulk(concurrency=1, batch_size=5, retries=3) as sender:
        for i in range(40):
            sender.add(channel, "ev", {"seq": i, "pad": big if i in (7, 23) else ""})
    report = sender.report
    failed = sorted(failed_seqs(report))
    assert failed and 7 in failed and 23 in failed
    assert len(failed) <= 10  # at most the two batches that held a big event
    for f in report.failed:
        assert f.status == 413 and f.attempts == 1
    barrier(server, SMALL, b, channel)
    assert_matches_subscriber(report, seen_seqs(b, channel), 40)


def test_rate_limited_batches_are_retried(server, browsers):
    channel = f"rate-{time.monotonic_ns()}"
    b = browsers(server, RATE)
    b.subscribe(channel)
    client = client_for(server, RATE)
    n = 250  # 100 events/s for this app
    with client.bulk(concurrency=4, retries=8, backoff_base=0.2, backoff_max=0.6) as sender:
        for i in range(n):
            sender.add(channel, "ev", {"seq": i})
    report = sender.report
    assert report.retries > 0, "the rate limit never answered 429"
    for f in report.failed:
        assert f.status == 429 and f.attempts == 9
    barrier(server, RATE, b, channel)
    assert_matches_subscriber(report, seen_seqs(b, channel), n)
    assert report.delivered > n // 2


# -- soketi stopped mid-run and restarted on the same port ---------------------------------------


class GatedBackend(Urllib3Backend):
    """The default transport behind a gate the test can close.

    The gate is closed around soketi's stop and restart: no request is in flight when soketi
    stops (so no answer is lost, which would make delivery ambiguous), and none reaches the new
    soketi before the subscriber has resubscribed (so what soketi accepts, the subscriber sees).
    While soketi is down the gate is open, and the sender meets real refused connections.
    """

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self.cond = threading.Condition()
        self.open = True
        self.active = 0

    def send_raw(self, request: Any) -> Any:
        with self.cond:
            while not self.open:
                self.cond.wait()
            self.active += 1
        try:
            return super().send_raw(request)
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    def close_gate(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.open = False
            assert self.cond.wait_for(lambda: self.active == 0, timeout), "requests stuck"

    def open_gate(self) -> None:
        with self.cond:
            self.open = True
            self.cond.notify_all()


def restart_on_same_port(old: SoketiServer, monkeypatch: pytest.MonkeyPatch) -> SoketiServer:
    ports = [old.port, old.metrics_port]
    with monkeypatch.context() as m:
        m.setattr(soketi_module, "_free_tcp_ports", lambda n: list(ports[:n]))
        return start_soketi(old.apps, attempts=3)


def test_soketi_restart_mid_run_every_event_accounted(browsers, monkeypatch):
    n = 4000
    channel = f"restart-{time.monotonic_ns()}"
    first = start_soketi([MAIN])
    servers = [first]
    try:
        b = browsers(first, MAIN)
        b.subscribe(channel)
        client = client_for(first, MAIN, backend=GatedBackend, timeout=2)
        gate: GatedBackend = client.http
        sender = client.bulk(concurrency=4, retries=3, backoff_base=0.2, backoff_max=1.0)
        produced = threading.Event()

        def producer() -> None:
            for i in range(0, n, 10):
                for j in range(i, i + 10):
                    sender.add(channel, "ev", {"seq": j})
                time.sleep(0.01)  # ~1000 events/s
            produced.set()

        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        time.sleep(1.0)

        gate.close_gate()
        first.stop()
        stopped_at = time.monotonic()
        gate.open_gate()  # down: the sender meets refused connections and retries
        time.sleep(1.5)

        gate.close_gate()
        mark = b.mark()
        second = restart_on_same_port(first, monkeypatch)
        servers.append(second)
        assert second.port == first.port
        b.disconnect()  # pusher-js would wait ~15 s before its own retry
        b.reconnect()
        b.wait_for("subscribed", lambda r: r.get("channel") == channel, timeout=15, start=mark)
        down_for = time.monotonic() - stopped_at
        gate.open_gate()

        assert produced.wait(30)
        thread.join(5)
        report = sender.close(timeout=30)
        barrier(second, MAIN, b, channel)
        seen = seen_seqs(b, channel)
        assert_matches_subscriber(report, seen, n)

        # The restart really happened in the middle: failures while down, deliveries on both
        # sides of it.
        assert report.failed, "no event failed while soketi was down"
        for f in report.failed:
            assert f.status is None and f.reason.startswith("transport:"), f
            assert "refused" in f.reason.lower() or "connection" in f.reason.lower(), f.reason
            assert f.attempts == 4
        assert min(seen) == 0 and max(seen) == n - 1
        assert report.retries > 0
        print(
            f"\nrestart: down {down_for:.1f}s, delivered {report.delivered}, "
            f"failed {len(report.failed)}, retries {report.retries}"
        )
    finally:
        for srv in servers:
            srv.stop()

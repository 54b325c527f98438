"""The sync bulk sender's I/O engine (pusher_fast/_bulk_io.py): one thread drives every
connection of the default socket transport; other backends keep the worker threads."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from typing import Any

import pytest

import pusher_fast
from pusher_fast import _bulk_io
from pusher_fast.transports import Urllib3Backend
from pusher_fast.transports.sockets import _Connection
from tests.faultserver import FaultServer, Reply
from tests.helpers import readers_left_for_gc

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(faults: FaultServer) -> FaultServer:
    return faults


def bulk_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("pusher-bulk-"))


def seqs(server: FaultServer) -> list[int]:
    return sorted(int(json.loads(ev["data"])["seq"]) for ev in server.accepted_events())


def test_default_transport_gets_one_io_thread_other_backends_worker_threads(server):
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=4)
    assert bulk_threads() == ["pusher-bulk-io"]
    sender.close()
    client = pusher_fast.Pusher(**server.client_kwargs(), backend=Urllib3Backend)
    sender = client.bulk(concurrency=3)
    assert bulk_threads() == ["pusher-bulk-0", "pusher-bulk-1", "pusher-bulk-2"]
    for i in range(25):
        sender.add("c", "e", {"seq": i})
    report = sender.close()
    assert report.ok and report.delivered == 25
    assert bulk_threads() == []


def test_engine_keeps_concurrency_connections_and_hands_them_to_the_pool(server):
    client = pusher_fast.Pusher(**server.client_kwargs())
    with client.bulk(concurrency=3, batch_size=5) as sender:
        for i in range(300):
            sender.add("c", "e", {"seq": i})
    # Full batches, but for a partial one that found the engine idle and lingered (2 ms) for
    # more: on a busy machine the 300 events may take longer than that to come.
    assert sender.report.ok and sender.report.requests == len(server.requests) >= 60
    assert max(server.batch_sizes()) == 5 and sum(server.batch_sizes()) == 300
    assert seqs(server) == list(range(300))
    assert 1 <= server.connections_opened <= 3
    assert all(r.signature_ok() for r in server.requests)
    # Kept alive afterwards: a trigger reuses one of them.
    client.trigger("c", "e", "after")
    assert server.connections_opened <= 3
    assert bulk_threads() == []


def test_a_trickle_is_sent_without_waiting_for_close(server):
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2)
    try:
        for i in range(3):
            sender.add("c", "e", {"seq": i})
            server.wait_for_requests(i + 1, timeout=5)  # sent while the sender is open
            time.sleep(0.05)  # the engine goes idle before the next one
        assert seqs(server) == [0, 1, 2]
    finally:
        report = sender.close()
    assert report.ok and report.delivered == 3


def test_connections_the_server_closes_after_answering_are_replaced(server):
    # Closed unannounced right after each answer: a request may go out on the closing
    # connection before its FIN is seen (ambiguous, retried: as with worker threads).
    server.default = Reply(after="close")
    client = pusher_fast.Pusher(**server.client_kwargs())
    with client.bulk(concurrency=2, batch_size=10, backoff_base=0.001) as sender:
        for i in range(100):
            sender.add("c", "e", {"seq": i})
    report = sender.report
    assert report.ok and report.delivered == 100
    assert report.requests == 10 + report.retries
    assert seqs(server) == list(range(100))  # each once: a closed connection read nothing
    assert server.connections_opened == 10  # one per answer (a retry follows a dead one)


def test_a_request_past_its_deadline_is_ambiguous_and_retried(server):
    server.script(Reply(delay=1.5))
    client = pusher_fast.Pusher(**server.client_kwargs(timeout=0.5))
    with client.bulk(concurrency=1, batch_size=10, backoff_base=0.01) as sender:
        for i in range(10):
            sender.add("c", "e", {"seq": i})
    report = sender.report
    assert report.ok and report.delivered == 10
    assert report.ambiguous == 1 and report.retries == 1 and report.requests == 2


def test_tls_through_the_engine(tls_server, certificates):
    client = pusher_fast.Pusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=tls_server.port,
        ssl=True, ca_certs=str(certificates.ca), timeout=5,
    )  # fmt: skip
    with client.bulk(concurrency=2, batch_size=10) as sender:
        for i in range(200):
            sender.add("c", "e", {"seq": i})
    assert sender.report.ok and sender.report.delivered == 200
    assert len(tls_server.requests) == 20
    assert tls_server.connections <= 2


def test_tls_through_the_engine_from_the_async_sender(tls_server, certificates):
    # AsyncBulkSender's I/O thread sends on a sync transport made with the async one's
    # options: the CA bundle must reach it.
    from pusher_fast.aio import AsyncPusher

    async def main() -> Any:
        async with AsyncPusher(
            app_id="1", key="k", secret="s", host="127.0.0.1", port=tls_server.port,
            ssl=True, ca_certs=str(certificates.ca), timeout=5,
        ) as client:  # fmt: skip
            async with client.bulk(concurrency=2, batch_size=10) as sender:
                for i in range(200):
                    await sender.add("c", "e", {"seq": i})
            return sender.report, client.http.connections_opened

    report, opened = asyncio.run(main())
    assert report.ok and report.delivered == 200
    assert len(tls_server.requests) == 20
    assert tls_server.connections == opened <= 2
    assert bulk_threads() == []


def test_an_engine_failure_reports_what_it_held_and_a_worker_carries_on(server, monkeypatch):
    original = _bulk_io.IOEngine._start_due
    failed_once: list[bool] = []

    def start_due(self: Any) -> None:
        if self._starting and not failed_once:
            failed_once.append(True)
            raise RuntimeError("engine bug")
        original(self)

    monkeypatch.setattr(_bulk_io.IOEngine, "_start_due", start_due)
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2, batch_size=10, linger=0)
    for i in range(100):
        sender.add("c", "e", {"seq": i})
    report = sender.close(timeout=20)
    assert failed_once
    assert report.failed and all(
        f.reason.startswith("unexpected error: RuntimeError('engine bug')") for f in report.failed
    )
    assert_engine_failure_account(report, seqs(server), 100)


def test_shutdown_timeout_ends_the_engine_at_once_with_a_request_on_the_wire(server):
    # Worker threads wait in recv() for the client's timeout; the engine is woken.
    server.script(Reply(hold=True))
    client = pusher_fast.Pusher(**server.client_kwargs(timeout=20))
    sender = client.bulk(concurrency=1, batch_size=10)
    for i in range(30):
        sender.add("c", "e", {"seq": i})
    server.wait_for_requests(1)
    started = time.monotonic()
    report = sender.close(timeout=0.3)
    assert time.monotonic() - started < 10  # long before the 20 s the request could take
    assert bulk_threads() == []
    assert report.submitted == 30 and report.delivered == 0 and len(report.failed) == 30
    on_the_wire = [f for f in report.failed if f.ambiguous]
    assert len(on_the_wire) == 10
    assert all("may have been delivered" in f.reason for f in on_the_wire)
    assert all(f.reason.startswith("not sent") for f in report.failed if not f.ambiguous)
    server.open_gate()


def test_a_trickle_is_not_held_back_by_a_slow_request_in_flight(server):
    # With a connection free, an event added while another request waits for its answer
    # goes out after the linger, on that free connection, as with an idle worker thread.
    server.script(Reply(hold=True))
    client = pusher_fast.Pusher(**server.client_kwargs(timeout=10))
    sender = client.bulk(concurrency=2)
    try:
        sender.add("c", "e", {"seq": 0})
        server.wait_for_requests(1)
        time.sleep(0.05)
        sender.add("c", "e", {"seq": 1})
        requests = server.wait_for_requests(2, timeout=3)  # the first is still held
        assert [r.batch()[0]["data"] for r in requests] == ['{"seq":0}', '{"seq":1}']
    finally:
        server.open_gate()
        report = sender.close()
    assert report.ok and report.delivered == 2


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_large_batches_written_in_pieces_arrive_whole(tls, server, request, monkeypatch):
    # A small send buffer makes every large request a partial write the engine resumes
    # when the socket is writable again (and, over TLS, after SSLWantWrite).
    original = _bulk_io.IOEngine._open

    def small_buffer(self: Any, req: Any, deadline: float) -> Any:
        conn = original(self, req, deadline)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return conn

    monkeypatch.setattr(_bulk_io.IOEngine, "_open", small_buffer)
    payload = "x" * 9000
    if tls:
        certificates = request.getfixturevalue("certificates")
        mini = request.getfixturevalue("tls_server")
        client = pusher_fast.Pusher(
            app_id="1", key="k", secret="s", host="127.0.0.1", port=mini.port, ssl=True,
            ca_certs=str(certificates.ca), timeout=10,
        )  # fmt: skip
    else:
        client = pusher_fast.Pusher(**server.client_kwargs(timeout=10))
    with client.bulk(concurrency=2, batch_size=10) as sender:
        for i in range(60):
            sender.add("c", "e", {"seq": i, "pad": payload})
    assert sender.report.ok and sender.report.delivered == 60
    if tls:
        bodies = [json.loads(r.body)["batch"] for r in mini.requests]
    else:
        assert all(r.signature_ok() for r in server.requests)  # the body_md5 of the whole body
        bodies = [r.batch() for r in server.requests]
    received = sorted(json.loads(ev["data"])["seq"] for body in bodies for ev in body)
    assert received == list(range(60))
    assert all(len(json.loads(ev["data"])["pad"]) == 9000 for body in bodies for ev in body)


def test_an_engine_failure_reports_a_lingering_batch_once(server, monkeypatch):
    original = _bulk_io.IOEngine._timeout
    failed_once = threading.Event()

    def timeout(self: Any) -> Any:
        if any(ex.ident == 0 for ex in self._starting):  # a partial batch lingering
            failed_once.set()
            raise RuntimeError("engine bug")
        return original(self)

    monkeypatch.setattr(_bulk_io.IOEngine, "_timeout", timeout)
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2, linger=5.0)
    # The first event lingers only if the engine is idle when it comes (else the engine
    # finds all three open and sends them at once).
    deadline = time.monotonic() + 5
    while not sender._idle and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in range(3):
        sender.add("c", "e", {"seq": i})
    # Before close(): closing sends a lingering batch at once.
    assert failed_once.wait(5), "the engine never looped with a lingering batch"
    report = sender.close(timeout=10)
    failed = [int(json.loads(f.event["data"])["seq"]) for f in report.failed]
    assert failed and len(set(failed)) == len(failed), "a lingering batch reported twice"
    assert all(
        f.reason.startswith("unexpected error: RuntimeError('engine bug')") for f in report.failed
    )
    assert_engine_failure_account(report, seqs(server), 3)


def assert_engine_failure_account(report: Any, accepted: list[int], n: int) -> None:
    """What the engine held failed once (ambiguous if it was on the wire: then the server
    may have it); the rest went through the worker that took over."""
    definite = {int(json.loads(f.event["data"])["seq"]) for f in report.failed if not f.ambiguous}
    maybe = {int(json.loads(f.event["data"])["seq"]) for f in report.failed if f.ambiguous}
    for f in report.failed:
        assert f.reason.endswith("it may have been delivered)") == f.ambiguous
    assert sorted(accepted) == sorted(set(accepted)), "an event accepted twice"
    assert definite.isdisjoint(accepted)
    assert definite | maybe | set(accepted) == set(range(n))
    assert report.submitted == n and report.delivered + len(report.failed) == n
    assert report.delivered == len(set(accepted) - maybe)
    assert bulk_threads() == []


def test_close_sends_a_lingering_batch_at_once_with_the_events_after_it(server):
    # The first event goes to the idle engine as a partial batch that lingers for more;
    # close() means no more can come: it goes now, with the open ones, in one request.
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2, linger=5.0)
    deadline = time.monotonic() + 5
    while not sender._idle and time.monotonic() < deadline:  # see the test above
        time.sleep(0.001)
    for i in range(3):
        sender.add("c", "e", {"seq": i})
    started = time.monotonic()
    report = sender.close(timeout=10)
    took = time.monotonic() - started
    assert took < 2.0, f"close() waited {took:.1f}s for the linger"
    assert report.ok and report.delivered == 3 and report.requests == 1, report.as_dict()
    assert seqs(server) == [0, 1, 2]
    assert bulk_threads() == []


@pytest.mark.parametrize("fault", ["closed", "stray bytes"])
def test_an_idle_connection_the_server_closed_is_never_handed_out(server, fault):
    """An idle connection its server closed, or wrote to unasked, is discarded when a
    request would take it, and a new one opened: no request is written on it (it would be
    lost, or its outcome ambiguous)."""
    client = pusher_fast.Pusher(**server.client_kwargs())
    engine = _bulk_io.IOEngine(None, client.http, 2)  # not run: its checkout alone
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    conn = _Connection(ours, 0)
    engine.selector.register(ours, _bulk_io._READ, conn)
    engine._idle_conns.append(conn)
    fresh = object()
    engine._open = lambda request, deadline: fresh
    try:
        assert engine._checkout(None, 0.0) is conn  # alive: reused
        engine._idle_conns.append(conn)
        if fault == "closed":
            theirs.close()
        else:
            theirs.send(b"HTTP/1.1 200 OK\r\n")
        assert engine._checkout(None, 0.0) is fresh
        assert engine._idle_conns == [] and ours.fileno() == -1  # discarded
    finally:
        ours.close()
        theirs.close()
        engine.selector.close()
        engine._wake_r.close()
        engine._wake_w.close()


def test_a_connection_closed_after_its_answer_is_not_reused_without_retries(server):
    # Each answer's connection closed (unannounced) by the server: the next batch, sent
    # once the close has arrived, goes on a new connection: nothing fails or is
    # ambiguous although no retry is allowed.
    server.default = Reply(after="close")
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=1, batch_size=5, retries=0, at_least_once=False)
    try:
        for i in range(20):
            sender.add("c", "e", {"seq": i})
            if i % 5 == 4:
                server.wait_for_requests(i // 5 + 1, timeout=5)
                time.sleep(0.05)  # the FIN arrives while the connection is idle
    finally:
        report = sender.close()
    assert report.ok and report.delivered == 20, report.as_dict()
    assert report.ambiguous == 0 and report.retries == 0 and report.requests == 4
    assert seqs(server) == list(range(20))
    assert server.connections_opened == 4


def test_answers_leave_no_reader_for_the_garbage_collector(server):
    # A reader and its parser refer to each other: one per request would leave a cycle
    # per request for the collector.  The engine keeps one reader per connection.
    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2, batch_size=5)

    def send() -> None:
        with sender:
            for i in range(200):
                sender.add("c", "e", {"seq": i})

    readers = readers_left_for_gc(send)
    assert sender.report.ok and sender.report.requests >= 40  # (40: batches all full)
    assert readers <= 2, f"{readers} readers left for the garbage collector"


def test_ctrl_c_inside_add_never_leaves_the_queue_locked(server):
    """A KeyboardInterrupt may land at any check between bytecodes of the producer's code
    (the user's Ctrl-C in a loop of add() calls): close() must still finish, not wait forever
    on a lock left taken."""
    import signal

    package = os.path.dirname(pusher_fast.__file__)
    landed = 0

    def interrupt_in_our_code(signum: int, frame: Any) -> None:
        nonlocal landed
        # Only inside the library's own code (add(), the encoder, ...), not the loop below.
        if frame is not None and frame.f_code.co_filename.startswith(package):
            landed += 1
            raise KeyboardInterrupt

    client = pusher_fast.Pusher(**server.client_kwargs())
    sender = client.bulk(concurrency=2, batch_size=10, max_queue=40)
    previous = signal.signal(signal.SIGALRM, interrupt_in_our_code)
    signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
    try:
        deadline = time.monotonic() + 2.0
        while landed < 200 and time.monotonic() < deadline:
            try:
                sender.add("c", "e", {"seq": 1})
            except KeyboardInterrupt:
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert landed >= 10  # the interrupts did land in add() and what it calls
    closer = threading.Thread(target=sender.close, daemon=True)
    closer.start()
    closer.join(15)
    assert not closer.is_alive(), "close() hangs: a lock was left taken by an interrupted add()"
    report = sender.report
    assert report.delivered + len(report.failed) == report.submitted  # none lost

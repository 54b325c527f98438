"""BulkSender against a local recording server (tests/faultserver.py).

Every test gives each event a sequence number in its data and checks the account both ways: the
report (submitted == delivered + len(failed)) and what the server actually accepted.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import pusher_fast
from pusher_fast.bulk import BulkReport, BulkSender, FailedEvent
from pusher_fast.errors import PusherError
from tests.faultserver import Account, FaultServer, Recorded, Reply
from tests.helpers import MASTER_KEY_B64, decrypt_data

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(faults: FaultServer) -> FaultServer:
    return faults


def make_client(server: FaultServer, **overrides: Any) -> pusher_fast.Pusher:
    overrides.setdefault("timeout", 2)
    return pusher_fast.Pusher(**server.client_kwargs(**overrides))


def seq_of(event: dict[str, Any]) -> int:
    return int(json.loads(event["data"])["seq"])


def failed_keys(report: BulkReport) -> list[tuple[str, int]]:
    return [(f.event["channel"], seq_of(f.event)) for f in report.failed]


def assert_account(
    report: BulkReport,
    server: FaultServer,
    submitted: set[tuple[str, int]],
    *,
    at_least_once: bool = False,
) -> None:
    """The report adds up, and matches what the server accepted, event by event."""
    assert report.submitted == len(submitted), report.as_dict()
    assert report.delivered + len(report.failed) == report.submitted, report.as_dict()
    failed = failed_keys(report)
    assert len(set(failed)) == len(failed), "an event is reported failed twice"
    accepted: dict[tuple[str, int], int] = {}
    for ev in server.accepted_events():
        key = (ev["channel"], seq_of(ev))
        accepted[key] = accepted.get(key, 0) + 1
    if not at_least_once:
        dupes = {k: n for k, n in accepted.items() if n > 1}
        assert not dupes, f"accepted more than once: {dupes}"
    assert set(accepted).isdisjoint(failed), "reported failed but accepted by the server"
    assert set(accepted) | set(failed) == submitted, "an event is neither delivered nor failed"
    assert len(accepted) == report.delivered


# -- grouping --------------------------------------------------------------------------------


def test_groups_ten_events_per_request_by_default(server):
    # The first request is held, so the next 25 events queue up behind it and are grouped.
    server.script(Reply(hold=True))
    client = make_client(server)
    sender = client.bulk(concurrency=1)
    sender.add("orders", "created", {"seq": 0})
    server.wait_for_requests(1)
    for i in range(1, 26):
        sender.add("orders", "created", {"seq": i})
    server.open_gate()
    report = sender.close()
    assert server.batch_sizes() == [1, 10, 10, 5]
    assert [seq_of(e) for e in server.accepted_events()] == list(range(26))  # in order
    assert report.requests == 4 and report.retries == 0 and report.ok
    for r in server.requests:
        assert r.method == "POST" and r.path == "/apps/123456/batch_events"
        assert r.signature_ok(), "each batch request is signed over its exact body"
        for ev in r.batch():
            assert set(ev) == {"channel", "name", "data"}
            assert ev["name"] == "created" and ev["channel"] == "orders"
            assert isinstance(ev["data"], str)
    assert_account(report, server, {("orders", i) for i in range(26)})


@pytest.mark.parametrize("batch_size", [1, 3, 50])
def test_batch_size_is_honoured(server, batch_size):
    server.script(Reply(hold=True))
    sender = make_client(server).bulk(concurrency=1, batch_size=batch_size)
    sender.add("c", "e", {"seq": 0})
    server.wait_for_requests(1)
    for i in range(1, 61):
        sender.add("c", "e", {"seq": i})
    server.open_gate()
    report = sender.close()
    full, rest = divmod(60, batch_size)
    assert server.batch_sizes() == [1] + [batch_size] * full + ([rest] if rest else [])
    assert_account(report, server, {("c", i) for i in range(61)})


def test_batches_never_exceed_batch_size_under_concurrency(server):
    sender = make_client(server).bulk(concurrency=4, batch_size=7)
    for i in range(500):
        sender.add("c", "e", {"seq": i})
    report = sender.close()
    sizes = server.batch_sizes()
    assert max(sizes) <= 7 and sum(sizes) == 500
    assert report.requests == len(sizes)
    assert_account(report, server, {("c", i) for i in range(500)})


def test_concurrent_producers_through_a_small_queue_lose_and_repeat_nothing(server):
    """add() from several threads at once, with backpressure: every event once, exactly."""
    sender = make_client(server).bulk(concurrency=3, max_queue=25, batch_size=10)
    producers = 4
    per_producer = 600
    errors: list[BaseException] = []

    def produce(index: int) -> None:
        try:
            for i in range(per_producer):
                seq = index * per_producer + i
                if i % 50 == 0:  # now and then an event fanned out to two channels
                    sender.add([f"p{index}", f"q{index}"], "e", {"seq": seq})
                else:
                    sender.add(f"p{index}", "e", {"seq": seq})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    report = sender.close()
    assert errors == []
    submitted = set()
    for index in range(producers):
        for i in range(per_producer):
            seq = index * per_producer + i
            submitted.add((f"p{index}", seq))
            if i % 50 == 0:
                submitted.add((f"q{index}", seq))
    assert report.ok and report.delivered == len(submitted) == 2448
    assert max(server.batch_sizes()) <= 10
    assert_account(report, server, submitted)


def test_concurrency_requests_in_flight(server):
    server.default = Reply(hold=True)
    sender = make_client(server).bulk(concurrency=3)
    for i in range(60):
        sender.add("c", "e", {"seq": i})
    server.wait_for_requests(3)
    time.sleep(0.3)
    assert len(server.requests) == 3, "more requests in flight than concurrency"
    server.open_gate()
    report = sender.close()
    assert_account(report, server, {("c", i) for i in range(60)})


# -- fan-out ---------------------------------------------------------------------------------


def test_multi_channel_event_fans_out_one_batch_event_per_channel(server):
    sender = make_client(server).bulk()
    assert sender.add(["a", "b", "c"], "e", {"seq": 1}) == 3
    assert sender.add("ignored", "e", {"seq": 2}, channels=("d", "e")) == 2
    assert sender.add("f", "e", {"seq": 3}, socket_id="123.456") == 1
    assert (
        sender.add_many(
            [
                {"channel": "g", "name": "e", "data": {"seq": 4}},
                {"channels": ["h", "i"], "name": "e", "data": {"seq": 5}, "socket_id": "1.2"},
            ]
        )
        == 3
    )
    report = sender.close()
    assert report.submitted == 9 and report.delivered == 9
    events = server.accepted_events()
    got = sorted((ev["channel"], seq_of(ev), ev.get("socket_id")) for ev in events)
    assert got == [
        ("a", 1, None), ("b", 1, None), ("c", 1, None),
        ("d", 2, None), ("e", 2, None),
        ("f", 3, "123.456"),
        ("g", 4, None), ("h", 5, "1.2"), ("i", 5, "1.2"),
    ]  # fmt: skip
    for ev in events:
        assert "channels" not in ev  # the batch endpoint takes one channel per event
    assert_account(report, server, {(c, s) for c, s, _ in got})


def test_encrypted_channel_events_are_encrypted_one_by_one(server):
    client = make_client(server, encryption_master_key_base64=MASTER_KEY_B64)
    sender = client.bulk()
    for i in range(3):
        sender.add("private-encrypted-x", "e", {"seq": i})
    sender.add("plain", "e", {"seq": 9})
    report = sender.close()
    assert report.ok
    events = server.accepted_events()
    enc = [e for e in events if e["channel"] == "private-encrypted-x"]
    nonces = set()
    for ev in enc:
        sealed = json.loads(ev["data"])
        nonces.add(sealed["nonce"])
        assert json.loads(decrypt_data("private-encrypted-x", ev["data"]))["seq"] in range(3)
    assert len(nonces) == 3
    assert [json.loads(e["data"]) for e in events if e["channel"] == "plain"] == [{"seq": 9}]


# -- validation in the caller ----------------------------------------------------------------


class Unserializable:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("bad channel!", "e", {}), {}, ValueError),
        (("c" * 201, "e", {}), {}, ValueError),
        ((["ok", "bad channel"], "e", {}), {}, ValueError),
        (([], "e", {}), {}, ValueError),
        (([f"c{i}" for i in range(101)], "e", {}), {}, ValueError),
        (("c", "e" * 201, {}), {}, ValueError),
        (("c", "e", "x" * 10241), {}, ValueError),
        (("c", "e", {"v": float("nan")}), {}, ValueError),
        (("c", "e", Unserializable()), {}, TypeError),
        (("c", "e", {}, "1.1:private-other"), {}, ValueError),
        (("c", "e", {}, "abc"), {}, ValueError),
        ((["private-encrypted-a", "b"], "e", {}), {}, ValueError),
        (("private-encrypted-a", "e", {}), {}, ValueError),  # no master key
    ],
)
def test_bad_input_raises_at_add_and_nothing_is_queued(server, args, kwargs, error):
    sender = make_client(server).bulk()
    with pytest.raises(error):
        sender.add(*args, **kwargs)
    assert sender.report.submitted == 0
    assert sender.add("fine", "e", {"seq": 0}) == 1  # still usable
    report = sender.close()
    assert report.submitted == 1 and report.delivered == 1 and not report.failed
    assert_account(report, server, {("fine", 0)})


def test_bad_options_raise():
    client = pusher_fast.Pusher(app_id="1", key="k", secret="s")
    for options in ({"batch_size": 0}, {"concurrency": 0}, {"max_queue": 0}, {"retries": -1}):
        with pytest.raises(ValueError):
            BulkSender(client, **options)


def test_options_are_one_checked_object_for_both_senders():
    from pusher_fast.aio import AsyncBulkSender, AsyncPusher
    from pusher_fast.bulk import BulkOptions

    client = pusher_fast.Pusher(app_id="1", key="k", secret="s")
    by_keyword = BulkSender(client, batch_size=20, retries=2, at_least_once=False)
    given = BulkOptions(batch_size=20, retries=2, at_least_once=False)
    by_object = BulkSender(client, options=given)
    try:
        assert by_keyword.options == by_object.options == given
        assert by_keyword.batch_size == 20 and by_keyword.retries == 2
        assert not by_keyword.at_least_once and by_keyword.options.concurrency == 4
        # Keywords given with options= replace its fields.
        replaced = BulkSender(client, options=given, retries=7)
        replaced.close()
        assert replaced.retries == 7 and replaced.batch_size == 20
    finally:
        by_keyword.close()
        by_object.close()
    async_client = AsyncPusher(app_id="1", key="k", secret="s")
    assert AsyncBulkSender(async_client).options.concurrency == 8  # its own default
    assert AsyncBulkSender(async_client, options=given).options == given
    with pytest.raises(ValueError):
        BulkOptions(concurrency=0)
    with pytest.raises(TypeError, match="at_least_once"):
        BulkOptions(at_least_once=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BulkSender(client, batch_sise=5)  # a misspelt option is refused
    with pytest.raises(TypeError):
        AsyncBulkSender(async_client, linger=0.1)  # the async sender does not linger


def test_add_after_close_raises(server):
    sender = make_client(server).bulk()
    sender.close()
    with pytest.raises(RuntimeError):
        sender.add("c", "e", {})


# -- backpressure ----------------------------------------------------------------------------


def test_add_blocks_while_the_queue_is_full_then_unblocks(server):
    server.default = Reply(hold=True)
    sender = make_client(server).bulk(concurrency=1, max_queue=5)
    sender.add("c", "e", {"seq": 0})
    server.wait_for_requests(1)  # the worker holds event 0 in flight
    started = time.monotonic()
    for i in range(1, 6):
        sender.add("c", "e", {"seq": i})  # fills the queue without blocking
    assert time.monotonic() - started < 0.5
    assert sender.pending == 5
    done = threading.Event()

    def producer() -> None:
        sender.add("c", "e", {"seq": 6})
        done.set()

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    assert not done.wait(0.7), "add() returned although the queue was full"
    server.open_gate()
    assert done.wait(5), "add() did not unblock once the server answered"
    thread.join(5)
    report = sender.close()
    assert_account(report, server, {("c", i) for i in range(7)})
    assert report.ok


# -- close and flush -------------------------------------------------------------------------


def test_close_flushes_everything_queued(server):
    sender = make_client(server).bulk(concurrency=2)
    for i in range(95):
        sender.add("c", "e", {"seq": i})
    report = sender.close()
    assert report.ok and report.delivered == 95
    assert report.requests >= 10 and report.elapsed > 0
    d = report.as_dict()
    assert d["submitted"] == 95 and d["failed"] == 0 and d["events_per_s"] > 0
    assert_account(report, server, {("c", i) for i in range(95)})


def test_context_manager_flushes(server):
    with make_client(server).bulk() as sender:
        for i in range(33):
            sender.add("c", "e", {"seq": i})
    assert sender.report.ok
    assert_account(sender.report, server, {("c", i) for i in range(33)})


def test_exception_inside_with_block_still_flushes(server):
    with pytest.raises(KeyError), make_client(server).bulk() as sender:
        for i in range(15):
            sender.add("c", "e", {"seq": i})
        raise KeyError("boom")
    assert sender.report.delivered == 15
    assert_account(sender.report, server, {("c", i) for i in range(15)})


def test_short_shutdown_timeout_reports_the_rest_failed(server):
    # The server never answers (until the test ends): nothing can be delivered.
    server.default = Reply(hold=True)
    client = make_client(server, timeout=1)
    sender = client.bulk(concurrency=2, shutdown_timeout=0.3)
    for i in range(50):
        sender.add("c", "e", {"seq": i})
    server.wait_for_requests(2)
    started = time.monotonic()
    report = sender.close()
    took = time.monotonic() - started
    # close() waits shutdown_timeout, then at most a grace of two client timeouts + 1 s.
    assert took < 0.3 + 2 * 1 + 1 + 0.5, took
    assert report.delivered == 0
    assert report.submitted == 50 and len(report.failed) == 50
    assert all(f.reason for f in report.failed)
    assert any("shutdown" in f.reason for f in report.failed)
    assert_account(report, server, {("c", i) for i in range(50)})


def test_close_returns_once_in_flight_requests_end_and_leaves_no_threads(server):
    # The server never answers: in-flight requests end with the 1 s client read timeout.
    server.default = Reply(hold=True)
    client = make_client(server, timeout=1)
    sender = client.bulk(concurrency=2, shutdown_timeout=0.3)
    for i in range(50):
        sender.add("c", "e", {"seq": i})
    server.wait_for_requests(2)
    started = time.monotonic()
    report = sender.close()
    took = time.monotonic() - started
    alive = [t.name for t in threading.enumerate() if t in sender._workers and t.is_alive()]
    server.open_gate()
    assert_account(report, server, {("c", i) for i in range(50)})
    assert not alive, f"worker threads still running after close(): {alive}"
    assert took < 2.0, f"close() took {took:.1f}s; in-flight requests timed out after 1 s"


def test_close_with_a_full_queue_honours_shutdown_timeout(server):
    server.default = Reply(hold=True)
    client = make_client(server, timeout=1)
    sender = client.bulk(concurrency=1, max_queue=5, shutdown_timeout=0.5, backoff_base=0.05)
    sender.add("c", "e", {"seq": 0})
    server.wait_for_requests(1)
    for i in range(1, 6):
        sender.add("c", "e", {"seq": i})
    result: dict[str, BulkReport] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", sender.close()), daemon=True)
    started = time.monotonic()
    thread.start()
    # Documented bound: shutdown_timeout, then a grace of 2 * timeout + 1 s.
    thread.join(0.5 + 2 * 1 + 1 + 1)
    returned_in_time = not thread.is_alive()
    took = time.monotonic() - started
    server.open_gate()
    thread.join(30)
    assert returned_in_time, f"close() still blocked after {took:.1f}s"
    report = result["r"]
    # Held requests were retried after timeouts, then all answered: at-least-once here.
    assert report.submitted == 6 == report.delivered + len(report.failed), report.as_dict()


def test_report_is_final_when_close_returns(server):
    # The response trickles in one byte every 0.35 s: each read is within the 0.5 s timeout,
    # the whole response takes ~3.5 s, longer than close()'s grace (0.2 + 2*0.5 + 1 = 2.2 s).
    server.default = Reply(body=b'{"ok":true}', trickle=0.35)
    client = make_client(server, timeout=0.5)
    sender = client.bulk(concurrency=1, shutdown_timeout=0.2)
    for i in range(5):
        sender.add("c", "e", {"seq": i})
    server.wait_for_requests(1)
    report = sender.close()
    at_close = (report.delivered, len(report.failed))
    server.wait_idle(10)
    time.sleep(0.3)  # let the worker read the end of the response
    assert report.delivered + len(report.failed) == report.submitted, report.as_dict()
    assert (report.delivered, len(report.failed)) == at_close


def test_add_racing_close_loses_no_event(server):
    server.default = Reply(hold=True)
    sender = make_client(server).bulk(concurrency=1, max_queue=1, shutdown_timeout=5)
    sender.add("c", "e", {"seq": 0})
    server.wait_for_requests(1)
    sender.add("c", "e", {"seq": 1})  # the queue is now full
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            sender.add(["c1", "c2"], "e", {"seq": 2})  # two items: blocks on the first
        except RuntimeError as exc:  # refusing because the sender closed is fine
            errors.append(exc)

    producer_thread = threading.Thread(target=producer, daemon=True)
    producer_thread.start()
    time.sleep(0.2)
    result: dict[str, BulkReport] = {}
    closer = threading.Thread(target=lambda: result.setdefault("r", sender.close()), daemon=True)
    closer.start()
    time.sleep(0.2)
    server.open_gate()
    producer_thread.join(10)
    closer.join(15)
    time.sleep(0.2)
    report = result["r"]
    assert report.submitted == report.delivered + len(report.failed), report.as_dict()


# -- failures: on_failure and replay ---------------------------------------------------------


def test_on_failure_is_called_once_per_failed_event(server):
    server.default = Reply(400, b'{"error":"bad things"}')
    seen: list[FailedEvent] = []
    lock = threading.Lock()

    def on_failure(failure: FailedEvent) -> None:
        with lock:
            seen.append(failure)

    sender = make_client(server).bulk(concurrency=2, on_failure=on_failure)
    for i in range(25):
        sender.add("c", "e", {"seq": i})
    report = sender.close()
    assert sorted(seq_of(f.event) for f in seen) == list(range(25))
    assert sorted(seen, key=lambda f: seq_of(f.event)) == sorted(
        report.failed, key=lambda f: seq_of(f.event)
    )
    for f in seen:
        assert f.status == 400 and f.attempts == 1 and "bad things" in f.reason
    assert report.retries == 0 and report.requests == len(server.requests)
    assert not report.ok
    assert_account(report, server, {("c", i) for i in range(25)})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_on_failure_exception_does_not_break_the_account(server):
    server.default = Reply(400, b"bad")

    def on_failure(failure: FailedEvent) -> None:
        raise RuntimeError("callback bug")

    sender = make_client(server).bulk(concurrency=1, on_failure=on_failure)
    for i in range(30):
        sender.add("c", "e", {"seq": i})
    report = sender.close(timeout=5)
    assert report.submitted == 30
    assert sorted(seq_of(f.event) for f in report.failed) == list(range(30))


def test_failed_events_replay_with_add(server):
    client = make_client(server, encryption_master_key_base64=MASTER_KEY_B64)
    server.default = Reply(403, b"over quota")
    originals: dict[tuple[str, int], str] = {}
    sender = client.bulk(concurrency=1)
    for i in range(12):
        channel = "private-encrypted-r" if i % 4 == 0 else "r"
        data = {"seq": i, "text": "héllo ☃"}
        sender.add(channel, "e", data, socket_id="12.34" if i % 3 == 0 else None)
        originals[(channel, i)] = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    report = sender.close()
    assert len(report.failed) == 12 and report.delivered == 0
    for f in report.failed:
        assert f.status == 403 and f.attempts == 1
        assert set(f.event) <= {"channel", "name", "data", "socket_id"}
        assert json.loads(f.event["data"])["text"] == "héllo ☃"  # plaintext, even if encrypted

    server.default = Reply()
    first = len(server.requests)
    replay = client.bulk()
    for f in report.failed:
        replay.add(**f.event)
    again = replay.close()
    assert again.ok and again.delivered == 12
    replayed = [ev for r in server.requests[first:] if r.accepted for ev in r.batch()]
    assert len(replayed) == 12
    for ev in replayed:
        key = (ev["channel"], seq_of_plain(ev))
        text = originals[key]
        if ev["channel"].startswith("private-encrypted-"):
            assert decrypt_data(ev["channel"], ev["data"]) == text
        else:
            assert ev["data"] == text
        assert ev.get("socket_id") == ("12.34" if key[1] % 3 == 0 else None)


def seq_of_plain(ev: dict[str, Any]) -> int:
    if ev["channel"].startswith("private-encrypted-"):
        return int(json.loads(decrypt_data(ev["channel"], ev["data"]))["seq"])
    return seq_of(ev)


# -- a user's backend (no send_raw): only exceptions tell --------------------------------------


class SendRequestOnly:
    """A backend in the official protocol (``send_request`` only), over the default transport."""

    def __init__(self, client: Any, **options: Any) -> None:
        from pusher_fast.transports import Urllib3Backend

        self._inner = Urllib3Backend(client, **options)

    def send_request(self, request: Any) -> Any:
        return self._inner.send_request(request)


def test_user_backend_success_and_failure(server):
    client = make_client(server, backend=SendRequestOnly)
    server.script(Reply(400, b"nope"))
    sender = client.bulk(concurrency=1, batch_size=5)
    for i in range(10):
        sender.add("c", "e", {"seq": i})
    report = sender.close()
    assert report.delivered + len(report.failed) == 10
    assert all(f.status == 400 for f in report.failed)
    assert_account(report, server, {("c", i) for i in range(10)})


@pytest.mark.parametrize("status", [401, 403])
def test_user_backend_failure_keeps_the_status(server, status):
    client = make_client(server, backend=SendRequestOnly)
    server.default = Reply(status, b"no")
    sender = client.bulk()
    sender.add("c", "e", {"seq": 0})
    report = sender.close()
    assert [f.status for f in report.failed] == [status]


def test_account_helper_sees_duplicates(server):
    # Self-check of the helper used everywhere above.
    server.script(Reply(), Reply())
    client = make_client(server)
    client.trigger_batch([{"channel": "c", "name": "e", "data": json.dumps({"seq": 1})}])
    client.trigger_batch([{"channel": "c", "name": "e", "data": json.dumps({"seq": 1})}])
    assert Account.of(server).accepted == {1: 2}
    report = BulkReport(submitted=1, delivered=1)
    with pytest.raises(AssertionError, match="more than once"):
        assert_account(report, server, {("c", 1)})
    assert isinstance(server.requests[0], Recorded)
    assert issubclass(pusher_fast.PusherTransportError, PusherError)

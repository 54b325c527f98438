"""Retries under injected faults: where they happen, where they must not, and the exact account.

The server (tests/faultserver.py) answers 5xx, 429 with ``Retry-After``, 4xx, resets the
connection (RST), closes it without an answer (FIN), or stalls past the client timeout.  The number
of requests it receives is the ground truth for "retried" / "not retried".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from urllib3.util.retry import Retry

import pusher_fast
from pusher_fast import errors
from pusher_fast.bulk import BulkReport
from tests.faultserver import Close, FaultServer, Recorded, Reply, Reset, json_reply

pytestmark = pytest.mark.timeout(60)

FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def server(faults: FaultServer) -> FaultServer:
    return faults


def client_for(server: FaultServer, **overrides: Any) -> pusher_fast.Pusher:
    overrides.setdefault("timeout", 2)
    return pusher_fast.Pusher(**server.client_kwargs(**overrides))


def send(server: FaultServer, n: int = 5, **options: Any) -> BulkReport:
    """``n`` events through a one-worker sender (one batch when n <= 10)."""
    client = client_for(server, timeout=options.pop("timeout", 2))
    options = {"concurrency": 1, **FAST, **options}
    with client.bulk(**options) as sender:
        for i in range(n):
            sender.add("c", "e", {"seq": i})
    return sender.report


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [int(json.loads(e["data"])["seq"]) for e in events]


# -- bulk sender: what is retried --------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_bulk_retries_retryable_statuses_up_to_retries(server, status):
    server.default = Reply(status, b"try later")
    report = send(server, retries=3)
    assert len(server.requests) == 4  # 1 + 3 retries
    assert report.requests == 4 and report.retries == 3
    assert report.delivered == 0 and len(report.failed) == 5
    for f in report.failed:
        assert f.status == status and f.attempts == 4
        assert f.reason.startswith(f"{status}:") and "try later" in f.reason


def test_bulk_500_then_success_is_delivered_once(server):
    server.script(Reply(500), Reply(500))
    report = send(server, retries=3)
    assert len(server.requests) == 3
    assert report.ok and report.delivered == 5 and report.retries == 2
    assert seqs(server.accepted_events()) == [0, 1, 2, 3, 4]
    assert all(r.signature_ok() for r in server.requests)


def test_bulk_retries_zero_means_one_attempt(server):
    server.default = Reply(503)
    report = send(server, retries=0)
    assert len(server.requests) == 1
    assert [f.attempts for f in report.failed] == [1] * 5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_bulk_never_retries_client_errors(server, status):
    server.default = Reply(status, b"refused", {"Retry-After": "0"})
    report = send(server, n=25, retries=5)
    assert len(server.requests) == 3  # 10 + 10 + 5, each tried once
    assert report.retries == 0 and report.delivered == 0
    assert sorted(seqs([f.event for f in report.failed])) == list(range(25))
    for f in report.failed:
        assert f.status == status and f.attempts == 1 and "refused" in f.reason


def test_bulk_429_honours_retry_after(server):
    server.script(Reply(429, b"slow down", {"Retry-After": "1"}))
    report = send(server, retries=3, backoff_max=10.0)  # Retry-After is capped at backoff_max
    first, second = server.requests
    gap = second.t - first.t
    assert gap >= 0.95, f"retried after {gap:.3f}s, Retry-After said 1 s"
    assert gap < 2.0
    assert report.ok and report.retries == 1
    assert seqs(server.accepted_events()) == [0, 1, 2, 3, 4]


def test_bulk_429_without_retry_after_backs_off(server):
    server.script(Reply(429), Reply(429))
    report = send(server, retries=3, backoff_base=0.2, backoff_max=1.0)
    a, b, c = server.requests
    # Equal jitter: attempt 1 waits 0.1-0.2 s, attempt 2 waits 0.2-0.4 s.
    assert 0.09 <= b.t - a.t < 0.6
    assert 0.19 <= c.t - b.t < 0.8
    assert report.ok


@pytest.mark.parametrize("fault", [Reset(), Close()], ids=["reset", "close"])
def test_bulk_retries_after_connection_loss(server, fault):
    server.script(fault)
    report = send(server, retries=2)
    # Resent once, by the sender or by the transport's stale-connection resend.
    assert len(server.requests) == 2
    assert server.requests[1].conn != server.requests[0].conn
    assert report.ok and report.delivered == 5
    assert seqs(server.accepted_events()) == [0, 1, 2, 3, 4]


def test_bulk_connection_resets_fail_as_transport_errors(server):
    server.default = Reset()
    report = send(server, retries=2)
    assert len(report.failed) == 5 and report.delivered == 0
    for f in report.failed:
        assert f.status is None and f.attempts == 3
        assert f.reason.startswith("transport:")
    assert 3 <= len(server.requests) <= 6


def test_bulk_retries_bound_the_requests_on_resets(server):
    server.default = Reset()
    report = send(server, retries=2)
    assert report.requests == len(server.requests) == 3


def test_bulk_retries_after_timeout(server):
    # Stalls past the 0.3 s client timeout, then drops the connection without processing.
    server.script(Close(delay=1.0))
    report = send(server, retries=2, timeout=0.3)
    assert len(server.requests) == 2
    assert report.ok and report.retries == 1 and report.delivered == 5
    assert seqs(server.accepted_events()) == [0, 1, 2, 3, 4]


def test_bulk_timeout_is_at_least_once(server):
    # The stalled first attempt IS processed (late): retrying after a lost answer can deliver
    # twice, but the report counts each event once.
    server.script(Reply(delay=0.8))
    report = send(server, retries=2, timeout=0.3)
    server.wait_idle(5)
    assert report.ok and report.delivered == 5 and report.submitted == 5
    assert sorted(seqs(server.accepted_events())) == sorted([0, 1, 2, 3, 4] * 2)


def test_bulk_connection_refused_is_retried_then_failed():
    server = FaultServer()
    port = server.port
    server.stop()  # nothing listens on the port now
    client = pusher_fast.Pusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=port, ssl=False, timeout=1
    )
    with client.bulk(concurrency=1, retries=2, **FAST) as sender:
        sender.add("c", "e", {"seq": 0})
    (failure,) = sender.report.failed
    assert failure.attempts == 3 and failure.status is None
    assert "transport" in failure.reason
    assert sender.report.requests == 3


# -- bulk sender: in-body errors (soketi style) ----------------------------------------------


@pytest.mark.parametrize(
    ("payload", "retried", "status"),
    [
        ({"error": "Too many requests.", "code": 429}, True, 429),
        ({"error": "A server error has occurred.", "code": 500}, True, 500),
        ({"error": "The secret authentication failed", "code": 401}, False, 401),
        ({"error": "Cannot batch-send more than 10 messages at once", "code": 400}, False, 400),
        ({"error": "The payload size is too big.", "code": 413}, False, 413),
        ({"error": "no code"}, False, 400),
    ],
)
def test_bulk_error_in_a_200_body_is_a_failure(server, payload, retried, status):
    server.default = json_reply(200, payload)
    report = send(server, retries=2)
    assert len(server.requests) == (3 if retried else 1)
    assert len(report.failed) == 5 and report.delivered == 0
    for f in report.failed:
        assert f.status == status and payload["error"] in f.reason


@pytest.mark.parametrize("body", [b'{"ok":true}', b"{}", b'{"channels":{"c":{}}}', b""])
def test_bulk_success_bodies(server, body):
    server.default = Reply(200, body)
    report = send(server)
    assert report.ok and len(server.requests) == 1


# -- bulk sender: exact account under a mix of faults ---------------------------------------


def test_bulk_account_is_exact_under_mixed_faults(server):
    pattern = [
        Reply(500, b"oops"),
        Reset(),
        Reply(400, b"bad batch"),
        Reply(429, b"slow", {"Retry-After": "0"}),
        Close(),
        Reply(503, b"later"),
        Reply(),
        Reply(),
    ]

    def responder(rec: Recorded) -> Any:
        return pattern[rec.index % len(pattern)]

    server.responder = responder
    client = client_for(server)
    n = 400
    with client.bulk(concurrency=4, batch_size=10, retries=3, **FAST) as sender:
        for i in range(n):
            sender.add("c", "e", {"seq": i})
    report = sender.report
    server.wait_idle()

    # Ground truth from the server: every attempt that carried each event, in order.
    attempts: dict[int, list[Recorded]] = {}
    for rec in server.requests:
        for s in seqs(rec.batch()):
            attempts.setdefault(s, []).append(rec)
    assert set(attempts) == set(range(n)), "an event was never sent"

    assert report.submitted == n == report.delivered + len(report.failed)
    # The transport may resend a reset/closed request once by itself (stale keep-alive
    # handling), unseen by the sender: the server can see more requests than it counts.
    assert report.requests <= len(server.requests)
    assert report.retries <= sum(len(b) - 1 for b in _distinct_batches(attempts))
    failed = {int(json.loads(f.event["data"])["seq"]): f for f in report.failed}
    assert len(failed) == len(report.failed), "an event is reported failed twice"
    for s, recs in attempts.items():
        accepted = [r for r in recs if r.accepted]
        if s in failed:
            f = failed[s]
            assert not accepted, f"event {s} failed but the server accepted it"
            assert f.attempts <= len(recs), (s, f, [r.status for r in recs])
            assert f.status == recs[-1].status  # None for reset / close
            if recs[-1].status == 400:
                assert f.attempts >= 1 and "bad batch" in f.reason
            else:
                assert f.attempts == 4, "a retryable failure before retries were exhausted"
        else:
            assert len(accepted) == 1, f"event {s} accepted {len(accepted)} times"
            assert recs[-1] is accepted[0], "an attempt after the one that succeeded"
            assert all(not r.accepted for r in recs[:-1])
    assert report.delivered == n - len(failed)
    assert 0 < report.delivered < n and failed  # the mix really produced both


def _distinct_batches(attempts: dict[int, list[Recorded]]) -> list[list[Recorded]]:
    """The attempt sequences of each batch (events sent together share one)."""
    seen: dict[tuple[int, ...], list[Recorded]] = {}
    for recs in attempts.values():
        seen[tuple(r.index for r in recs)] = recs
    return list(seen.values())


# -- the plain client's retries= (urllib3 Retry) ------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Reply(500, b"oops"), errors.PusherBadStatus),
        (Reply(503, b"later"), errors.PusherBadStatus),
        (Reply(429, b"slow", {"Retry-After": "0"}), errors.PusherBadStatus),
        (Close(delay=1.0), errors.PusherTransportError),
    ],
    ids=["500", "503", "429", "timeout"],
)
def test_client_retries_are_off_by_default(server, fault, error):
    server.default = fault
    client = client_for(server, timeout=0.3)
    with pytest.raises(error):
        client.trigger("c", "e", {"x": 1})
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", [Reset(), Close()], ids=["reset", "close"])
def test_client_does_not_resend_on_a_fresh_connection(server, fault):
    server.default = fault
    client = client_for(server)
    with pytest.raises(errors.PusherTransportError):
        client.trigger("c", "e", {"x": 1})
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", [Reset(), Close()], ids=["reset", "close"])
def test_client_does_not_resend_a_request_the_server_read(server, fault):
    # The second request reuses the kept-alive connection; the server reads it, then drops
    # the connection unanswered: it may have been processed, so it is not sent again.
    server.script(Reply(), fault)
    client = client_for(server)
    assert client.trigger("c", "e", {"n": 1}) == {}
    with pytest.raises(errors.PusherTransportError) as info:
        client.trigger("c", "e", {"n": 2})
    assert info.value.ambiguous is True
    first, dropped = server.requests
    assert dropped.conn == first.conn


@pytest.mark.parametrize("fault", [Reset(), Close()], ids=["reset", "close"])
def test_client_at_least_once_resends_up_to_the_retries(server, fault):
    server.script(Reply())
    server.default = fault
    client = client_for(server, retries=1, at_least_once=True)
    client.trigger("c", "e", {"n": 1})
    with pytest.raises(errors.PusherTransportError):
        client.trigger("c", "e", {"n": 2})
    assert len(server.requests) == 3


def test_official_library_does_not_retry_either(server):
    import pusher

    server.default = Reply(500, b"oops")
    client = pusher.Pusher(**server.client_kwargs(timeout=2))
    with pytest.raises(pusher.errors.PusherError):
        client.trigger("c", "e", {"x": 1})
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_client_retries_3_on_retryable_statuses(server, status):
    server.default = Reply(status, b"nope")
    client = client_for(server, retries=3)
    with pytest.raises(errors.PusherBadStatus) as info:
        client.trigger("c", "e", {"x": 1})
    assert info.value.status == status
    assert len(server.requests) == 4
    bodies = {r.body for r in server.requests}
    assert len(bodies) == 1  # the same request resent


def test_client_retries_then_succeeds(server):
    # The reset and the timeout come after the request was read: retried only because
    # at_least_once asks for it.
    server.script(Reply(500), Reset(), Close(delay=1.0))
    client = client_for(server, retries=3, timeout=0.3, at_least_once=True)
    assert client.trigger("c", "e", {"x": 1}) == {}
    assert len(server.requests) == 4
    assert [r.status for r in server.requests] == [500, None, None, 200]
    assert server.requests[-1].signature_ok()


def test_client_retries_stop_at_an_ambiguous_outcome_without_at_least_once(server):
    server.script(Reply(500), Reset())
    client = client_for(server, retries=3, timeout=0.3)
    with pytest.raises(errors.PusherTransportError) as info:
        client.trigger("c", "e", {"x": 1})
    assert info.value.ambiguous is True
    assert len(server.requests) == 2


def test_client_retries_get_requests(server):
    server.script(Reply(502))
    server.default = json_reply(200, {"channels": {}})
    client = client_for(server, retries=2)
    assert client.channels_info() == {"channels": {}}
    assert [r.method for r in server.requests] == ["GET", "GET"]


def test_client_retry_honours_retry_after(server):
    server.script(Reply(429, b"slow", {"Retry-After": "1"}))
    client = client_for(server, retries=3)
    assert client.trigger("c", "e", {}) == {}
    first, second = server.requests
    assert 0.95 <= second.t - first.t < 2.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.PusherBadRequest),
        (401, errors.PusherBadAuth),
        (403, errors.PusherForbidden),
        (404, errors.PusherBadStatus),
        (413, errors.PusherBadStatus),
    ],
)
def test_client_never_retries_client_errors(server, status, error):
    server.default = Reply(status, b"refused")
    client = client_for(server, retries=3)
    with pytest.raises(error):
        client.trigger("c", "e", {})
    assert len(server.requests) == 1


def test_client_does_not_retry_413_even_with_retry_after(server):
    server.default = Reply(413, b"too big", {"Retry-After": "0"})
    client = client_for(server, retries=3)
    with pytest.raises(errors.PusherBadStatus):
        client.trigger("c", "e", {})
    assert len(server.requests) == 1


def test_client_accepts_a_urllib3_retry(server):
    server.default = Reply(500)
    retry = Retry(total=1, status_forcelist=[500], allowed_methods=None, raise_on_status=False)
    client = client_for(server, retries=retry)
    with pytest.raises(errors.PusherBadStatus):
        client.trigger("c", "e", {})
    assert len(server.requests) == 2


def test_client_rejects_bad_retries():
    with pytest.raises(TypeError):
        pusher_fast.Pusher(app_id="1", key="k", secret="s", retries="3")
    with pytest.raises(TypeError):
        pusher_fast.Pusher(app_id="1", key="k", secret="s", retries=-1)

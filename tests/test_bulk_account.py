"""The sync bulk sender's account under every kind of first-attempt outcome.

The worker sends a batch's first attempt inline and hands any other outcome to the retry
loop; a scripted backend (no network) answers each event's attempts in turn, so the whole
account (delivered, failed with reason and status, requests, retries, ambiguous) is known.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import pusher_fast
from pusher_fast.errors import PusherTransportError

pytestmark = pytest.mark.timeout(60)

KINDS = 6
PER_KIND = 10


class Scripted:
    """A ``backend=`` whose answers depend on the event (batch_size=1) and the attempt."""

    def __init__(self, client: Any, **options: Any) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[int, int] = {}

    def send_once(self, request: Any) -> tuple[int, bytes, dict[str, str]]:
        (event,) = json.loads(request.body)["batch"]
        seq = int(json.loads(event["data"])["seq"])
        with self.lock:
            attempt = self.attempts[seq] = self.attempts.get(seq, 0) + 1
        kind = seq % KINDS
        if kind == 0:
            return 200, b"{}", {}
        if kind == 1:
            return 202, b"", {}
        if kind == 2:  # soketi's way of refusing: a 200 with an error body
            return 200, b'{"error":"refused here","code":4009}', {}
        if kind == 3:
            return (503, b"busy", {}) if attempt == 1 else (200, b"{}", {})
        if kind == 4:
            raise RuntimeError("backend bug")
        if attempt == 1:  # kind 5: no answer after the request went out, then fine
            raise PusherTransportError("reset after sending", ambiguous=True)
        return 200, b"{}", {}

    def send_request(self, request: Any) -> Any:
        raise AssertionError("the bulk sender sends one attempt at a time")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_first_attempt_outcome_is_accounted(concurrency: int) -> None:
    client = pusher_fast.Pusher(app_id="1", key="k", secret="s", backend=Scripted)
    backend = client.http
    assert isinstance(backend, Scripted)
    sender = client.bulk(
        batch_size=1, concurrency=concurrency, retries=2, backoff_base=0.001, backoff_max=0.002
    )
    for seq in range(KINDS * PER_KIND):
        sender.add("orders", "created", {"seq": seq})
    report = sender.close(timeout=20)

    assert report.submitted == KINDS * PER_KIND
    assert report.delivered == 4 * PER_KIND  # kinds 0, 1, 3 (after a retry) and 5 (likewise)
    by_seq = {int(json.loads(f.event["data"])["seq"]): f for f in report.failed}
    assert len(by_seq) == len(report.failed) == 2 * PER_KIND
    assert sorted(by_seq) == sorted(s for s in range(KINDS * PER_KIND) if s % KINDS in (2, 4))
    for seq, failure in by_seq.items():
        assert failure.event == {"channel": "orders", "name": "created", "data": f'{{"seq":{seq}}}'}
        assert failure.attempts == 1 and not failure.ambiguous
        if seq % KINDS == 2:
            assert failure.status == 4009 and "refused here" in failure.reason
        else:
            assert failure.status is None
            assert failure.reason.startswith("unexpected error: RuntimeError('backend bug')")
    # Every event was tried once, kinds 3 and 5 twice; nothing a third time.
    expected = {s: 2 if s % KINDS in (3, 5) else 1 for s in range(KINDS * PER_KIND)}
    assert backend.attempts == expected
    # Answers and transport errors are counted as requests; a backend that raised
    # something else is not (as before the first attempt moved inline).
    assert report.requests == KINDS * PER_KIND - PER_KIND + 2 * PER_KIND
    assert report.retries == 2 * PER_KIND
    assert report.ambiguous == PER_KIND
    assert not [t for t in threading.enumerate() if t.name.startswith("pusher-bulk-")]


def test_ambiguous_first_attempt_is_not_resent_without_at_least_once() -> None:
    client = pusher_fast.Pusher(app_id="1", key="k", secret="s", backend=Scripted)
    backend = client.http
    assert isinstance(backend, Scripted)
    sender = client.bulk(batch_size=1, concurrency=2, at_least_once=False, backoff_base=0.001)
    seqs = [5 + KINDS * i for i in range(PER_KIND)]  # kind 5 only
    for seq in seqs:
        sender.add("orders", "created", {"seq": seq})
    report = sender.close(timeout=20)
    assert report.delivered == 0 and report.submitted == PER_KIND
    assert all(f.ambiguous and f.attempts == 1 for f in report.failed)
    assert all(f.reason.startswith("transport: reset after sending") for f in report.failed)
    assert backend.attempts == {seq: 1 for seq in seqs}
    assert report.requests == PER_KIND and report.retries == 0 and report.ambiguous == PER_KIND

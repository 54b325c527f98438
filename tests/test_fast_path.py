"""The trigger fast path builds exactly the bytes the general path builds."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pusher_fast
from pusher_fast import _json

CHANNEL = st.text("abcXYZ019-_=@,.;", min_size=1, max_size=40)
NAME = st.text(min_size=0, max_size=60)
SCALAR = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30)
DATA = st.recursive(
    SCALAR | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def general_body(client: pusher_fast.Pusher, channel: str, name: str, data: object) -> bytes:
    text = data if isinstance(data, str) else _json.dumps(data)
    return _json.dumps_bytes({"name": name, "channels": [channel], "data": text})


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> pusher_fast.Pusher:
    monkeypatch.setattr(time, "time", lambda: 1353088179.0)
    return pusher_fast.Pusher("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")


@settings(max_examples=300, deadline=None)
@given(
    channel=CHANNEL, name=NAME, data=DATA | st.dictionaries(st.text(max_size=5), DATA, max_size=3)
)
def test_fast_body_equals_general_body(channel: str, name: str, data: object) -> None:
    client = pusher_fast.Pusher("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
    request = client._trigger_request(channel, name, data)
    assert request.body == general_body(client, channel, name, data)
    # the slow path (forced with an explicit socket_id of None -> same request) agrees
    slow = client._trigger_request([channel], name, data)
    assert slow.body == request.body
    assert request.params == slow.params


def test_fast_path_still_signs_the_worked_vector(client: pusher_fast.Pusher) -> None:
    request = client._trigger_request("project-3", "foo", {"some": "data"})
    assert (
        request.body == b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
    )
    assert "auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c" in (
        request.query_string
    )


@pytest.mark.parametrize(
    "channel,data,error",
    [
        ("bad channel", {}, ValueError),
        ("c" * 201, {}, ValueError),
        ("#server-to-user-x", {}, None),  # valid, takes the general path
        ("private-encrypted-x", {}, ValueError),  # no master key
        ("c", {"x": float("nan")}, ValueError),
        ("c", {1: 2}, TypeError),
        ("c", "x" * 30721, ValueError),
        ("c", {"x": "y" * 30720}, ValueError),
    ],
)
def test_fast_path_refuses_what_the_general_path_refuses(channel, data, error) -> None:
    client = pusher_fast.Pusher("3", "k", "s")
    for _ in range(2):  # second call hits the prefix cache
        if error is None:
            client._trigger_request(channel, "e", data)
        else:
            with pytest.raises(error):
                client._trigger_request(channel, "e", data)


@settings(max_examples=300, deadline=None)
@given(
    channel=CHANNEL, name=NAME, data=DATA | st.dictionaries(st.text(max_size=5), DATA, max_size=3)
)
def test_bulk_fast_fragment_equals_general_fragment(channel: str, name: str, data: object) -> None:
    from pusher_fast._events import EventEncoder
    from pusher_fast.bulk import _replay

    encoder = EventEncoder(pusher_fast.Pusher("3", "k", "s").event_settings)
    (fast,) = encoder.encode(channel, name, data, None)
    (slow,) = encoder._encode(channel, name, data, None)
    assert fast[0] == slow[0]
    assert _replay(fast) == _replay(slow)
    text = data if isinstance(data, str) else _json.dumps(data)
    assert _json.loads(fast[0]) == {"channel": channel, "name": name, "data": text}


EVENT = st.fixed_dictionaries({"channel": CHANNEL, "name": NAME, "data": DATA})


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(EVENT, min_size=0, max_size=12))
def test_batch_body_holds_each_event_as_given(batch: list[dict]) -> None:
    client = pusher_fast.Pusher("3", "k", "s")
    before = [dict(e) for e in batch]
    request = client._batch_request(batch)
    assert batch == before  # never modified
    expected = [
        {
            "channel": e["channel"],
            "name": e["name"],
            "data": e["data"] if isinstance(e["data"], str) else _json.dumps(e["data"]),
        }
        for e in batch
    ]
    assert _json.loads(request.body) == {"batch": expected}
    assert request.params == {"batch": expected}


@pytest.mark.parametrize(
    "event,error",
    [
        ({"channel": ["a", "b"], "name": "e", "data": "x"}, (TypeError, ValueError)),
        ({"channel": "bad channel", "name": "e", "data": "x"}, ValueError),
        ({"channel": "a", "name": "e" * 201, "data": "x"}, ValueError),
        ({"channel": "a", "name": "e", "data": {"x": float("inf")}}, ValueError),
        ({"channel": "a", "name": "e", "data": "x" * 10241}, ValueError),
    ],
)
def test_batch_event_errors_are_not_swallowed(event: dict, error) -> None:
    client = pusher_fast.Pusher("3", "k", "s")
    with pytest.raises(error):
        client._batch_request([{"channel": "ok", "name": "e", "data": "x"}, event])

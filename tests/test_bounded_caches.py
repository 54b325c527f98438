"""Every cache in the library is bounded in total entries.

Each test feeds one cache 300,000 distinct keys (what a hostile or careless
caller can do with event names, channel names or paths) and asserts on the
number of entries it holds, never on timing or memory.
"""

from __future__ import annotations

import pytest

from tests.helpers import MASTER_KEY_B64, make_client

DISTINCT = 300_000

pytestmark = pytest.mark.timeout(300)


def test_trigger_prefix_cache_is_bounded_across_event_names_of_one_channel():
    from pusher_fast import _events

    client = make_client()
    request = client._trigger_request
    for i in range(DISTINCT):
        request("orders", f"event-{i}", "d")
    prefixes = client._events._prefixes
    entries = sum(len(by_name) for by_name in prefixes.values())
    assert 0 < entries <= _events.CACHE_SIZE


def test_trigger_prefix_cache_is_bounded_across_channels_and_event_names():
    from pusher_fast import _events

    client = make_client()
    for i in range(DISTINCT):
        client._trigger_request(f"c{i % 5000}", f"e{i}", "d")
    prefixes = client._events._prefixes
    entries = sum(len(by_name) for by_name in prefixes.values())
    assert 0 < entries <= _events.CACHE_SIZE
    assert len(prefixes) <= _events.CACHE_SIZE


def test_bulk_encoder_head_cache_is_bounded():
    from pusher_fast import _events

    client = make_client()
    encoder = _events.EventEncoder(client.event_settings)  # what each bulk sender holds
    for i in range(DISTINCT):
        encoder.encode("orders", f"event-{i}", "d", None)
    assert 0 < len(encoder._heads) <= _events.CACHE_SIZE


def test_batch_head_cache_is_bounded():
    from pusher_fast import _events

    client = make_client()
    for i in range(DISTINCT // 10):
        client._batch_request([{"channel": "orders", "name": f"e{i}", "data": "d"}])
    assert 0 < len(client._events._heads) <= _events.CACHE_SIZE


def test_encrypted_channel_box_cache_is_bounded():
    from pusher_fast._crypto import ChannelBoxes

    client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
    boxes = client._boxes
    assert isinstance(boxes, ChannelBoxes)
    for i in range(DISTINCT):
        boxes.box(f"private-encrypted-{i}")
    assert 0 < len(boxes._boxes) <= ChannelBoxes._LIMIT


def test_valid_channel_cache_is_bounded():
    from pusher_fast import _validation

    for i in range(DISTINCT):
        _validation.validate_channel(f"channel-{i}")
    assert 0 < len(_validation._valid_channels) <= _validation._VALID_CACHE_SIZE


def test_request_head_cache_is_bounded():
    from pusher_fast import _http11
    from pusher_fast._request import GET, Request

    client = make_client()
    encoder = _http11.RequestEncoder("api.example.com")
    for i in range(DISTINCT):
        encoder.encode(Request(client, GET, f"/apps/3/channels/c{i}", {}, b"", "a=b"))
    assert 0 < len(encoder._heads) <= _http11._HEADS_MAX


def test_native_signer_buffer_pools_are_bounded():
    from pusher_fast import _signing

    if _signing.IMPLEMENTATION != "native":
        pytest.skip("the buffer pools belong to the native signer")
    from pusher_fast import _native_signer

    signer = _native_signer.Signer("k", "s")
    # Distinct output sizes: from extra parameters and from key lengths.
    for i in range(2000):
        signer.sign_query("GET", "/apps/3/channels", "info=" + "a" * i, b"", 1353088179)
    for length in range(1, 2000):
        _native_signer.Signer("k" * length, "s")
    bound = 2 * _native_signer._POOLED_MAX + 2
    assert len(_native_signer._pools) <= bound

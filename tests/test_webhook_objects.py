"""Typed webhooks: ``Pusher.webhook(headers, body, *, extra_tokens=None)`` -> ``Webhook``.

The Go library's ``Webhook(header, body)`` is the spec for the result (``time_ms``,
``events`` of ``name``, ``channel``, ``event``, ``data``, ``socket_id``, ``user_id``);
the official Python library's ``validate_webhook`` is the oracle for what is accepted:
on the same signed bodies both accept or both refuse.  Every refusal is a
``PusherWebhookError`` whose ``reason`` names the failed check.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from email.message import Message

import pusher
import pytest

import pusher_fast
from pusher_fast.errors import PusherError, PusherWebhookError, WebhookReason
from tests.helpers import KEY, MASTER_KEY_B64, SECRET, encrypt_data, hmac_hex, make_client

NOW = 1_700_000_000.0
NOW_MS = int(NOW * 1000)
OLD_KEY, OLD_SECRET = "old-key-0001", "old-secret-0001"


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: NOW)


@pytest.fixture
def client():
    return make_client(encryption_master_key_base64=MASTER_KEY_B64)


def body_of(events=None, time_ms=NOW_MS, **extra) -> bytes:
    payload = {"time_ms": time_ms, "events": events if events is not None else []}
    payload.update(extra)
    return json.dumps(payload).encode()


def headers_for(body: bytes, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
    return {"X-Pusher-Key": key, "X-Pusher-Signature": hmac_hex(secret, body)}


def refusal(client, headers, body, **kwargs) -> WebhookReason:
    with pytest.raises(PusherWebhookError) as info:
        client.webhook(headers, body, **kwargs)
    assert SECRET not in str(info.value)
    return info.value.reason


class TestTypedResult:
    def test_the_go_librarys_unmarshalling_vector(self, monkeypatch, client):
        # pusher-http-go webhook_test.go, TestWebhookUnmarshalling: same body, same fields.
        body = (
            b'{"time_ms":1427233518933,"events":[{"name":"client_event",'
            b'"channel":"private-channel","event":"client-yolo",'
            b'"data":"{\\"yolo\\":\\"woot\\"}","socket_id":"44610.7511910"}]}'
        )
        monkeypatch.setattr(time, "time", lambda: 1427233518.933)
        hook = client.webhook(headers_for(body), body)
        assert hook == pusher_fast.Webhook(
            time_ms=1427233518933,
            events=(
                pusher_fast.WebhookEvent(
                    name="client_event",
                    channel="private-channel",
                    event="client-yolo",
                    data='{"yolo":"woot"}',
                    socket_id="44610.7511910",
                ),
            ),
        )
        assert hook.events[0].user_id is None

    def test_every_event_kind_keeps_its_fields_in_order(self, client):
        events = [
            {"name": "channel_occupied", "channel": "presence-a"},
            {"name": "member_added", "channel": "presence-a", "user_id": "u-1"},
            {"name": "member_removed", "channel": "presence-a", "user_id": "u-1"},
            {
                "name": "client_event",
                "channel": "presence-a",
                "event": "client-x",
                "data": "{}",
                "socket_id": "1.2",
                "user_id": "u-1",
            },
            {"name": "channel_vacated", "channel": "presence-a"},
            {"name": "subscription_count", "channel": "a", "subscription_count": 3},
        ]
        body = body_of(events)
        hook = client.webhook(headers_for(body), body)
        assert hook.time_ms == NOW_MS
        assert [dataclasses.asdict(e) for e in hook.events] == [
            {
                "name": e["name"],
                "channel": e["channel"],
                "event": e.get("event"),
                "data": e.get("data"),
                "socket_id": e.get("socket_id"),
                "user_id": e.get("user_id"),
            }
            for e in events
        ]

    def test_result_is_frozen(self, client):
        body = body_of([{"name": "channel_occupied", "channel": "a"}])
        hook = client.webhook(headers_for(body), body)
        with pytest.raises(dataclasses.FrozenInstanceError):
            hook.time_ms = 1  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            hook.events[0].channel = "b"  # type: ignore[misc]
        assert isinstance(hook.events, tuple)
        assert hash(hook) == hash(client.webhook(headers_for(body), body))

    def test_object_data_becomes_json_text(self, client):
        # soketi forwards a client event's data as the JSON value the client sent.
        body = body_of([{"name": "client_event", "channel": "private-a", "data": {"a": [1, "é"]}}])
        assert client.webhook(headers_for(body), body).events[0].data == '{"a":[1,"é"]}'

    def test_integral_float_time_ms_is_an_int(self, client):
        body = body_of(time_ms=float(NOW_MS))
        hook = client.webhook(headers_for(body), body)
        assert hook.time_ms == NOW_MS and type(hook.time_ms) is int

    @pytest.mark.parametrize(
        "headers",
        [
            lambda b: {"x-pusher-key": KEY, "x-pusher-signature": hmac_hex(SECRET, b)},
            lambda b: {"X-PUSHER-KEY": KEY, "X-Pusher-SIGNATURE": hmac_hex(SECRET, b)},
            lambda b: [(b"x-pusher-key", KEY.encode()), (b"x-pusher-signature",
                                                          hmac_hex(SECRET, b).encode())],
            lambda b: {"X-Pusher-Key": [KEY], "X-Pusher-Signature": [hmac_hex(SECRET, b)]},
        ],
    )  # fmt: skip
    def test_headers_are_looked_up_case_insensitively(self, client, headers):
        body = body_of([{"name": "channel_occupied", "channel": "a"}])
        assert client.webhook(headers(body), body).events[0].channel == "a"

    def test_email_message_headers(self, client):
        body = body_of()
        message = Message()
        message["x-PUSHER-key"] = KEY
        message["X-Pusher-Signature"] = hmac_hex(SECRET, body)
        assert client.webhook(message, body).time_ms == NOW_MS

    def test_str_body_is_its_utf8_bytes(self, client):
        body = body_of([{"name": "client_event", "channel": "a", "data": "Zoë"}])
        text = body.decode()
        assert client.webhook(headers_for(body), text).events[0].data == "Zoë"

    def test_json_decoder_is_honoured(self):
        seen = []

        class Decoder(json.JSONDecoder):
            def __init__(self, *args, **kwargs):
                seen.append(True)
                super().__init__(*args, **kwargs)

        body = body_of()
        assert make_client(json_decoder=Decoder).webhook(headers_for(body), body).events == ()
        assert seen


class TestEncryptedEvents:
    CHANNEL = "private-encrypted-orders"

    def test_data_is_decrypted_with_the_master_key(self, client):
        data = encrypt_data(self.CHANNEL, '{"order":"Zoë"}')
        body = body_of([{"name": "client_event", "channel": self.CHANNEL, "data": data}])
        assert client.webhook(headers_for(body), body).events[0].data == '{"order":"Zoë"}'

    def test_without_a_master_key_the_sealed_data_is_returned(self):
        data = encrypt_data(self.CHANNEL, "secret")
        body = body_of([{"name": "client_event", "channel": self.CHANNEL, "data": data}])
        assert make_client().webhook(headers_for(body), body).events[0].data == data

    @pytest.mark.parametrize(
        "data",
        [
            "not json",
            '{"nonce": "AAAA", "ciphertext": "AAAA"}',
            encrypt_data("private-encrypted-elsewhere", "x"),
        ],
    )
    def test_undecryptable_data_is_refused(self, client, data):
        body = body_of([{"name": "client_event", "channel": self.CHANNEL, "data": data}])
        assert refusal(client, headers_for(body), body) is WebhookReason.DECRYPTION_FAILED

    def test_a_flipped_ciphertext_bit_is_refused(self, client):
        sealed = json.loads(encrypt_data(self.CHANNEL, "secret"))
        raw = bytearray(base64.b64decode(sealed["ciphertext"]))
        raw[0] ^= 1
        sealed["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        event = {"name": "client_event", "channel": self.CHANNEL, "data": json.dumps(sealed)}
        body = body_of([event])
        assert refusal(client, headers_for(body), body) is WebhookReason.DECRYPTION_FAILED


class TestRefusals:
    def test_the_error_is_a_pusher_error_and_a_value_error(self, client):
        body = body_of()
        with pytest.raises(PusherWebhookError) as info:
            client.webhook({}, body)
        assert isinstance(info.value, PusherError)
        assert isinstance(info.value, ValueError)
        assert info.value.http_status == 401

    @pytest.mark.parametrize(
        ("headers", "reason"),
        [
            ({}, WebhookReason.MISSING_HEADER),
            ({"X-Pusher-Key": KEY}, WebhookReason.MISSING_HEADER),
            ({"X-Pusher-Signature": "00"}, WebhookReason.MISSING_HEADER),
            ({"X-Pusher-Key": "", "X-Pusher-Signature": "00"}, WebhookReason.MISSING_HEADER),
            ({"X-Pusher-Key": "other", "X-Pusher-Signature": "00"}, WebhookReason.UNKNOWN_KEY),
            ({"X-Pusher-Key": KEY, "X-Pusher-Signature": "00"}, WebhookReason.BAD_SIGNATURE),
        ],
    )
    def test_headers(self, client, headers, reason):
        assert refusal(client, headers, body_of()) is reason

    def test_tampered_body(self, client):
        body = body_of([{"name": "member_added", "channel": "presence-a", "user_id": "u"}])
        tampered = body.replace(b'"u"', b'"v"')
        assert refusal(client, headers_for(body), tampered) is WebhookReason.BAD_SIGNATURE

    def test_signature_with_another_secret(self, client):
        body = body_of()
        headers = headers_for(body, secret="another")
        assert refusal(client, headers, body) is WebhookReason.BAD_SIGNATURE

    @pytest.mark.parametrize("offset", [300_001, -300_001, NOW_MS - 1])
    def test_stale_or_future(self, client, offset):
        body = body_of(time_ms=NOW_MS - offset)
        assert refusal(client, headers_for(body), body) is WebhookReason.STALE

    @pytest.mark.parametrize("raw", [b"", b"not json", b'{"time_ms":', b'{"a":"\xff"}'])
    def test_not_json(self, client, raw):
        assert refusal(client, headers_for(raw), raw) is WebhookReason.NOT_JSON

    @pytest.mark.parametrize(
        "raw",
        [
            b"[1]",
            b'"x"',
            b"{}",
            json.dumps({"time_ms": "1700000000000", "events": []}).encode(),
            json.dumps({"time_ms": True, "events": []}).encode(),
            json.dumps({"time_ms": NOW_MS + 0.5, "events": []}).encode(),
            json.dumps({"time_ms": NOW_MS}).encode(),
            json.dumps({"time_ms": NOW_MS, "events": {}}).encode(),
            body_of(["x"]),
            body_of([{"name": "channel_occupied"}]),
            body_of([{"channel": "a"}]),
            body_of([{"name": 1, "channel": "a"}]),
            body_of([{"name": "member_added", "channel": "a", "user_id": 7}]),
            body_of([{"name": "client_event", "channel": "a", "socket_id": ["1.1"]}]),
        ],
    )
    def test_not_the_webhook_shape(self, client, raw):
        assert refusal(client, headers_for(raw), raw) is WebhookReason.BAD_SHAPE

    def test_a_parsed_body_is_a_type_error_that_names_the_trap(self, client):
        with pytest.raises(TypeError, match="raw body"):
            client.webhook(headers_for(b"{}"), {"time_ms": NOW_MS, "events": []})

    @pytest.mark.parametrize("headers", [None, 7, "X-Pusher-Key: k"])
    def test_headers_of_the_wrong_type_are_a_type_error(self, client, headers):
        with pytest.raises(TypeError, match="headers"):
            client.webhook(headers, body_of())

    def test_unencodable_str_body(self, client):
        assert refusal(client, headers_for(b"x"), "\ud800") is WebhookReason.NOT_JSON


class TestKeyRotation:
    def test_a_body_signed_with_an_extra_token_is_accepted(self, client):
        body = body_of([{"name": "channel_occupied", "channel": "a"}])
        headers = headers_for(body, OLD_KEY, OLD_SECRET)
        assert refusal(client, headers, body) is WebhookReason.UNKNOWN_KEY
        tokens = [{"key": OLD_KEY, "secret": OLD_SECRET}]
        assert client.webhook(headers, body, extra_tokens=tokens).events[0].channel == "a"
        assert client.webhook(headers_for(body), body, extra_tokens=tokens).time_ms == NOW_MS

    def test_a_secret_rotated_under_the_same_key(self, client):
        body = body_of()
        headers = headers_for(body, KEY, OLD_SECRET)
        assert refusal(client, headers, body) is WebhookReason.BAD_SIGNATURE
        tokens = [{"key": KEY, "secret": OLD_SECRET}]
        assert client.webhook(headers, body, extra_tokens=tokens).time_ms == NOW_MS

    def test_a_token_only_vouches_for_its_own_key(self, client):
        body = body_of()
        headers = headers_for(body, OLD_KEY, SECRET)  # old key, current secret
        tokens = [{"key": OLD_KEY, "secret": OLD_SECRET}]
        with pytest.raises(PusherWebhookError) as info:
            client.webhook(headers, body, extra_tokens=tokens)
        assert info.value.reason is WebhookReason.BAD_SIGNATURE

    @pytest.mark.parametrize(
        ("tokens", "error"),
        [
            ({"key": "k", "secret": "s"}, TypeError),
            ("k:s", TypeError),
            (["k:s"], TypeError),
            ([{"key": "k"}], ValueError),
            ([{"key": "", "secret": "s"}], ValueError),
            ([{"key": b"k", "secret": "s"}], ValueError),
        ],
    )
    def test_malformed_extra_tokens(self, client, tokens, error):
        body = body_of()
        with pytest.raises(error):
            client.webhook(headers_for(body), body, extra_tokens=tokens)

    def test_rotated_signers_are_cached_and_bounded(self, client):
        body = body_of()
        for i in range(40):
            tokens = [{"key": f"k{i}", "secret": f"s{i}"}]
            client.webhook(headers_for(body), body, extra_tokens=tokens)
        assert len(client._extra_signers) <= 16


def official(key: str = KEY, secret: str = SECRET) -> pusher.Pusher:
    return pusher.Pusher(app_id="3", key=key, secret=secret)


def official_accepts(client: pusher.Pusher, headers: dict[str, str], body: bytes) -> bool:
    try:
        return (
            client.validate_webhook(
                headers.get("X-Pusher-Key", ""), headers.get("X-Pusher-Signature", ""), body
            )
            is not None
        )
    except Exception:  # the official library raises for some bodies: a refusal too
        return False


def ours_accepts(client, headers, body, **kwargs) -> bool:
    try:
        client.webhook(headers, body, **kwargs)
    except PusherWebhookError:
        return False
    return True


EVENTS = [{"name": "member_added", "channel": "presence-a", "user_id": "u-1"}]
VALID = body_of(EVENTS)


def signed(body: bytes, **kwargs: str) -> tuple[dict[str, str], bytes]:
    return headers_for(body, **kwargs), body


UPPER = {**headers_for(VALID), "X-Pusher-Signature": hmac_hex(SECRET, VALID).upper()}


@pytest.mark.parametrize(
    ("case", "headers", "body"),
    [
        ("valid", *signed(VALID)),
        ("valid, no events", *signed(body_of())),
        ("tampered", headers_for(VALID), VALID.replace(b"u-1", b"u-2")),
        ("appended space", headers_for(VALID), VALID + b" "),
        ("stale", *signed(body_of(EVENTS, NOW_MS - 300_001))),
        ("future", *signed(body_of(EVENTS, NOW_MS + 300_001))),
        ("just fresh", *signed(body_of(EVENTS, NOW_MS - 299_999))),
        ("other secret", *signed(VALID, secret="nope")),
        ("other key", *signed(VALID, key="nope")),
        ("upper-case signature", UPPER, VALID),
        ("not json", *signed(b"nope")),
        ("no time_ms", *signed(b'{"events": []}')),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_accepts_exactly_what_the_official_library_accepts(client, case, headers, body):
    verdict = official_accepts(official(), headers, body)
    assert verdict == (case in ("valid", "valid, no events", "just fresh"))
    assert ours_accepts(client, headers, body) == verdict
    # and validate_webhook, on the same shared code, agrees too
    mine = client.validate_webhook(headers["X-Pusher-Key"], headers["X-Pusher-Signature"], body)
    assert (mine is not None) == ours_accepts(client, headers, body)


@pytest.mark.parametrize("signed_with", ["old", "new"])
def test_rotated_credentials_agree_with_the_official_library(signed_with):
    key, secret = (OLD_KEY, OLD_SECRET) if signed_with == "old" else (KEY, SECRET)
    headers = headers_for(VALID, key, secret)
    new = make_client()
    tokens = [{"key": OLD_KEY, "secret": OLD_SECRET}]
    # With the old credentials as an extra token we accept what either official client
    # (old or new credentials) accepts; without it, what the new one accepts.
    either = official_accepts(official(OLD_KEY, OLD_SECRET), headers, VALID) or official_accepts(
        official(), headers, VALID
    )
    assert either
    assert ours_accepts(new, headers, VALID, extra_tokens=tokens) == either
    assert ours_accepts(new, headers, VALID) == official_accepts(official(), headers, VALID)


def test_typed_events_match_the_official_payload(client):
    client_event = {
        "name": "client_event",
        "channel": "private-b",
        "event": "client-e",
        "data": '{"x":1}',
        "socket_id": "1.2",
    }
    body = body_of([*EVENTS, client_event])
    payload = official().validate_webhook(KEY, hmac_hex(SECRET, body), body)
    hook = client.webhook(headers_for(body), body)
    assert hook.time_ms == payload["time_ms"]
    assert [
        {k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in hook.events
    ] == (payload["events"])


def test_async_pusher_inherits_the_server_side_methods_as_plain_calls():
    from pusher_fast.aio import AsyncPusher

    client = AsyncPusher(app_id="3", key=KEY, secret=SECRET)
    body = body_of([{"name": "channel_occupied", "channel": "a"}])
    assert client.webhook(headers_for(body), body).events[0].channel == "a"
    auth = client.authorize_channel_from_body(b"socket_id=1.2&channel_name=private-a")
    assert auth == {"auth": f"{KEY}:{hmac_hex(SECRET, '1.2:private-a')}"}
    user = client.authenticate_user_from_body(b"socket_id=1.2", {"id": "u"})
    assert user == client.authenticate_user("1.2", {"id": "u"})


def test_a_new_signer_is_used_for_webhooks_at_once(client):
    from pusher_fast._signing import PythonSigner

    body = body_of()
    assert client.webhook(headers_for(body), body).time_ms == NOW_MS
    client._use_signer(PythonSigner(KEY, "rotated-secret"))
    assert refusal(client, headers_for(body), body) is WebhookReason.BAD_SIGNATURE
    assert client.webhook(headers_for(body, secret="rotated-secret"), body).time_ms == NOW_MS

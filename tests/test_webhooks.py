"""Webhook validation: ``validate_webhook(key, signature, body)`` -> payload dict or None.

A webhook is accepted only when the key is ours, the signature is the exact
lowercase hex HMAC-SHA256 of the raw body under our secret, the body is a JSON
object, and its ``time_ms`` is within 5 minutes of now.
"""

from __future__ import annotations

import base64
import decimal
import json
import time

import pytest

from tests.helpers import (
    KEY,
    MASTER_KEY_B64,
    SECRET,
    encrypt_data,
    hmac_hex,
    make_client,
)

NOW = 1_700_000_000.0
NOW_MS = int(NOW * 1000)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: NOW)


@pytest.fixture
def client():
    return make_client(encryption_master_key_base64=MASTER_KEY_B64)


def webhook(events=None, time_ms=NOW_MS, **extra) -> str:
    payload = {
        "time_ms": time_ms,
        "events": events or [{"name": "channel_occupied", "channel": "presence-a"}],
    }
    payload.update(extra)
    return json.dumps(payload)


def sign(body: str | bytes, secret: str = SECRET) -> str:
    return hmac_hex(secret, body)


class TestValidWebhooks:
    def test_valid_webhook_returns_the_payload(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body), body) == json.loads(body)

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_bytes_body_is_accepted_like_str(self, client, kind):
        body = webhook(events=[{"name": "client_event", "channel": "c", "data": "é"}])
        raw = kind(body.encode("utf-8"))
        assert client.validate_webhook(KEY, sign(body), raw) == json.loads(body)

    def test_non_ascii_body_is_signed_over_its_utf8_bytes(self, client):
        body = json.dumps({"time_ms": NOW_MS, "events": [{"data": "Zoë"}]}, ensure_ascii=False)
        assert client.validate_webhook(KEY, sign(body.encode("utf-8")), body)["events"] == [
            {"data": "Zoë"}
        ]

    def test_time_ms_just_inside_five_minutes_is_fresh(self, client):
        for time_ms in (NOW_MS - 299_000, NOW_MS + 299_000):
            body = webhook(time_ms=time_ms)
            assert client.validate_webhook(KEY, sign(body), body) is not None

    def test_json_decoder_is_honoured(self):
        class DecimalDecoder(json.JSONDecoder):
            def __init__(self, *args, **kwargs):
                kwargs["parse_float"] = decimal.Decimal
                super().__init__(*args, **kwargs)

        client = make_client(json_decoder=DecimalDecoder)
        body = webhook(events=[{"name": "e", "channel": "c", "price": 1.1}])
        payload = client.validate_webhook(KEY, sign(body), body)
        assert payload["events"][0]["price"] == decimal.Decimal("1.1")
        assert isinstance(payload["events"][0]["price"], decimal.Decimal)

    def test_bytes_credentials_are_decoded(self, client):
        body = webhook()
        assert client.validate_webhook(KEY.encode(), sign(body).encode(), body) is not None


class TestRefusedWebhooks:
    def test_tampered_body(self, client):
        body = webhook()
        tampered = body.replace("presence-a", "presence-b")
        assert client.validate_webhook(KEY, sign(body), tampered) is None

    def test_truncated_body(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body), body[:-1]) is None

    def test_body_with_appended_whitespace(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body), body + " ") is None

    @pytest.mark.parametrize("body", ["not json", "{", "", "\x00", "{'time_ms': 1}"])
    def test_correctly_signed_body_that_is_not_json(self, client, body):
        assert client.validate_webhook(KEY, sign(body), body) is None

    @pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null", "true"])
    def test_correctly_signed_json_that_is_not_an_object(self, client, body):
        assert client.validate_webhook(KEY, sign(body), body) is None

    def test_correctly_signed_body_that_is_not_utf8(self, client):
        raw = b'{"time_ms": 1, "x": "\xff"}'
        assert client.validate_webhook(KEY, hmac_hex(SECRET, raw), raw) is None

    def test_str_body_that_cannot_be_encoded(self, client):
        body = '{"time_ms": ' + str(NOW_MS) + ', "x": "\ud800"}'
        assert client.validate_webhook(KEY, "0" * 64, body) is None

    def test_signed_with_another_secret(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body, "another-secret"), body) is None

    @pytest.mark.parametrize("key", ["wrong-key", KEY.upper(), KEY + " ", ""])
    def test_wrong_key(self, client, key):
        body = webhook()
        assert client.validate_webhook(key, sign(body), body) is None

    def test_signature_in_upper_case(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body).upper(), body) is None

    @pytest.mark.parametrize("cut", [1, 32, 63])
    def test_signature_of_another_length(self, client, cut):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body)[:cut], body) is None
        assert client.validate_webhook(KEY, sign(body) + "0" * cut, body) is None

    def test_empty_signature(self, client):
        body = webhook()
        assert client.validate_webhook(KEY, "", body) is None

    @pytest.mark.parametrize("char", ["é", "\u0663", "\uff41"])
    def test_non_ascii_signature(self, client, char):
        body = webhook()
        assert client.validate_webhook(KEY, sign(body)[:-1] + char, body) is None

    @pytest.mark.parametrize("offset_ms", [300_001, -300_001, 10**9, -(10**12)])
    def test_stale_or_future_time_ms(self, client, offset_ms):
        body = webhook(time_ms=NOW_MS - offset_ms)
        assert client.validate_webhook(KEY, sign(body), body) is None

    @pytest.mark.parametrize("time_ms", [None, 0, "1700000000000", True, [NOW_MS], {"t": 1}])
    def test_missing_or_non_numeric_time_ms(self, client, time_ms):
        body = webhook(time_ms=time_ms)
        assert client.validate_webhook(KEY, sign(body), body) is None

    def test_body_without_time_ms(self, client):
        body = json.dumps({"events": []})
        assert client.validate_webhook(KEY, sign(body), body) is None

    @pytest.mark.parametrize("argument", ["key", "signature"])
    def test_non_string_key_or_signature_is_a_type_error(self, client, argument):
        body = webhook()
        args = {"key": KEY, "signature": sign(body), "body": body}
        args[argument] = None
        with pytest.raises(TypeError):
            client.validate_webhook(**args)

    @pytest.mark.parametrize("argument", ["key", "signature"])
    def test_non_utf8_bytes_key_or_signature_is_invalid_not_an_error(self, client, argument):
        body = webhook()
        args = {"key": KEY, "signature": sign(body), "body": body}
        args[argument] = b"\xff" * 64
        assert client.validate_webhook(**args) is None

    def test_non_string_body_is_a_type_error(self, client):
        with pytest.raises(TypeError):
            client.validate_webhook(KEY, "0" * 64, {"time_ms": NOW_MS})


class TestEncryptedWebhookEvents:
    CHANNEL = "private-encrypted-orders"

    def events(self, plaintext: str) -> list[dict]:
        return [
            {
                "name": "client_event",
                "channel": self.CHANNEL,
                "event": "client-new",
                "data": encrypt_data(self.CHANNEL, plaintext),
                "socket_id": "1.2",
            },
            {
                "name": "client_event",
                "channel": "private-plain",
                "event": "client-x",
                "data": '{"plain":true}',
            },
            {"name": "channel_vacated", "channel": "private-encrypted-other"},
        ]

    def test_decrypt_replaces_encrypted_data_with_plaintext(self, client):
        events = self.events('{"order":"Zoë"}')
        body = webhook(events=events)
        payload = client.validate_webhook(KEY, sign(body), body, decrypt=True)
        assert payload["events"][0]["data"] == '{"order":"Zoë"}'
        assert payload["events"][0]["event"] == "client-new"
        assert payload["events"][1] == events[1]
        assert payload["events"][2] == events[2]

    def test_without_decrypt_the_ciphertext_is_returned(self, client):
        events = self.events("secret")
        body = webhook(events=events)
        payload = client.validate_webhook(KEY, sign(body), body)
        assert payload["events"] == events

    def test_corrupted_ciphertext_is_refused(self, client):
        sealed = json.loads(encrypt_data(self.CHANNEL, "secret"))
        raw = bytearray(base64.b64decode(sealed["ciphertext"]))
        raw[-1] ^= 1
        sealed["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        body = webhook(
            events=[{"name": "client_event", "channel": self.CHANNEL, "data": json.dumps(sealed)}]
        )
        assert client.validate_webhook(KEY, sign(body), body, decrypt=True) is None
        assert client.validate_webhook(KEY, sign(body), body) is not None

    def test_data_encrypted_for_another_channel_is_refused(self, client):
        data = encrypt_data("private-encrypted-elsewhere", "secret")
        body = webhook(events=[{"name": "client_event", "channel": self.CHANNEL, "data": data}])
        assert client.validate_webhook(KEY, sign(body), body, decrypt=True) is None

    @pytest.mark.parametrize(
        "data",
        [
            "not json",
            '{"nonce": "AAAA", "ciphertext": "AAAA"}',  # nonce too short
            '{"ciphertext": "AAAA"}',
            '{"nonce": "!!", "ciphertext": "!!"}',
        ],
    )
    def test_malformed_encrypted_data_is_refused(self, client, data):
        body = webhook(events=[{"name": "client_event", "channel": self.CHANNEL, "data": data}])
        assert client.validate_webhook(KEY, sign(body), body, decrypt=True) is None


_FAST_PATH_CASES = [
    (KEY, None, {"time_ms": NOW_MS, "events": []}),  # valid
    (KEY, None, {"time_ms": NOW_MS - 300_001, "events": []}),  # stale
    (KEY, None, {"time_ms": NOW_MS + 300_000, "events": []}),  # at the limit
    (KEY, None, {"time_ms": float(NOW_MS), "events": []}),
    (KEY, None, {"time_ms": True}),
    (KEY, None, {"time_ms": "1700000000000"}),
    (KEY, None, {"time_ms": 0}),
    (KEY, None, {"events": []}),
    (KEY, None, [1, 2]),
    (KEY, "tampered", {"time_ms": NOW_MS}),
    ("other-key", None, {"time_ms": NOW_MS}),
]


@pytest.mark.parametrize("as_bytes", [True, False])
@pytest.mark.parametrize("key, tamper, payload", _FAST_PATH_CASES)
def test_the_common_case_shortcut_answers_as_the_general_path(
    client, monkeypatch, as_bytes, key, tamper, payload
):
    """validate_webhook's shortcut (our key, str/bytes body, default JSON) changes nothing."""
    text = json.dumps(payload)
    signature = sign(text)
    if tamper:
        text = text.replace("[", "[ ", 1) if "[" in text else text + " "
    body = text.encode() if as_bytes else text
    fast = client.validate_webhook(key, signature, body)
    monkeypatch.setattr(client, "_webhook_fast", lambda *args: None)
    assert fast == client.validate_webhook(key, signature, body)

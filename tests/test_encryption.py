"""End-to-end encryption of events on ``private-encrypted-`` channels.

Everything sent is decrypted here with PyNaCl directly, with the key the
protocol defines: SHA256(channel name + 32-byte master key).
"""

from __future__ import annotations

import base64
import json
import warnings

import nacl.exceptions
import pytest

from tests.helpers import MASTER_KEY, MASTER_KEY_B64, body_json, decrypt_data, make_client

CHANNEL = "private-encrypted-orders"


@pytest.fixture
def client():
    return make_client(encryption_master_key_base64=MASTER_KEY_B64)


def sent_data(client) -> str:
    return body_json(client.http.last)["data"]


class TestTriggerEncrypts:
    def test_data_decrypts_to_the_original(self, client):
        data = {"item": "Zoë's order", "qty": 2, "tags": ["a", None]}
        client.trigger(CHANNEL, "created", data)
        plaintext = decrypt_data(CHANNEL, sent_data(client))
        assert json.loads(plaintext) == data

    def test_string_data_decrypts_byte_for_byte(self, client):
        client.trigger(CHANNEL, "created", "plain text, ünïcode ✓")
        assert decrypt_data(CHANNEL, sent_data(client)) == "plain text, ünïcode ✓"

    def test_sent_data_is_only_nonce_and_ciphertext(self, client):
        client.trigger(CHANNEL, "created", {"secret": "hunter2"})
        sealed = json.loads(sent_data(client))
        assert list(sealed) == ["nonce", "ciphertext"]
        assert len(base64.b64decode(sealed["nonce"], validate=True)) == 24
        assert b"hunter2" not in client.http.last.body

    def test_other_fields_stay_in_the_clear(self, client):
        client.trigger(CHANNEL, "created", "x", socket_id="1.2")
        body = body_json(client.http.last)
        assert (body["name"], body["channels"], body["socket_id"]) == ("created", [CHANNEL], "1.2")

    def test_channel_key_depends_on_the_channel(self, client):
        client.trigger(CHANNEL, "created", "x")
        with pytest.raises(nacl.exceptions.CryptoError):
            decrypt_data("private-encrypted-other", sent_data(client))

    def test_fresh_nonce_every_time(self, client):
        nonces = set()
        ciphertexts = set()
        for _ in range(50):
            client.trigger(CHANNEL, "created", "same data")
            sealed = json.loads(sent_data(client))
            nonces.add(sealed["nonce"])
            ciphertexts.add(sealed["ciphertext"])
        assert len(nonces) == 50
        assert len(ciphertexts) == 50

    def test_json_encoder_writes_the_official_format(self):
        client = make_client(
            encryption_master_key_base64=MASTER_KEY_B64, json_encoder=json.JSONEncoder
        )
        client.trigger(CHANNEL, "created", {"a": "é"})
        data = sent_data(client)
        sealed = json.loads(data)
        # '{"nonce": "...", "ciphertext": "..."}', with json.dumps spacing
        assert data == json.dumps(sealed, ensure_ascii=False)
        assert decrypt_data(CHANNEL, data) == json.dumps({"a": "é"}, ensure_ascii=False)

    def test_plain_channels_are_not_encrypted(self, client):
        client.trigger("private-orders", "created", {"a": 1})
        assert sent_data(client) == '{"a":1}'

    def test_send_to_user_is_not_encrypted(self, client):
        client.send_to_user("u1", "e", "x")
        assert sent_data(client) == "x"


class TestBatchEncrypts:
    def test_each_encrypted_event_is_sealed_for_its_own_channel(self, client):
        client.trigger_batch(
            [
                {"channel": "private-encrypted-a", "name": "e", "data": {"n": 1}},
                {"channel": "plain", "name": "e", "data": {"n": 2}},
                {"channel": "private-encrypted-b", "name": "e", "data": "three"},
                {"channel": "private-encrypted-a", "name": "e", "data": {"n": 1}},
            ]
        )
        events = body_json(client.http.last)["batch"]
        assert json.loads(decrypt_data("private-encrypted-a", events[0]["data"])) == {"n": 1}
        assert events[1]["data"] == '{"n":2}'
        assert decrypt_data("private-encrypted-b", events[2]["data"]) == "three"
        assert json.loads(decrypt_data("private-encrypted-a", events[3]["data"])) == {"n": 1}
        assert json.loads(events[0]["data"])["nonce"] != json.loads(events[3]["data"])["nonce"]

    def test_batch_to_encrypted_channel_without_master_key_is_refused(self):
        client = make_client()
        with pytest.raises(ValueError, match="master key"):
            client.trigger_batch([{"channel": CHANNEL, "name": "e", "data": "x"}])
        assert client.http.requests == []


class TestMasterKey:
    def test_raw_32_byte_key_encrypts_like_its_base64(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = make_client(encryption_master_key=MASTER_KEY)
        client.trigger(CHANNEL, "e", "x")
        assert decrypt_data(CHANNEL, sent_data(client)) == "x"

    def test_raw_key_as_32_character_string(self):
        raw = "k" * 32
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = make_client(encryption_master_key=raw)
        client.trigger(CHANNEL, "e", "x")
        assert decrypt_data(CHANNEL, sent_data(client), raw.encode()) == "x"

    def test_raw_key_is_deprecated(self):
        with pytest.warns(DeprecationWarning):
            make_client(encryption_master_key=MASTER_KEY)

    @pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
    def test_raw_key_of_the_wrong_size_is_a_value_error(self, size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(ValueError, match="32"):
                make_client(encryption_master_key=b"k" * size)

    def test_raw_string_key_is_counted_in_bytes(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(ValueError, match="32"):
                make_client(encryption_master_key="é" * 16 + "k" * 16)  # 32 chars, 48 bytes

    @pytest.mark.parametrize("size", [0, 31, 33, 64])
    @pytest.mark.parametrize("kind", [str, bytes])
    def test_base64_key_of_the_wrong_size_is_a_value_error(self, size, kind):
        encoded = base64.b64encode(b"k" * size)
        key = encoded.decode() if kind is str else encoded
        with pytest.raises(ValueError, match="32"):
            make_client(encryption_master_key_base64=key)

    def test_base64_key_as_bytes(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64.encode())
        client.trigger(CHANNEL, "e", "x")
        assert decrypt_data(CHANNEL, sent_data(client)) == "x"

    @pytest.mark.parametrize(
        "key",
        [
            "not base64!",
            MASTER_KEY_B64[:-1],  # bad padding
            MASTER_KEY_B64 + "\n",
            "é" * 44,
            "*" * 44,
        ],
    )
    def test_invalid_base64_is_a_value_error(self, key):
        with pytest.raises(ValueError, match="base64"):
            make_client(encryption_master_key_base64=key)

    def test_both_keys_is_a_value_error(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(ValueError, match="both"):
                make_client(
                    encryption_master_key=MASTER_KEY, encryption_master_key_base64=MASTER_KEY_B64
                )

    @pytest.mark.parametrize("argument", ["encryption_master_key", "encryption_master_key_base64"])
    def test_non_string_key_is_a_type_error(self, argument):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(TypeError):
                make_client(**{argument: 12345})

    def test_encrypted_trigger_without_master_key_is_a_value_error(self):
        client = make_client()
        with pytest.raises(ValueError, match="master key"):
            client.trigger(CHANNEL, "e", "x")
        assert client.http.requests == []

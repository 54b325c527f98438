"""Channel authorization and user sign-in.

Every ``auth`` is checked by recomputing HMAC-SHA256 over the documented string
with ``hmac``/``hashlib``: ``socket_id:channel`` (private, private-encrypted),
``socket_id:channel:channel_data`` (presence, over the exact ``channel_data``
returned), ``socket_id::user::user_data`` (sign-in).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.helpers import KEY, MASTER_KEY, MASTER_KEY_B64, SECRET, hmac_hex, make_client


def expected_auth(string_to_sign: str, secret: str = SECRET, key: str = KEY) -> str:
    return f"{key}:{hmac_hex(secret, string_to_sign)}"


class TestPrivateChannels:
    def test_private_auth_signs_socket_id_and_channel(self):
        response = make_client().authenticate("private-orders", "1234.5678")
        assert response == {"auth": expected_auth("1234.5678:private-orders")}

    def test_auth_uses_the_clients_own_secret(self):
        client = make_client(key="other-key", secret="other-secret")
        response = client.authenticate("private-orders", "1.2")
        assert response["auth"] == expected_auth("1.2:private-orders", "other-secret", "other-key")
        assert response["auth"] != expected_auth("1.2:private-orders")

    def test_socket_id_is_part_of_the_signature(self):
        client = make_client()
        first = client.authenticate("private-a", "1.2")["auth"]
        second = client.authenticate("private-a", "1.3")["auth"]
        assert first != second

    def test_custom_data_on_a_private_channel_is_signed_too(self):
        response = make_client().authenticate("private-a", "1.2", {"k": "v"})
        assert response["channel_data"] == '{"k":"v"}'
        assert response["auth"] == expected_auth('1.2:private-a:{"k":"v"}')

    def test_authorize_channel_is_an_alias(self):
        client = make_client()
        assert client.authorize_channel("private-a", "1.2") == client.authenticate(
            "private-a", "1.2"
        )
        assert client.authorize_channel("presence-a", "1.2", {"user_id": "u"}) == (
            client.authenticate("presence-a", "1.2", {"user_id": "u"})
        )

    def test_public_channel_can_be_signed(self):
        # The official library signs any valid channel name; so do we.
        assert make_client().authenticate("public", "1.2") == {"auth": expected_auth("1.2:public")}


class TestPresenceChannels:
    def test_channel_data_is_the_exact_signed_string(self):
        data = {"user_id": "42", "user_info": {"name": "Zoë", "tags": ["a", "b"]}}
        response = make_client().authenticate("presence-room", "1.2", data)
        assert set(response) == {"auth", "channel_data"}
        channel_data = response["channel_data"]
        assert isinstance(channel_data, str)
        assert json.loads(channel_data) == data
        assert response["auth"] == expected_auth(f"1.2:presence-room:{channel_data}")

    def test_numeric_user_id_is_kept(self):
        response = make_client().authenticate("presence-room", "1.2", {"user_id": 7})
        assert json.loads(response["channel_data"]) == {"user_id": 7}
        assert response["auth"] == expected_auth(f"1.2:presence-room:{response['channel_data']}")

    @pytest.mark.parametrize("custom_data", [None, {}, {"user_info": {"a": 1}}, "user-1", ["u"]])
    def test_presence_without_user_id_is_a_value_error(self, custom_data):
        with pytest.raises(ValueError, match="user_id"):
            make_client().authenticate("presence-room", "1.2", custom_data)

    def test_json_encoder_writes_channel_data_as_the_official_library(self):
        data = {"user_id": "42", "user_info": {"name": "Zoë"}}
        response = make_client(json_encoder=json.JSONEncoder).authenticate(
            "presence-room", "1.2", data
        )
        assert response["channel_data"] == json.dumps(data)  # spaces, ensure_ascii
        assert response["auth"] == expected_auth(f"1.2:presence-room:{json.dumps(data)}")


class TestEncryptedChannels:
    def test_shared_secret_is_a_str_of_the_channel_key(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        response = client.authenticate("private-encrypted-orders", "1.2")
        expected_secret = base64.b64encode(
            hashlib.sha256(b"private-encrypted-orders" + MASTER_KEY).digest()
        ).decode("ascii")
        assert response == {
            "auth": expected_auth("1.2:private-encrypted-orders"),
            "shared_secret": expected_secret,
        }
        assert type(response["shared_secret"]) is str  # deliberate fix: official gives bytes

    def test_shared_secret_differs_per_channel(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        a = client.authenticate("private-encrypted-a", "1.2")["shared_secret"]
        b = client.authenticate("private-encrypted-b", "1.2")["shared_secret"]
        assert a != b

    def test_response_is_json_serializable(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        response = client.authenticate("private-encrypted-a", "1.2")
        assert json.loads(json.dumps(response)) == response

    def test_encrypted_channel_without_master_key_is_a_value_error(self):
        with pytest.raises(ValueError, match="master key"):
            make_client().authenticate("private-encrypted-a", "1.2")


class TestUserSignIn:
    def test_user_data_is_the_exact_signed_string(self):
        user = {"id": "u-1", "user_info": {"name": "Zoë"}, "watchlist": ["u-2"]}
        response = make_client().authenticate_user("1.2", user)
        assert set(response) == {"auth", "user_data"}
        assert json.loads(response["user_data"]) == user
        assert response["auth"] == expected_auth(f"1.2::user::{response['user_data']}")

    def test_json_encoder_writes_user_data_as_the_official_library(self):
        user = {"id": "u-1", "name": "Zoë"}
        response = make_client(json_encoder=json.JSONEncoder).authenticate_user("1.2", user)
        assert response["user_data"] == json.dumps(user)
        assert response["auth"] == expected_auth(f"1.2::user::{json.dumps(user)}")

    def test_hostile_socket_id_is_refused(self):
        with pytest.raises(ValueError):
            make_client().authenticate_user("1.2:x", {"id": "u"})

    def test_user_data_is_required(self):
        with pytest.raises(ValueError):
            make_client().authenticate_user("1.2")

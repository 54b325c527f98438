"""Validation: what ``pusher_fast.Pusher`` accepts and what it refuses, and how it says so.

Bad values raise ``ValueError``, bad types ``TypeError``, before anything is sent
(the recording backend then holds no request), with a message that names the
bad value.  Limits are checked at the boundary: the last value accepted and the
first refused.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid

import pytest

from tests.helpers import MASTER_KEY_B64, SECRET, body_json, make_client

HOSTILE_SOCKET_IDS = [
    "1.1:private-other",  # would forge a signature for another channel
    "1.1\n",
    "\n1.1",
    "\u0661.\u0661",  # Arabic-Indic digits match \d but are not socket ids
    "\uff11.\uff11",  # fullwidth digits
    "1.1 ",
    " 1.1",
    ".1",
    "1.",
    ".",
    "1",
    "1..1",
    "1.1.1",
    "-1.1",
    "+1.1",
    "1,1",
    "0x1.1",
    "1.1\x00",
    "1.1:presence-x:{}",
]

BAD_CHANNELS = [
    "a:b",
    "a b",
    " a",
    "a\n",
    "café",
    "private-ünicode",
    "канал",
    "a/b",
    "a*b",
    "a#b",
    "#foo",
    "#server-to-user-",
    "#server-to-user-a:b",
    "",
]


def refused(client) -> bool:
    """Nothing reached the backend."""
    return client.http.requests == []


# -- constructor ------------------------------------------------------------------


class TestConstructor:
    @pytest.mark.parametrize("app_id", ["abc", "12a", "", "1 ", " 1", "-1", "1.5", "١٢٣", "1\n"])
    def test_non_numeric_app_id_is_a_value_error_naming_it(self, app_id):
        with pytest.raises(ValueError) as info:
            make_client(app_id=app_id)
        assert repr(app_id) in str(info.value)
        assert SECRET not in str(info.value)

    def test_numeric_app_id_is_accepted(self):
        assert make_client(app_id="123456").app_id == "123456"

    @pytest.mark.parametrize("ssl", ["true", 1, 0, None])
    def test_ssl_must_be_a_bool(self, ssl):
        with pytest.raises(TypeError):
            make_client(ssl=ssl)

    @pytest.mark.parametrize("port", ["443", 80.0, True, [80]])
    def test_port_must_be_an_int(self, port):
        with pytest.raises(TypeError):
            make_client(port=port)

    @pytest.mark.parametrize("port", [-1, 65536])
    def test_port_out_of_range_is_a_value_error(self, port):
        with pytest.raises(ValueError, match=str(port)):
            make_client(port=port)

    @pytest.mark.parametrize("timeout", ["5", None, True, [5]])
    def test_timeout_must_be_a_number(self, timeout):
        with pytest.raises(TypeError):
            make_client(timeout=timeout)

    @pytest.mark.parametrize("timeout", [1, 0.25])
    def test_int_or_float_timeout_is_kept(self, timeout):
        assert make_client(timeout=timeout).timeout == timeout

    @pytest.mark.parametrize("field", ["key", "secret"])
    @pytest.mark.parametrize("value", [None, 123, ["k"]])
    def test_key_and_secret_must_be_strings(self, field, value):
        with pytest.raises(TypeError):
            make_client(**{field: value})

    def test_bytes_credentials_are_decoded(self):
        client = make_client(key=b"k", secret=b"s")
        assert (client.key, client.secret) == ("k", "s")

    @pytest.mark.parametrize("kb", [0, -1, "10", 1.5])
    def test_max_payload_kb_must_be_a_positive_int(self, kb):
        with pytest.raises(ValueError):
            make_client(max_payload_kb=kb)

    def test_max_payload_kb_bool_is_refused(self):
        with pytest.raises((TypeError, ValueError)):
            make_client(max_payload_kb=True)

    @pytest.mark.parametrize(
        "overrides",
        [
            {"app_id": "x"},
            {"ssl": "yes"},
            {"port": "1"},
            {"timeout": "1"},
            {"key": None},
            {"encryption_master_key_base64": "not base64!"},
            {"encryption_master_key_base64": MASTER_KEY_B64[:-4]},
        ],
        ids=lambda o: next(iter(o)),
    )
    def test_constructor_errors_never_echo_the_secret(self, overrides):
        with pytest.raises((TypeError, ValueError)) as info:
            make_client(**overrides)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value.args)


# -- socket ids ------------------------------------------------------------------


class TestSocketId:
    @pytest.mark.parametrize("socket_id", ["1.1", "0.0", "1234.1234", "123456789012.987654321"])
    def test_ascii_digits_dot_digits_is_accepted(self, socket_id):
        client = make_client()
        client.trigger("c", "e", "d", socket_id=socket_id)
        assert body_json(client.http.last)["socket_id"] == socket_id
        assert client.authenticate("private-c", socket_id)["auth"]
        assert client.authenticate_user(socket_id, {"id": "u"})["auth"]

    @pytest.mark.parametrize("socket_id", HOSTILE_SOCKET_IDS)
    def test_hostile_socket_id_is_refused_by_trigger(self, socket_id):
        client = make_client()
        with pytest.raises(ValueError) as info:
            client.trigger("c", "e", "d", socket_id=socket_id)
        assert repr(socket_id) in str(info.value)
        assert refused(client)

    @pytest.mark.parametrize("socket_id", HOSTILE_SOCKET_IDS)
    def test_hostile_socket_id_is_refused_by_authenticate(self, socket_id):
        with pytest.raises(ValueError) as info:
            make_client().authenticate("private-c", socket_id)
        assert repr(socket_id) in str(info.value)

    @pytest.mark.parametrize("socket_id", HOSTILE_SOCKET_IDS)
    def test_hostile_socket_id_is_refused_by_presence_authenticate(self, socket_id):
        with pytest.raises(ValueError):
            make_client().authenticate("presence-c", socket_id, {"user_id": "1"})

    @pytest.mark.parametrize("socket_id", HOSTILE_SOCKET_IDS)
    def test_hostile_socket_id_is_refused_by_authenticate_user(self, socket_id):
        with pytest.raises(ValueError):
            make_client().authenticate_user(socket_id, {"id": "u"})

    @pytest.mark.parametrize("socket_id", HOSTILE_SOCKET_IDS)
    def test_hostile_socket_id_is_refused_in_a_batch_event(self, socket_id):
        client = make_client()
        with pytest.raises(ValueError):
            client.trigger_batch(
                [{"channel": "c", "name": "e", "data": "d", "socket_id": socket_id}]
            )
        assert refused(client)

    def test_authenticate_refuses_an_empty_socket_id(self):
        with pytest.raises(ValueError):
            make_client().authenticate("private-c", "")

    @pytest.mark.parametrize("socket_id", [1.1, 11, ["1.1"]])
    def test_non_string_socket_id_is_a_type_error(self, socket_id):
        with pytest.raises(TypeError):
            make_client().authenticate("private-c", socket_id)


# -- channel names -----------------------------------------------------------------


class TestChannelNames:
    @pytest.mark.parametrize("channel", ["a", "-_=@,.;", "private-x", "presence-x", "A9z"])
    def test_channel_alphabet_is_accepted(self, channel):
        client = make_client()
        client.trigger(channel, "e", "d")
        assert body_json(client.http.last)["channels"] == [channel]

    @pytest.mark.parametrize("channel", BAD_CHANNELS)
    def test_channel_outside_the_alphabet_is_refused_naming_it(self, channel):
        client = make_client()
        with pytest.raises(ValueError) as info:
            client.trigger(channel, "e", "d")
        assert repr(channel) in str(info.value)
        assert refused(client)

    @pytest.mark.parametrize("channel", BAD_CHANNELS)
    def test_bad_channel_in_a_list_is_refused(self, channel):
        client = make_client()
        with pytest.raises(ValueError):
            client.trigger(["ok", channel], "e", "d")
        assert refused(client)

    def test_200_characters_is_the_longest_channel(self):
        client = make_client()
        client.trigger("c" * 200, "e", "d")
        with pytest.raises(ValueError, match="201"):
            client.trigger("c" * 201, "e", "d")
        assert len(client.http.requests) == 1

    def test_server_to_user_channel_can_be_triggered(self):
        client = make_client()
        client.trigger("#server-to-user-42", "e", "d")
        assert body_json(client.http.last)["channels"] == ["#server-to-user-42"]

    @pytest.mark.parametrize("method", ["authenticate", "channel_info", "users_info"])
    def test_server_to_user_channel_cannot_be_authorized_or_queried(self, method):
        client = make_client()
        args = ("1.1",) if method == "authenticate" else ()
        with pytest.raises(ValueError, match="#server-to-user-42"):
            getattr(client, method)("#server-to-user-42", *args)
        assert refused(client)

    @pytest.mark.parametrize("channel", BAD_CHANNELS)
    @pytest.mark.parametrize("method", ["authenticate", "channel_info", "users_info"])
    def test_bad_channel_refused_everywhere(self, method, channel):
        client = make_client()
        args = ("1.1",) if method == "authenticate" else ()
        with pytest.raises(ValueError):
            getattr(client, method)(channel, *args)

    def test_bad_channel_in_a_batch_is_refused(self):
        client = make_client()
        with pytest.raises(ValueError, match="a:b"):
            client.trigger_batch([{"channel": "a:b", "name": "e", "data": "d"}])
        assert refused(client)

    @pytest.mark.parametrize("channel", [1, None, 1.5])
    def test_non_string_channel_is_a_type_error(self, channel):
        with pytest.raises(TypeError):
            make_client().trigger([channel], "e", "d")


class TestChannelLists:
    def test_100_channels_is_the_most(self):
        client = make_client()
        client.trigger([f"c{i}" for i in range(100)], "e", "d")
        assert len(body_json(client.http.last)["channels"]) == 100
        with pytest.raises(ValueError, match="101"):
            client.trigger([f"c{i}" for i in range(101)], "e", "d")
        assert len(client.http.requests) == 1

    def test_empty_list_is_a_value_error(self):
        # Deliberate deviation: the official library raises IndexError.
        client = make_client()
        with pytest.raises(ValueError):
            client.trigger([], "e", "d")
        assert refused(client)

    def test_generator_of_channels_is_accepted(self):
        client = make_client()
        client.trigger((f"c{i}" for i in range(3)), "e", "d")
        assert body_json(client.http.last)["channels"] == ["c0", "c1", "c2"]

    def test_generator_of_101_channels_is_refused(self):
        with pytest.raises(ValueError):
            make_client().trigger((f"c{i}" for i in range(101)), "e", "d")

    def test_empty_generator_is_a_value_error(self):
        with pytest.raises(ValueError):
            make_client().trigger(iter(()), "e", "d")

    def test_tuple_and_set_are_accepted(self):
        client = make_client()
        client.trigger(("a", "b"), "e", "d")
        assert body_json(client.http.last)["channels"] == ["a", "b"]
        client.trigger({"a"}, "e", "d")
        assert body_json(client.http.last)["channels"] == ["a"]

    @pytest.mark.parametrize("channels", [{"a": 1}, b"abc", 5, None])
    def test_dict_bytes_and_scalars_are_type_errors(self, channels):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger(channels, "e", "d")
        assert refused(client)

    @pytest.mark.parametrize(
        "channels",
        [
            ["private-encrypted-a", "b"],
            ["b", "private-encrypted-a"],
            ["private-encrypted-a", "private-encrypted-b"],
        ],
    )
    def test_encrypted_channel_mixed_with_others_is_refused(self, channels):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        with pytest.raises(ValueError, match="encrypted"):
            client.trigger(channels, "e", "d")
        assert refused(client)


# -- event names ----------------------------------------------------------------------


class TestEventNames:
    def test_200_characters_is_the_longest_event_name(self):
        client = make_client()
        client.trigger("c", "e" * 200, "d")
        assert body_json(client.http.last)["name"] == "e" * 200
        with pytest.raises(ValueError, match="201") as info:
            client.trigger("c", "f" * 201, "d")
        assert "fff" in str(info.value)
        assert len(client.http.requests) == 1

    def test_event_name_length_counts_characters(self):
        client = make_client()
        client.trigger("c", "é" * 200, "d")
        assert body_json(client.http.last)["name"] == "é" * 200

    def test_batch_event_name_limit(self):
        client = make_client()
        client.trigger_batch([{"channel": "c", "name": "e" * 200, "data": "d"}])
        with pytest.raises(ValueError, match="201"):
            client.trigger_batch([{"channel": "c", "name": "e" * 201, "data": "d"}])
        assert len(client.http.requests) == 1

    @pytest.mark.parametrize("name", [5, None, ["e"]])
    def test_non_string_event_name_is_a_type_error(self, name):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger("c", name, "d")
        with pytest.raises(TypeError):
            client.trigger_batch([{"channel": "c", "name": name, "data": "d"}])
        assert refused(client)


# -- event data ---------------------------------------------------------------------------


class Opaque:
    pass


class Color(enum.Enum):
    RED = 1


class NotANumber(enum.Enum):
    X = float("nan")


class TestData:
    @pytest.mark.parametrize(
        "data",
        [
            Opaque(),
            {"a": Opaque()},
            datetime.datetime(2024, 1, 1),
            {"when": datetime.date(2024, 1, 1)},
            [datetime.time(12, 0)],
            {1, 2},
            b"bytes",
            decimal.Decimal("1.5"),
            {"a": [1, {"b": object()}]},
        ],
        ids=[
            "object",
            "nested-object",
            "datetime",
            "date",
            "time",
            "set",
            "bytes",
            "decimal",
            "deep-object",
        ],
    )
    def test_data_json_cannot_hold_is_a_type_error(self, data):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger("c", "e", data)
        with pytest.raises(TypeError):
            client.trigger_batch([{"channel": "c", "name": "e", "data": data}])
        assert refused(client)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
    @pytest.mark.parametrize(
        "wrap",
        [
            lambda x: x,
            lambda x: {"a": x},
            lambda x: [1, 2, x],
            lambda x: {"a": [{"b": (1, x)}]},
            lambda x: {"big": 2**70, "a": [x]},
        ],
        ids=["bare", "dict", "list", "deep", "with-bigint"],
    )
    def test_non_finite_floats_are_value_errors_never_null(self, bad, wrap):
        client = make_client()
        with pytest.raises(ValueError):
            client.trigger("c", "e", wrap(bad))
        with pytest.raises(ValueError):
            client.trigger_batch([{"channel": "c", "name": "e", "data": wrap(bad)}])
        assert refused(client)

    @pytest.mark.parametrize("bad", [float("nan"), float("inf")])
    def test_non_finite_floats_refused_in_auth_data(self, bad):
        client = make_client()
        with pytest.raises(ValueError):
            client.authenticate("presence-c", "1.1", {"user_id": "1", "user_info": {"x": bad}})
        with pytest.raises(ValueError):
            client.authenticate_user("1.1", {"id": "1", "score": bad})

    @pytest.mark.parametrize(
        "data",
        [{1: "a"}, {"a": {None: 1}}, [{(1, 2): "t"}], {"a": {1.5: 1}}, {True: 1}],
    )
    def test_non_string_keys_are_type_errors(self, data):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger("c", "e", data)
        assert refused(client)

    def test_non_string_keys_are_type_errors_even_next_to_a_big_int(self):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger("c", "e", {"big": 2**64, 1: "x"})

    @pytest.mark.parametrize("number", [2**63, 2**64, -(2**63) - 1, 2**200, -(10**40)])
    def test_big_ints_are_written_exactly(self, number):
        client = make_client()
        client.trigger("c", "e", {"n": number, "s": "é"})
        data = body_json(client.http.last)["data"]
        assert json.loads(data) == {"n": number, "s": "é"}
        assert str(number) in data

    def test_string_data_is_sent_as_is(self):
        client = make_client()
        client.trigger("c", "e", '{"already": "json"}')
        assert body_json(client.http.last)["data"] == '{"already": "json"}'

    def test_subclasses_json_handles_are_accepted(self):
        class MyDict(dict):
            pass

        class MyList(list):
            pass

        client = make_client()
        client.trigger("c", "e", MyDict(a=MyList([1, 2])))
        assert json.loads(body_json(client.http.last)["data"]) == {"a": [1, 2]}

    @pytest.mark.parametrize("kind", ["float-subclass", "namedtuple"])
    def test_float_subclasses_and_namedtuples_are_accepted(self, kind):
        import collections

        class Score(float):
            pass

        point = collections.namedtuple("point", "x y")
        data = {"score": Score(1.5)} if kind == "float-subclass" else {"p": point(1, 2)}
        expected = {"score": 1.5} if kind == "float-subclass" else {"p": [1, 2]}
        client = make_client()
        client.trigger("c", "e", data)
        assert json.loads(body_json(client.http.last)["data"]) == expected

    def test_uuid_and_enum_are_written_as_their_json_form(self):
        # A documented extension over json.dumps (orjson writes them).
        client = make_client()
        client.trigger("c", "e", {"id": uuid.UUID(int=1), "color": Color.RED})
        data = json.loads(body_json(client.http.last)["data"])
        assert data == {"id": str(uuid.UUID(int=1)), "color": Color.RED.value}

    def test_enum_whose_value_is_nan_is_refused(self):
        client = make_client()
        with pytest.raises(ValueError):
            client.trigger("c", "e", {"x": NotANumber.X})
        assert refused(client)

    def test_json_encoder_makes_extra_types_serializable(self):
        class DateEncoder(json.JSONEncoder):
            def default(self, o):
                if isinstance(o, datetime.date):
                    return o.isoformat()
                return super().default(o)

        client = make_client(json_encoder=DateEncoder)
        client.trigger("c", "e", {"d": datetime.date(2024, 2, 3)})
        assert body_json(client.http.last)["data"] == '{"d": "2024-02-03"}'
        with pytest.raises(TypeError):
            client.trigger("c", "e", {"d": Opaque()})


class TestDataSize:
    @pytest.mark.parametrize(
        "char, count",
        [("a", 30720), ("é", 15360), ("€", 10240), ("😀", 7680)],
        ids=["ascii", "2-byte", "3-byte", "4-byte"],
    )
    def test_trigger_takes_exactly_30720_utf8_bytes(self, char, count):
        client = make_client()
        data = char * count
        assert len(data.encode("utf-8")) == 30720
        client.trigger("c", "e", data)
        assert len(client.http.requests) == 1
        with pytest.raises(ValueError, match="30721") as info:
            client.trigger("c", "e", data + "a")
        assert "30720" in str(info.value)
        assert len(client.http.requests) == 1

    def test_size_is_counted_in_utf8_bytes_not_characters(self):
        client = make_client()
        client.trigger("c", "e", "é" * 10000)  # 20,000 bytes: fits the trigger limit
        with pytest.raises(ValueError, match="20000"):
            client.trigger_batch([{"channel": "c", "name": "e", "data": "é" * 10000}])
        client.trigger_batch([{"channel": "c", "name": "e", "data": "a" * 10000}])
        assert len(client.http.requests) == 2

    def test_batch_event_takes_exactly_10240_bytes(self):
        client = make_client()
        client.trigger_batch([{"channel": "c", "name": "e", "data": "é" * 5120}])
        with pytest.raises(ValueError, match=r"batch\[1\]"):
            client.trigger_batch(
                [
                    {"channel": "c", "name": "e", "data": "ok"},
                    {"channel": "c", "name": "e", "data": "é" * 5120 + "a"},
                ]
            )
        assert len(client.http.requests) == 1

    def test_encoded_json_is_what_is_counted(self):
        client = make_client()
        # '{"k":"' + N chars + '"}' is N + 8 bytes of compact JSON.
        client.trigger("c", "e", {"k": "a" * 30712})
        assert len(body_json(client.http.last)["data"]) == 30720
        with pytest.raises(ValueError):
            client.trigger("c", "e", {"k": "a" * 30713})

    @pytest.mark.parametrize("kb", [1, 100])
    def test_max_payload_kb_overrides_both_limits(self, kb):
        client = make_client(max_payload_kb=kb)
        limit = kb * 1024
        client.trigger("c", "e", "a" * limit)
        client.trigger_batch([{"channel": "c", "name": "e", "data": "a" * limit}])
        with pytest.raises(ValueError, match=str(limit)):
            client.trigger("c", "e", "a" * (limit + 1))
        with pytest.raises(ValueError, match=str(limit)):
            client.trigger_batch([{"channel": "c", "name": "e", "data": "a" * (limit + 1)}])
        assert len(client.http.requests) == 2

    def test_encrypted_size_is_counted_after_encryption(self):
        client = make_client(max_payload_kb=1, encryption_master_key_base64=MASTER_KEY_B64)
        # Compact {"nonce":"<32>","ciphertext":"<4*ceil((n+16)/3)>"} is 60 + that many bytes:
        # 707 plaintext bytes make exactly 1024, 708 make 1028.
        client.trigger("private-encrypted-c", "e", "a" * 707)
        assert len(body_json(client.http.last)["data"]) == 1024
        with pytest.raises(ValueError, match="1028"):
            client.trigger("private-encrypted-c", "e", "a" * 708)
        assert len(client.http.requests) == 1


# -- user ids -----------------------------------------------------------------------------

BAD_USER_IDS = ["", "a:b", "a b", "é", "u\n", "a/b", "#u", "u" * 201]


class TestUserIds:
    @pytest.mark.parametrize("user_id", BAD_USER_IDS)
    @pytest.mark.parametrize("method", ["send_to_user", "terminate_user_connections"])
    def test_bad_user_id_is_a_value_error(self, method, user_id):
        client = make_client()
        args = ("e", "d") if method == "send_to_user" else ()
        with pytest.raises(ValueError) as info:
            getattr(client, method)(user_id, *args)
        if user_id and len(user_id) < 100:
            assert repr(user_id) in str(info.value)
        assert refused(client)

    @pytest.mark.parametrize("user_id", [5, None, ["u"]])
    @pytest.mark.parametrize("method", ["send_to_user", "terminate_user_connections"])
    def test_non_string_user_id_is_a_type_error(self, method, user_id):
        client = make_client()
        args = ("e", "d") if method == "send_to_user" else ()
        with pytest.raises(TypeError):
            getattr(client, method)(user_id, *args)

    def test_200_character_user_id_can_be_terminated(self):
        client = make_client()
        client.terminate_user_connections("u" * 200)
        assert client.http.last.path == f"/apps/3/users/{'u' * 200}/terminate_connections"

    def test_send_to_user_channel_obeys_the_channel_length_limit(self):
        # '#server-to-user-' is 16 characters: a 184-character id makes a 200-character channel.
        client = make_client()
        client.send_to_user("u" * 184, "e", "d")
        with pytest.raises(ValueError):
            client.send_to_user("u" * 185, "e", "d")
        assert len(client.http.requests) == 1

    @pytest.mark.parametrize("user_data", [{}, {"id": None}, {"name": "x"}])
    def test_user_data_without_id_is_a_value_error(self, user_data):
        with pytest.raises(ValueError, match="id"):
            make_client().authenticate_user("1.1", user_data)

    def test_user_data_none_is_a_value_error(self):
        with pytest.raises(ValueError):
            make_client().authenticate_user("1.1", None)

    @pytest.mark.parametrize("user_id", [5, 1.5, ["u"], True])
    def test_user_data_id_must_be_a_string(self, user_id):
        with pytest.raises(TypeError):
            make_client().authenticate_user("1.1", {"id": user_id})

    @pytest.mark.parametrize("user_id", ["", "a b", "é", "u" * 201])
    def test_user_data_id_must_be_a_valid_user_id(self, user_id):
        with pytest.raises(ValueError):
            make_client().authenticate_user("1.1", {"id": user_id})

    def test_user_data_must_be_a_mapping(self):
        with pytest.raises(TypeError):
            make_client().authenticate_user("1.1", [("id", "u")])


# -- query attributes and prefixes ----------------------------------------------------------


class TestAttributesAndPrefix:
    @pytest.mark.parametrize(
        "attributes", [["user count"], ["USER_COUNT"], ["user_count&x=1"], [""], "a,,b", ["é"]]
    )
    def test_bad_attribute_is_a_value_error_naming_it(self, attributes):
        client = make_client()
        with pytest.raises(ValueError) as info:
            client.channels_info(attributes=attributes)
        bad = attributes[0] if isinstance(attributes, list) else ""
        assert repr(bad) in str(info.value)
        with pytest.raises(ValueError):
            client.channel_info("presence-c", attributes=attributes)
        with pytest.raises(ValueError):
            client.trigger("c", "e", "d", info=attributes)
        with pytest.raises(ValueError):
            client.trigger_batch([{"channel": "c", "name": "e", "data": "d", "info": attributes}])
        assert refused(client)

    @pytest.mark.parametrize("attributes", [[1], [None]])
    def test_non_string_attribute_is_a_type_error(self, attributes):
        with pytest.raises(TypeError):
            make_client().channels_info(attributes=attributes)

    @pytest.mark.parametrize("prefix", ["a:b", "a b", "#", "é", "a&b", "p" * 201])
    def test_bad_prefix_is_a_value_error_naming_it(self, prefix):
        client = make_client()
        with pytest.raises(ValueError) as info:
            client.channels_info(prefix_filter=prefix)
        assert repr(prefix[:50]).rstrip("'") in str(info.value)
        assert refused(client)

    def test_prefix_of_200_characters_is_accepted(self):
        client = make_client()
        client.channels_info(prefix_filter="p" * 200)
        assert client.http.last.query_params["filter_by_prefix"] == "p" * 200


# -- batches ----------------------------------------------------------------------------


class TestBatchShape:
    @pytest.mark.parametrize("batch", ["abc", b"abc", {"channel": "c"}, 5, None])
    def test_batch_must_be_a_list_of_dicts(self, batch):
        with pytest.raises(TypeError):
            make_client().trigger_batch(batch)

    @pytest.mark.parametrize("event", ["abc", ["c", "e", "d"], None])
    def test_batch_event_must_be_a_dict(self, event):
        with pytest.raises(TypeError, match=r"batch\[0\]"):
            make_client().trigger_batch([event])

    @pytest.mark.parametrize("missing", ["channel", "name", "data"])
    def test_batch_event_missing_a_field_is_a_key_error(self, missing):
        event = {"channel": "c", "name": "e", "data": "d"}
        del event[missing]
        client = make_client()
        with pytest.raises(KeyError, match=missing):
            client.trigger_batch([event])
        assert refused(client)

    def test_already_encoded_data_must_be_a_string(self):
        client = make_client()
        with pytest.raises(TypeError):
            client.trigger_batch([{"channel": "c", "name": "e", "data": {"a": 1}}], True)
        assert refused(client)


# -- cyclic and deeply nested data -----------------------------------------------------


def cyclic() -> dict:
    d: dict = {}
    d["a"] = d
    d["b"] = d  # two edges to itself: a naive walk grows its stack without bound
    return d


def nested(depth: int) -> list:
    root: list = []
    inner = root
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return root


class TestCyclicAndDeepData:
    """A cycle or too deep nesting is a ValueError at once, on every entry point."""

    ENCODERS = (None, json.JSONEncoder)

    def calls(self, client, data):
        presence = {"user_id": "u1", "user_info": data}
        return [
            lambda: client.trigger("c", "e", data),
            lambda: client.trigger(["c", "d"], "e", data),
            lambda: client.trigger_batch([{"channel": "c", "name": "e", "data": data}]),
            lambda: client.authenticate("presence-c", "1.1", presence),
            lambda: client.authenticate("private-c", "1.1", {"x": data}),
            lambda: client.authenticate_user("1.1", {"id": "u1", "info": data}),
            lambda: client.send_to_user("u1", "e", data),
        ]

    @pytest.mark.timeout(10)
    @pytest.mark.parametrize("encoder", ENCODERS, ids=["default", "json_encoder"])
    def test_cycle_is_a_value_error_naming_it(self, encoder):
        client = make_client(json_encoder=encoder)
        for call in self.calls(client, cyclic()):
            with pytest.raises(ValueError, match="Circular reference"):
                call()
        assert refused(client)

    @pytest.mark.timeout(10)
    @pytest.mark.parametrize("encoder", ENCODERS, ids=["default", "json_encoder"])
    def test_too_deep_is_a_value_error_not_recursion_error(self, encoder):
        client = make_client(json_encoder=encoder)
        for call in self.calls(client, nested(100_000)):
            with pytest.raises(ValueError, match="nested deeper"):
                call()
        assert refused(client)

    @pytest.mark.parametrize("encoder", ENCODERS, ids=["default", "json_encoder"])
    def test_deeper_than_orjson_but_within_json_dumps_is_written(self, encoder):
        client = make_client(json_encoder=encoder)
        data = nested(300)  # orjson stops at 255 levels; json.dumps takes it
        client.trigger("c", "e", data)
        assert json.loads(body_json(client.http.last)["data"]) == data

    def test_shared_but_acyclic_data_is_written(self):
        client = make_client()
        leaf = {"x": 2**70}  # a big int sends it through json.dumps
        client.trigger("c", "e", {"a": leaf, "b": leaf, "c": [leaf, leaf]})
        sent = json.loads(body_json(client.http.last)["data"])
        assert sent == {"a": leaf, "b": leaf, "c": [leaf, leaf]}

    @pytest.mark.timeout(10)
    def test_bulk_sender_add_refuses_a_cycle(self):
        from pusher_fast.bulk import BulkSender

        client = make_client()
        sender = BulkSender(client)
        try:
            with pytest.raises(ValueError, match="Circular reference"):
                sender.add("c", "e", cyclic())
            with pytest.raises(ValueError, match="nested deeper"):
                sender.add("c", "e", nested(100_000))
        finally:
            sender.close()

    @pytest.mark.timeout(10)
    def test_async_client_and_bulk_sender_refuse_a_cycle(self):
        import asyncio

        from pusher_fast.aio import AsyncBulkSender, AsyncPusher
        from tests.helpers import APP_ID, KEY

        class Backend:
            def __init__(self, client, **options):
                self.requests = []

            async def send_request(self, request):
                self.requests.append(request)
                return {}

        async def main():
            client = AsyncPusher(app_id=APP_ID, key=KEY, secret=SECRET, backend=Backend)
            with pytest.raises(ValueError, match="Circular reference"):
                await client.trigger("c", "e", cyclic())
            with pytest.raises(ValueError, match="Circular reference"):
                await client.trigger_batch([{"channel": "c", "name": "e", "data": cyclic()}])
            sender = AsyncBulkSender(client)
            try:
                with pytest.raises(ValueError, match="Circular reference"):
                    await sender.add("c", "e", cyclic())
            finally:
                await sender.close()
            assert client.http.requests == []

        asyncio.run(main())


# -- names that a path-normalising proxy would rewrite -----------------------------------

DOT_NAMES = [".", "..", "..."]


class TestDotOnlyNames:
    """Dot-only channel names and user ids never become URL path segments."""

    @pytest.mark.parametrize("name", DOT_NAMES)
    @pytest.mark.parametrize(
        "call",
        [
            lambda c, n: c.channel_info(n),
            lambda c, n: c.channel_info(n, ["user_count"]),
            lambda c, n: c.users_info(n),
            lambda c, n: c.terminate_user_connections(n),
            lambda c, n: c.send_to_user(n, "e", "d"),
        ],
        ids=[
            "channel_info",
            "channel_info-attrs",
            "users_info",
            "terminate",
            "send_to_user",
        ],
    )
    def test_refused_where_they_become_a_path_segment(self, name, call):
        client = make_client()
        with pytest.raises(ValueError, match="dots only") as info:
            call(client, name)
        assert repr(name) in str(info.value)
        assert refused(client)

    @pytest.mark.parametrize("name", ["a.", ".a", "a..b", "private-.", "presence-.."])
    def test_names_with_dots_and_more_stay_valid(self, name):
        client = make_client()
        client.channel_info(name)
        assert client.http.last.path == f"/apps/3/channels/{name}"
        client.terminate_user_connections(name)
        assert client.http.last.path == f"/apps/3/users/{name}/terminate_connections"

    @pytest.mark.parametrize("name", DOT_NAMES)
    def test_authenticate_user_signs_a_dot_only_id_as_the_official_library_does(self, name):
        # The id goes into the signed user_data, not into a path.
        client = make_client()
        assert json.loads(client.authenticate_user("1.1", {"id": name})["user_data"]) == {
            "id": name
        }

    @pytest.mark.parametrize("name", DOT_NAMES)
    def test_trigger_on_a_dot_only_channel_is_unchanged(self, name):
        # The channel goes in the body, not the path: allowed, as by the official library.
        client = make_client()
        client.trigger(name, "e", "d")
        assert body_json(client.http.last)["channels"] == [name]

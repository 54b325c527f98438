"""The official ``pusher`` package (pusher-http-python 3.3.4) as an oracle.

Same inputs, same frozen clock: our requests go to the same method and path
with the same query parameters and the same JSON when parsed (the ``data``
fields parsed too; encrypted data decrypted first), and our signature covers
the bytes we send.  Query parameters may differ only in ``body_md5`` and
``auth_signature``, and only when the bodies differ in bytes (we write compact
UTF-8 JSON; the official library writes ``json.dumps`` output).  With
``json_encoder=json.JSONEncoder`` given to both, bodies and query strings are
byte-identical.  Inputs come from hypothesis, restricted to what both
libraries accept.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import string
import types
from collections.abc import Iterator
from typing import Any

import nacl.utils
import pusher as official_pusher
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pusher_fast
from tests.helpers import (
    APP_ID,
    KEY,
    MASTER_KEY_B64,
    SECRET,
    RecordingBackend,
    assert_signed,
    decrypt_data,
    frozen_time,
    hmac_hex,
)

NOW = 1_700_000_000
ENCRYPTED = "private-encrypted-"
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _pair(**options: Any) -> tuple[Any, Any]:
    common = {
        "app_id": APP_ID,
        "key": KEY,
        "secret": SECRET,
        "encryption_master_key_base64": MASTER_KEY_B64,
        "backend": RecordingBackend,
        **options,
    }
    return pusher_fast.Pusher(**common), official_pusher.Pusher(**common)


OURS, OFFICIAL = _pair()
OURS_COMPAT, OFFICIAL_COMPAT = _pair(json_encoder=json.JSONEncoder)
PAIRS = {"default": (OURS, OFFICIAL), "json_encoder": (OURS_COMPAT, OFFICIAL_COMPAT)}


@contextlib.contextmanager
def same_world(timestamp: float = NOW) -> Iterator[None]:
    """Frozen clock and a fixed nonce, so both libraries see the same world."""
    original = nacl.utils.random
    nacl.utils.random = lambda size=32: bytes(range(7, 7 + size))
    try:
        with frozen_time(timestamp):
            yield
    finally:
        nacl.utils.random = original


# -- strategies -------------------------------------------------------------------------

ALPHABET = string.ascii_letters + string.digits + "-_=@,.;"


def names(prefix: str, max_size: int = 60) -> st.SearchStrategy[str]:
    return st.text(ALPHABET, min_size=1, max_size=max_size).map(lambda s: prefix + s)


plain_channels = st.one_of(names(""), names("private-"), names("presence-"), names("", 200)).filter(
    lambda c: not c.startswith(ENCRYPTED)
)
encrypted_channels = names(ENCRYPTED)
any_channel = st.one_of(plain_channels, encrypted_channels)
event_names = st.text(max_size=200)
socket_ids = st.from_regex(r"\A[0-9]{1,16}\.[0-9]{1,16}\Z")
user_ids = st.text(ALPHABET, min_size=1, max_size=100)
# Names that become a URL path segment: dots only are a deliberate refusal (README).
path_channels = any_channel.filter(lambda c: c.strip("."))
path_user_ids = user_ids.filter(lambda u: u.strip("."))
attributes = st.lists(st.from_regex(r"\A[a-z_]{1,20}\Z"), max_size=3)
prefixes = st.text(ALPHABET, min_size=1, max_size=40)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=15,
)
event_data = st.one_of(json_values, st.text(max_size=100))


# -- comparison ---------------------------------------------------------------------------


def _same_text_or_json(ours: str, theirs: str) -> bool:
    if ours == theirs:
        return True
    try:
        return json.loads(ours) == json.loads(theirs)
    except ValueError:
        return False


def _event_plaintext(channel: str, data: str) -> str:
    return decrypt_data(channel, data) if channel.startswith(ENCRYPTED) else data


def _check_event_data(channel: str, ours: str, theirs: str) -> None:
    assert isinstance(ours, str)
    ours_plain = _event_plaintext(channel, ours)
    theirs_plain = _event_plaintext(channel, theirs)
    assert _same_text_or_json(ours_plain, theirs_plain), (ours_plain, theirs_plain)


def assert_equivalent(ours: Any, theirs: Any, byte_identical: bool) -> None:
    """Our Request against the official one."""
    assert ours.method == theirs.method
    assert ours.path == theirs.path
    assert_signed(ours)
    ours_query = dict(ours.query_params)
    theirs_query = dict(theirs.query_params)
    if ours.body != theirs.body:
        for name in ("body_md5", "auth_signature"):
            ours_query.pop(name)
            theirs_query.pop(name)
    assert ours_query == theirs_query
    if ours.method == "GET":
        assert ours.body == theirs.body == b""
        assert ours.query_string == theirs.query_string
    else:
        ours_body = json.loads(ours.body)
        theirs_body = json.loads(theirs.body)
        if "batch" in theirs_body:
            ours_events, theirs_events = ours_body["batch"], theirs_body["batch"]
            channels = [e["channel"] for e in theirs_events]
        else:
            ours_events, theirs_events = [ours_body], [theirs_body]
            channels = [theirs_body["channels"][0]]
        assert len(ours_events) == len(theirs_events)
        for channel, ours_event, theirs_event in zip(channels, ours_events, theirs_events):
            if "data" in theirs_event:
                _check_event_data(channel, ours_event.pop("data"), theirs_event.pop("data"))
        assert ours_body == theirs_body
    if byte_identical:
        assert ours.body == theirs.body
        assert ours.query_string == theirs.query_string


def _official_request(method: str, official: Any, *args: Any) -> Any:
    return getattr(official._pusher_client, method).make_request(*args)


encoders = pytest.mark.parametrize("encoder", ["default", "json_encoder"])


# -- requests ----------------------------------------------------------------------------


class TestTrigger:
    @encoders
    @SETTINGS
    @given(
        channels=st.one_of(plain_channels, st.lists(plain_channels, min_size=1, max_size=10)),
        event_name=event_names,
        data=event_data,
        socket_id=st.none() | socket_ids,
    )
    def test_trigger(self, encoder, channels, event_name, data, socket_id):
        ours, official = PAIRS[encoder]
        with same_world():
            theirs = _official_request("trigger", official, channels, event_name, data, socket_id)
            mine = ours._trigger_request(channels, event_name, data, socket_id)
        assert_equivalent(mine, theirs, byte_identical=encoder == "json_encoder")

    @encoders
    @SETTINGS
    @given(channel=encrypted_channels, event_name=event_names, data=event_data)
    def test_trigger_on_an_encrypted_channel(self, encoder, channel, event_name, data):
        ours, official = PAIRS[encoder]
        with same_world():
            theirs = _official_request("trigger", official, channel, event_name, data, None)
            mine = ours._trigger_request(channel, event_name, data)
        assert_equivalent(mine, theirs, byte_identical=encoder == "json_encoder")

    @SETTINGS
    @given(clock=st.floats(min_value=1e9, max_value=4e9))
    @example(clock=1_700_000_000.5)
    @example(clock=1_700_000_001.5)
    @example(clock=1_700_000_000.4999999)
    def test_timestamp_rounds_like_the_official_library(self, clock):
        with same_world(clock):
            theirs = _official_request("trigger", OFFICIAL_COMPAT, "c", "e", "d", None)
            mine = OURS_COMPAT._trigger_request("c", "e", "d")
        assert mine.query_string == theirs.query_string

    @encoders
    @SETTINGS
    @given(user_id=path_user_ids, event_name=event_names, data=event_data)
    def test_send_to_user(self, encoder, user_id, event_name, data):
        ours, official = PAIRS[encoder]
        with same_world():
            official.send_to_user(user_id, event_name, data)
            ours.send_to_user(user_id, event_name, data)
        assert_equivalent(
            ours.http.requests.pop(),
            official._pusher_client.http.requests.pop(),
            byte_identical=encoder == "json_encoder",
        )


batch_events = st.lists(
    st.fixed_dictionaries(
        {"channel": any_channel, "name": event_names, "data": event_data},
        optional={"socket_id": socket_ids},
    ),
    max_size=10,
)


class TestTriggerBatch:
    @encoders
    @SETTINGS
    @given(batch=batch_events)
    def test_trigger_batch(self, encoder, batch):
        ours, official = PAIRS[encoder]
        original = copy.deepcopy(batch)
        with same_world():
            theirs = _official_request("trigger_batch", official, copy.deepcopy(batch), False)
            mine = ours._batch_request(batch)
        assert batch == original
        assert_equivalent(mine, theirs, byte_identical=encoder == "json_encoder")

    @encoders
    @SETTINGS
    @given(
        batch=st.lists(
            st.fixed_dictionaries(
                {"channel": plain_channels, "name": event_names, "data": st.text(max_size=50)},
                optional={"socket_id": socket_ids},
            ),
            max_size=10,
        )
    )
    def test_trigger_batch_already_encoded(self, encoder, batch):
        ours, official = PAIRS[encoder]
        with same_world():
            theirs = _official_request("trigger_batch", official, copy.deepcopy(batch), True)
            mine = ours._batch_request(batch, already_encoded=True)
        assert_equivalent(mine, theirs, byte_identical=encoder == "json_encoder")


class TestQueries:
    @SETTINGS
    @given(prefix=st.none() | prefixes, attrs=attributes)
    def test_channels_info(self, prefix, attrs):
        with same_world():
            theirs = _official_request("channels_info", OFFICIAL, prefix, attrs)
            mine = OURS._channels_info_request(prefix, attrs)
        assert_equivalent(mine, theirs, byte_identical=True)

    @SETTINGS
    @given(channel=path_channels, attrs=attributes)
    def test_channel_info(self, channel, attrs):
        with same_world():
            theirs = _official_request("channel_info", OFFICIAL, channel, attrs)
            mine = OURS._channel_info_request(channel, attrs)
        assert_equivalent(mine, theirs, byte_identical=True)

    @SETTINGS
    @given(channel=path_channels)
    def test_users_info(self, channel):
        with same_world():
            theirs = _official_request("users_info", OFFICIAL, channel)
            mine = OURS._users_info_request(channel)
        assert_equivalent(mine, theirs, byte_identical=True)


class TestDotOnlyPathSegments:
    @pytest.mark.parametrize("name", [".", "..", "..."])
    def test_official_sends_them_in_the_path_we_refuse(self, name):
        with same_world():
            theirs = _official_request("channel_info", OFFICIAL, name, [])
        assert theirs.path.endswith(f"/channels/{name}")
        with pytest.raises(ValueError, match="dots only"):
            OURS._channel_info_request(name)
        with pytest.raises(ValueError, match="dots only"):
            OURS._terminate_request(name)


class TestTerminate:
    @SETTINGS
    @given(user_id=path_user_ids)
    def test_terminate_path_is_the_fixed_one(self, user_id):
        with same_world():
            theirs = _official_request("terminate_user_connections", OFFICIAL, user_id)
            mine = OURS._terminate_request(user_id)
        # The official library drops /apps/{id}; the API's endpoint has it.
        assert theirs.path == f"/users/{user_id}/terminate_connections"
        assert mine.path == f"/apps/{APP_ID}/users/{user_id}/terminate_connections"
        assert (mine.method, mine.body) == (theirs.method, theirs.body)
        query = assert_signed(mine)
        theirs_query = dict(theirs.query_params)
        assert query.pop("auth_signature") != theirs_query.pop("auth_signature")
        assert query == theirs_query


# -- authentication -------------------------------------------------------------------------

presence_data = st.fixed_dictionaries(
    {"user_id": st.text(max_size=30) | st.integers()},
    optional={"user_info": json_values},
)
private_data = st.none() | st.dictionaries(st.text(max_size=10), json_values, max_size=3)


def _decoded(response: dict[str, Any]) -> dict[str, Any]:
    out = dict(response)
    if isinstance(out.get("shared_secret"), bytes):
        out["shared_secret"] = out["shared_secret"].decode("ascii")
    return out


def assert_same_auth(ours: dict, theirs: dict, string_to_sign: str, byte_identical: bool) -> None:
    theirs = _decoded(theirs)
    assert ours["auth"] == f"{KEY}:{hmac_hex(SECRET, string_to_sign)}"
    assert set(ours) == set(theirs)
    for field in ("shared_secret",):
        if field in theirs:
            assert type(ours[field]) is str
            assert ours[field] == theirs[field]
    for field in ("channel_data", "user_data"):
        if field in theirs:
            assert json.loads(ours[field]) == json.loads(theirs[field])
            if ours[field] == theirs[field]:
                assert ours["auth"] == theirs["auth"]
    if byte_identical:
        assert ours == theirs


class TestAuthentication:
    @encoders
    @SETTINGS
    @given(
        data=st.one_of(
            st.tuples(names("presence-"), presence_data),
            st.tuples(
                names("private-").filter(lambda c: not c.startswith(ENCRYPTED)), private_data
            ),
            st.tuples(encrypted_channels, st.none()),
        ),
        socket_id=socket_ids,
    )
    def test_authenticate(self, encoder, data, socket_id):
        channel, custom_data = data
        ours, official = PAIRS[encoder]
        theirs = official.authenticate(channel, socket_id, copy.deepcopy(custom_data))
        mine = ours.authenticate(channel, socket_id, custom_data)
        to_sign = f"{socket_id}:{channel}"
        if "channel_data" in mine:
            to_sign += ":" + mine["channel_data"]
        assert_same_auth(mine, theirs, to_sign, byte_identical=encoder == "json_encoder")

    @encoders
    @pytest.mark.parametrize(
        "make",
        [collections.OrderedDict, collections.UserDict, types.MappingProxyType],
        ids=["OrderedDict", "UserDict", "MappingProxyType"],
    )
    def test_presence_data_of_other_mapping_types(self, encoder, make):
        # The short path checks type() before the Mapping ABC: a dict subclass or a
        # Mapping that is not a dict must still get the official library's outcome.
        ours, official = PAIRS[encoder]
        outcome = []
        for client in (official, ours):
            try:
                result = client.authenticate("presence-room", "1.2", make({"user_id": "7"}))
                outcome.append(_decoded(result) if client is official else result)
            except Exception as exc:  # the official library's class is the contract
                outcome.append(type(exc))
        theirs, mine = outcome
        if isinstance(theirs, type):
            assert mine is theirs
        else:
            assert_same_auth(mine, theirs, f"1.2:presence-room:{mine['channel_data']}", False)

    @encoders
    @SETTINGS
    @given(
        user_id=user_ids,
        extra=st.dictionaries(
            st.text(max_size=10).filter(lambda k: k != "id"), json_values, max_size=3
        ),
        socket_id=socket_ids,
    )
    def test_authenticate_user(self, encoder, user_id, extra, socket_id):
        ours, official = PAIRS[encoder]
        user_data = {"id": user_id, **extra}
        theirs = official.authenticate_user(socket_id, copy.deepcopy(user_data))
        mine = ours.authenticate_user(socket_id, user_data)
        to_sign = f"{socket_id}::user::{mine['user_data']}"
        assert_same_auth(mine, theirs, to_sign, byte_identical=encoder == "json_encoder")


class TestWebhooks:
    @SETTINGS
    @given(
        events=st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["channel_occupied", "member_added", "client_event"]),
                    "channel": plain_channels,
                },
                optional={"data": st.text(max_size=40), "user_id": user_ids},
            ),
            max_size=4,
        ),
        age_ms=st.integers(min_value=-400_000, max_value=400_000),
        tamper=st.booleans(),
    )
    def test_validate_webhook_agrees(self, events, age_ms, tamper):
        body = json.dumps({"time_ms": NOW * 1000 - age_ms, "events": events})
        signature = hmac_hex(SECRET, body)
        if tamper:
            signature = hmac_hex(SECRET, body + " ")
        with frozen_time(NOW):
            theirs = OFFICIAL.validate_webhook(KEY, signature, body)
            mine = OURS.validate_webhook(KEY, signature, body)
        assert mine == theirs
        assert (mine is None) == (tamper or abs(age_ms) > 300_000)


class TestNonAsciiKey:
    """The same credentials work here and there: same signed query, same bytes on the wire."""

    @pytest.mark.parametrize("key", ["kéy", "ключ", "🔑-key"])
    def test_signed_query_and_wire_target_match_the_official_library(self, key):
        import requests

        from pusher_fast._http11 import RequestEncoder

        common = {"app_id": APP_ID, "key": key, "secret": SECRET, "backend": RecordingBackend}
        ours, official = pusher_fast.Pusher(**common), official_pusher.Pusher(**common)
        with same_world():
            theirs = _official_request("channels_info", official, None, ["user_count"])
            mine = ours._channels_info_request(None, ["user_count"])
        assert mine.query_string == theirs.query_string  # signed unescaped, byte for byte
        assert_signed(mine, key=key)
        # What requests (the official transport) puts on the wire for the official URL.
        prepared = requests.Request(theirs.method, theirs.url).prepare()
        wire_target = prepared.path_url
        head = RequestEncoder("api.pusherapp.com").encode(mine).split(b"\r\n", 1)[0]
        assert head == f"GET {wire_target} HTTP/1.1".encode("ascii")

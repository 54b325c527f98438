"""Authorization from the raw posted body: ``authorize_channel_from_body`` and
``authenticate_user_from_body``.

The result is exactly what ``authenticate`` / ``authenticate_user`` return for the
same values, and the signature is checked independently (``hmac``).  Bodies that
are missing a field, repeat one, are malformed or too large raise ValueError
naming the problem; a body of the wrong Python type raises TypeError.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pusher_fast import _auth_body
from tests.helpers import KEY, MASTER_KEY_B64, SECRET, hmac_hex, make_client

SOCKET_ID = "1234.1234"


@pytest.fixture
def client():
    return make_client(encryption_master_key_base64=MASTER_KEY_B64)


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def pusher_js_body(channel: str, **params: str) -> bytes:
    return form(socket_id=SOCKET_ID, channel_name=channel, **params)


class TestChannelAuthorizationFromBody:
    def test_pusher_js_form_body_signs_the_channel(self, client):
        result = client.authorize_channel_from_body(pusher_js_body("private-foobar"))
        assert result == {"auth": f"{KEY}:{hmac_hex(SECRET, f'{SOCKET_ID}:private-foobar')}"}

    @pytest.mark.parametrize(
        "body",
        [
            pusher_js_body("private-foobar"),
            pusher_js_body("private-foobar").decode(),
            pusher_js_body("private-foobar", user_id="u-1", user_info='{"a":1}'),
            form(channel_name="private-foobar", socket_id=SOCKET_ID),  # other order
            b"socket_id=1234.1234&&channel_name=private-foobar&",  # empty pieces
            json.dumps({"socket_id": SOCKET_ID, "channel_name": "private-foobar"}).encode(),
            json.dumps({"channel_name": "private-foobar", "socket_id": SOCKET_ID, "x": [1]}),
            b'  {"socket_id": "1234.1234", "channel_name": "private-foobar"}',
            {"socket_id": SOCKET_ID, "channel_name": "private-foobar"},
            {"socket_id": [SOCKET_ID], "channel_name": ("private-foobar",)},
            bytearray(pusher_js_body("private-foobar")),
            memoryview(pusher_js_body("private-foobar")),
        ],
        ids=lambda b: type(b).__name__,
    )
    def test_every_body_form_gives_what_authenticate_gives(self, client, body):
        expected = client.authenticate("private-foobar", SOCKET_ID)
        assert client.authorize_channel_from_body(body) == expected

    @pytest.mark.parametrize(
        "channel",
        ["private-a@b,c;d=e", "private-x_y.z-1", "presence-room", "private-encrypted-orders"],
    )
    def test_percent_encoded_and_every_channel_kind(self, client, channel):
        custom = {"user_id": "u-1", "user_info": {"name": "Zoë"}}
        expected = client.authenticate(channel, SOCKET_ID, custom)
        assert client.authorize_channel_from_body(pusher_js_body(channel), custom) == expected
        if channel.startswith("private-encrypted-"):
            assert "shared_secret" in expected

    def test_plus_in_a_param_decodes_as_space(self, client):
        body = pusher_js_body("private-a") + b"&note=a+b%2Bc"
        assert client.authorize_channel_from_body(body) == client.authenticate(
            "private-a", SOCKET_ID
        )

    def test_presence_needs_custom_data_with_user_id(self, client):
        with pytest.raises(ValueError, match="user_id"):
            client.authorize_channel_from_body(pusher_js_body("presence-room"))

    def test_presence_channel_data_is_signed(self, client):
        result = client.authorize_channel_from_body(
            pusher_js_body("presence-room"), {"user_id": "7"}
        )
        data = result["channel_data"]
        assert json.loads(data) == {"user_id": "7"}
        assert result["auth"] == f"{KEY}:{hmac_hex(SECRET, f'{SOCKET_ID}:presence-room:{data}')}"

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b"", "no 'socket_id'"),
            (b"channel_name=private-a", "no 'socket_id'"),
            (b"socket_id=1.1", "no 'channel_name'"),
            (b"socket_id=1.1&socket_id=2.2&channel_name=private-a", "repeats the 'socket_id'"),
            (b"socket_id=1.1&channel_name=private-a&channel_name=private-b", "repeats"),
            (b"socket_id=1.1&channel_name=private-a&socket%5Fid=2.2", "repeats the 'socket_id'"),
            (b"socket_id=1.1&channel_name", "has no '='"),
            (b"socket_id=1.1&channel_name=private-%ff", "not UTF-8"),
            (b"socket_id=1.1&channel_name=private-\xff", "not valid UTF-8"),
            (b'{"socket_id": 1.1, "channel_name": "private-a"}', "should be a string, got float"),
            (b'{"socket_id": ["1.1"], "channel_name": "private-a"}', "got list"),
            (b'{"socket_id": "1.1"', "not valid JSON"),
            (b'{"socket_id": "1.1"}', "no 'channel_name'"),
            ({"socket_id": ["1.1", "2.2"], "channel_name": "private-a"}, "has 2 values"),
            ({"socket_id": None, "channel_name": "private-a"}, "got NoneType"),
            ({"channel_name": "private-a"}, "no 'socket_id'"),
        ],
    )
    def test_malformed_bodies_are_value_errors_naming_the_problem(self, client, body, problem):
        with pytest.raises(ValueError, match=problem):
            client.authorize_channel_from_body(body)

    @pytest.mark.parametrize(
        "socket_id",
        ["1.1:private-other", "1.1\n", " 1.1", "1", "a.b", "\u0661.\u0661", "1.1%00", ""],
    )
    def test_forged_or_invalid_socket_ids_are_refused(self, client, socket_id):
        body = form(socket_id=socket_id, channel_name="private-a")
        with pytest.raises(ValueError, match="socket_id"):
            client.authorize_channel_from_body(body)

    @pytest.mark.parametrize(
        "channel", ["private-a:b", "private-a b", "#server-to-user-1", "x" * 201]
    )
    def test_invalid_channel_names_are_refused(self, client, channel):
        with pytest.raises(ValueError, match="channel"):
            client.authorize_channel_from_body(pusher_js_body(channel))

    @pytest.mark.parametrize("kind", [bytes, str])
    def test_a_body_over_the_limit_is_refused_before_parsing(self, client, kind):
        body = pusher_js_body("private-a") + b"&pad=" + b"x" * _auth_body.MAX_AUTH_BODY_BYTES
        with pytest.raises(ValueError, match="limit is 16384"):
            client.authorize_channel_from_body(body if kind is bytes else body.decode())

    def test_a_body_at_the_limit_is_accepted(self, client):
        body = pusher_js_body("private-a") + b"&pad="
        body += b"x" * (_auth_body.MAX_AUTH_BODY_BYTES - len(body))
        assert len(body) == _auth_body.MAX_AUTH_BODY_BYTES
        assert client.authorize_channel_from_body(body) == client.authenticate(
            "private-a", SOCKET_ID
        )

    @pytest.mark.parametrize("body", [None, 12, ["socket_id=1.1"], object()])
    def test_a_body_of_the_wrong_type_is_a_type_error(self, client, body):
        with pytest.raises(TypeError, match="auth request body"):
            client.authorize_channel_from_body(body)

    def test_unencodable_str_body_is_a_value_error(self, client):
        with pytest.raises(ValueError, match="Unicode"):
            client.authorize_channel_from_body("socket_id=1.1&channel_name=private-\ud800")

    def test_the_secret_never_appears_in_an_error(self, client):
        for body in (b"socket_id=1.1", form(socket_id="x", channel_name="private-a")):
            with pytest.raises(ValueError) as info:
                client.authorize_channel_from_body(body)
            assert SECRET not in str(info.value)


class TestFastPathAgreesWithTheGeneralParse:
    @pytest.mark.parametrize(
        "body",
        [
            b"socket_id=1.2&channel_name=private-a",
            b"socket_id=1.2&channel_name=private-a&user_id=x",
            b"socket_id=1.2&channel_name=private-a&user_id=x&socket_id=9.9",
            b"socket_id=1.2&channel_name=private-a&x%5F=1&socket%5Fid=9.9",
            b"socket_id=1.2&channel_name=private-a&channel_name=private-b",
            b"socket_id=1.2&channel_name=private-a&a=b&channel_name=private-b",
            b"socket_id=1.2&channel_name=private-a&note=about+socket_id",
            b"socket_id=1.2&channel_name=presence-a&x=1",
            b"socket_id=1.2&channel_name=private-encrypted-a&x=%41",
        ],
    )
    @pytest.mark.parametrize("custom", [None, {"user_id": "u"}])
    def test_same_answer_or_same_refusal(self, client, body, custom):
        try:
            general = _auth_body.parse_auth_body(body, _auth_body.CHANNEL_FIELDS)
        except ValueError:
            with pytest.raises(ValueError, match="repeats"):
                _auth_body.parse_channel_body(body)
            with pytest.raises(ValueError, match="repeats"):
                client.authorize_channel_from_body(body, custom)
            return
        values = (general["socket_id"], general["channel_name"])
        assert _auth_body.parse_channel_body(body) == values
        try:
            expected = client.authenticate(values[1], values[0], custom)
        except ValueError as exc:
            with pytest.raises(ValueError, match=re.escape(str(exc))):
                client.authorize_channel_from_body(body, custom)
            return
        assert client.authorize_channel_from_body(body, custom) == expected


class TestUserAuthenticationFromBody:
    @pytest.mark.parametrize(
        "body",
        [
            form(socket_id=SOCKET_ID),
            form(socket_id=SOCKET_ID, user_id="ignored"),
            json.dumps({"socket_id": SOCKET_ID}),
            {"socket_id": SOCKET_ID},
        ],
    )
    def test_gives_what_authenticate_user_gives(self, client, body):
        user = {"id": "u-1", "user_info": {"name": "Ann"}}
        result = client.authenticate_user_from_body(body, user)
        assert result == client.authenticate_user(SOCKET_ID, user)
        data = result["user_data"]
        assert result["auth"] == f"{KEY}:{hmac_hex(SECRET, f'{SOCKET_ID}::user::{data}')}"

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            (b"", "no 'socket_id'"),
            (b"socket_id=1.1&socket_id=1.2", "repeats"),
            (form(socket_id="1.1:x"), "socket_id"),
        ],
    )
    def test_bad_bodies(self, client, body, error):
        with pytest.raises(ValueError, match=error):
            client.authenticate_user_from_body(body, {"id": "u"})

    def test_user_data_needs_an_id(self, client):
        with pytest.raises(ValueError, match="id"):
            client.authenticate_user_from_body(form(socket_id=SOCKET_ID), {"name": "x"})


_PIECES = st.lists(
    st.tuples(
        st.sampled_from(["socket_id", "channel_name", "socket%5Fid", "channel_name+", "x", ""]),
        st.sampled_from(["=", ""]),
        st.one_of(
            st.sampled_from(["1.2", "12.34", "private-a", "presence-a", "a%40b", "+", "%ff"]),
            st.text(alphabet="-_.@%+&=1a", max_size=8),
        ),
    ),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(
    pieces=_PIECES,
    lead=st.sampled_from(["", " ", "{"]),
    kind=st.sampled_from(["form", "json"]),
)
def test_the_shortcuts_agree_with_the_general_parse(pieces, lead, kind):
    if kind == "json":
        body = json.dumps({k: v for k, _, v in pieces}).encode()
    else:
        body = (lead + "&".join(k + s + v for k, s, v in pieces)).encode()
    try:
        general = _auth_body.parse_auth_body(body, _auth_body.CHANNEL_FIELDS)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            _auth_body.parse_channel_body(body)
        return
    assert _auth_body.parse_channel_body(body) == (general["socket_id"], general["channel_name"])


# -- authorize_channel_from_body's own shortcut (pusher_fast._auth) ----------------
# It reads pusher-js's form body and JSON objects itself, decodes the escapes
# channel names hold (%40 %3D %2C %3B) and checks a params tail with one decode;
# whatever it cannot settle goes to the general parse.  Checked against
# "general parse, then authenticate", on every signer (the C signer's own socket
# id and channel checks are what the shortcut relies on).


def _signers():
    from pusher_fast import _fallback

    out = [pytest.param(_fallback.Signer, id="python")]
    try:
        from pusher_fast import _native_signer
    except ImportError:  # pragma: no cover - the native build is optional
        return out
    out.append(pytest.param(_native_signer.Signer, id="native"))
    out.append(pytest.param(_native_signer.HybridSigner, id="hybrid"))
    return out


def _authorizer(signer_class):
    import base64

    from pusher_fast._auth import Authorizer

    return Authorizer(signer_class(KEY, SECRET), KEY, base64.b64decode(MASTER_KEY_B64))


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def _general_then_authenticate(auth, body, custom):
    fields = _auth_body.parse_auth_body(body, _auth_body.CHANNEL_FIELDS)
    return auth.channel(fields["channel_name"], fields["socket_id"], custom)


def _assert_shortcut_agrees(auth, body, custom):
    expected = _outcome(_general_then_authenticate, auth, body, custom)
    assert _outcome(auth.channel_from_body, body, custom) == expected, body


_SHORTCUT_BODIES = [
    b"socket_id=1.2&channel_name=private-a",
    b"socket_id=1.2&channel_name=private-a%40b",
    b"socket_id=1.2&channel_name=private-a%40b%3Dc%2Cd%3Be",
    b"socket_id=1.2&channel_name=private-a%3db",  # lower-case hex: general parse
    b"socket_id=1.2&channel_name=private-a%40%41",  # another escape left
    b"socket_id=1.2&channel_name=private-a%2540",  # '%25' then '40': not an '@'
    b"socket_id=1.2&channel_name=private-a%4",
    b"socket_id=1.2&channel_name=private-a%3A",  # ':' is refused
    b"socket_id=1.2&channel_name=private-a+b",
    b"socket_id=1.2&channel_name=private-%C3%A9",
    b"socket_id=1.2&channel_name=presence-a%40b",
    b"socket_id=1.2&channel_name=private-encrypted-a%40b",
    b"socket_id=1%2E2&channel_name=private-a",
    b"socket_id=1.2&x=1&channel_name=private-a",  # a param before channel_name
    b"socket_id=1.2&socket_id=3.4&channel_name=private-a",
    b"socket_id=1.2&channel_name=private-a&socket_id=3.4",
    b"socket_id=1.2&channel_name=private-a&%73ocket_id=3.4",
    b"socket_id=1.2&channel_name=private-a&channel%5fname=private-b",
    b"socket_id=1.2&channel_name=private-a&x=%7B%22a%22%3A1%7D",
    b"socket_id=1.2&channel_name=private-a&x=%C3%A9",
    b"socket_id=1.2&channel_name=private-a&x=%ff",
    b"socket_id=1.2&channel_name=private-a&x=%C3",
    b"socket_id=1.2&channel_name=private-a&x%C3=%A9",
    b"socket_id=1.2&channel_name=private-a&x=%zz&y=%",
    b"socket_id=1.2&channel_name=private-a&x=%2526channel_name%3Dprivate-b",
    b"socket_id=1.2&channel_name=private-a&x=%26channel_name%3Dprivate-b",
    b"socket_id=1.2&channel_name=private-a&channel_name",
    b"socket_id=1.2&channel_name=private-a&",
    b"socket_id=1.2&channel_name=private-a&\xc3\xa9=1",
    b"socket_id=1.2&channel_name=private-\xc3\xa9",
    b"socket_id=1.2\xff&channel_name=private-a",
    b"socket_id=&channel_name=private-a",
    b"socket_id=1.2&channel_name=",
    b"socket_id=1.2&channel_name=&channel_name=private-a",
    b"socket_id=1.2",
    b"socket_id=1.2channel_name=private-a",
    b'{"socket_id": "1.2", "channel_name": "private-a@b"}',
    b'{"socket_id": "1.2", "channel_name": "private-a", "socket_id": "3.4"}',
    b'{"socket_id": "1.2", "channel_name": "presence-a"}',
    b'{"socket_id": "1.2", "channel_name": "private-encrypted-a"}',
    b'{"socket_id": "1.2", "channel_name": "private-a%40b"}',
    b'{"socket_id": "1.2", "channel_name": "private-a:b"}',
    b'{"socket_id": 1.2, "channel_name": "private-a"}',
    b'{"socket_id": "1.2", "channel_name": null}',
    b'{"socket_id": "1.2", "channel_name": ""}',
    b'{"socket_id": "1.2"}',
    b'{"socket_id": "1.2", "channel_name": "private-a"',
    b'{"socket_id": "1.2", "channel_name": "private-a"} x',
    b'{"socket_\\u0069d": "1.2", "channel_name": "private-a"}',
    b'{"socket_\\u0069d": "1.2", "socket_id": "3.4", "channel_name": "private-a"}',
    b'{"socket_id": "1.2", "channel_name": "private-a", "channel_name": "private-b"}',
    b'{"socket_id": "1.2", "channel_name": "private-a", "x": {"socket_id": "3.4"}}',
    b'{"socket_id": "1.2", "channel_name": "private-a", "x": "\\"socket_id\\""}',
    b"{",
    b"",
    b"&socket_id=1.2&channel_name=private-a",
]


@pytest.mark.parametrize("signer_class", _signers())
@pytest.mark.parametrize("custom", [None, {"user_id": "u"}])
@pytest.mark.parametrize("body", _SHORTCUT_BODIES)
def test_channel_from_body_shortcut_agrees_with_parse_then_authenticate(signer_class, custom, body):
    _assert_shortcut_agrees(_authorizer(signer_class), body, custom)


def test_the_shortcut_signs_escaped_channels_and_refuses_escaped_repeats(client):
    body = b"socket_id=1.2&channel_name=private-a%40b%3Dc%2Cd%3Be&note=%C3%A9"
    assert client.authorize_channel_from_body(body) == client.authenticate(
        "private-a@b=c,d;e", "1.2"
    )
    with pytest.raises(ValueError, match="repeats the 'socket_id'"):
        client.authorize_channel_from_body(
            b"socket_id=1.2&channel_name=private-a&%73ocket%5Fid=3.4"
        )
    with pytest.raises(ValueError, match="not UTF-8"):
        client.authorize_channel_from_body(b"socket_id=1.2&channel_name=private-a&x=%C3")


@pytest.mark.parametrize(
    "tail",
    ["x=1", "", "x=%41", "socket_id=1", "x=%C3", "%73ocket_id=1", "x=%2", "a+socket_id=1"],
)
def test_tail_is_clean_only_if_the_general_parse_finds_no_second_field(tail):
    body = f"socket_id=1.2&channel_name=private-a&{tail}".encode()
    if _auth_body.tail_is_clean(tail):
        assert _auth_body.parse_channel_body(body) == ("1.2", "private-a")
    else:
        assert tail in {"socket_id=1", "x=%C3", "%73ocket_id=1", "a+socket_id=1"}


_ESCAPES = [
    "%40",
    "%3D",
    "%2C",
    "%3B",
    "%3d",
    "%25",
    "%26",
    "%2",
    "40",
    "%C3%A9",
    "%ff",
    "%5F",
    "+",
]
_FORM_NAMES = st.sampled_from(
    ["socket_id", "channel_name", "socket%5Fid", "%73ocket_id", "channel%5fname", "x", ""]
)
_FORM_VALUES = st.one_of(
    st.sampled_from(
        ["1.2", "12.34", "private-a", "presence-a", "private-encrypted-a", "private-a%40b"]
    ),
    st.lists(
        st.one_of(st.sampled_from(_ESCAPES), st.text(alphabet="-_.@=&:1ap", max_size=3)),
        max_size=4,
    ).map("".join),
)


@settings(max_examples=1500, deadline=None)
@given(
    first=st.sampled_from(["socket_id=1.2&channel_name=", "socket_id=", ""]),
    channel=st.tuples(
        st.sampled_from(["private-", "presence-", "private-encrypted-", ""]),
        st.lists(st.sampled_from([*_ESCAPES, "a", "-", "&", ":", "=", "@"]), max_size=4),
    ).map(lambda t: t[0] + "".join(t[1])),
    pieces=st.lists(st.tuples(_FORM_NAMES, st.sampled_from(["=", ""]), _FORM_VALUES), max_size=3),
    custom=st.sampled_from([None, {"user_id": "u"}]),
    signer_index=st.integers(0, 2),
)
def test_the_channel_from_body_shortcut_agrees_on_any_form(
    first, channel, pieces, custom, signer_index
):
    signers = [p.values[0] for p in _signers()]
    auth = _authorizer(signers[signer_index % len(signers)])
    body = (first + channel + "".join(f"&{k}{s}{v}" for k, s, v in pieces)).encode()
    _assert_shortcut_agrees(auth, body, custom)


_JSON_VALUES = st.one_of(
    st.sampled_from(["1.2", "private-a", "presence-a", "private-a@b", "private-encrypted-a"]),
    st.text(alphabet="-_.@%:1ap", max_size=6),
    st.none(),
    st.integers(),
    st.lists(st.just("1.2"), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(
        st.tuples(st.sampled_from(["socket_id", "channel_name", "x"]), _JSON_VALUES),
        max_size=4,
    ),
    custom=st.sampled_from([None, {"user_id": "u"}]),
    signer_index=st.integers(0, 2),
)
def test_the_channel_from_body_shortcut_agrees_on_any_json(fields, custom, signer_index):
    signers = [p.values[0] for p in _signers()]
    auth = _authorizer(signers[signer_index % len(signers)])
    # Written by hand so that keys may repeat.
    body = ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in fields) + "}").encode()
    _assert_shortcut_agrees(auth, body, custom)


@pytest.mark.parametrize(
    "body",
    [
        b'{"socket_id": "1.2", "channel_name": "private-a", "socket_id": "3.4"}',
        b'{"socket_id": "1.2", "channel_name": "private-a", "channel_name": "private-b"}',
        b'{"socket_\\u0069d": "1.2", "socket_id": "3.4", "channel_name": "private-a"}',
        b'{"socket_id": "1.2", "channel_name": "private-a", "channel_n\\u0061me": "private-b"}',
    ],
)
def test_a_json_body_naming_a_field_twice_is_refused(client, body):
    """orjson keeps the last of repeated keys; another parser could keep the first: refused."""
    with pytest.raises(ValueError, match="more than once"):
        client.authorize_channel_from_body(body)
    if body.count(b"socket_") > 1:  # user sign-in reads socket_id only
        with pytest.raises(ValueError, match="more than once"):
            client.authenticate_user_from_body(body, {"id": "u"})


def test_a_json_body_with_a_nested_or_quoted_field_name_is_accepted(client):
    body = b'{"socket_id": "1.2", "channel_name": "private-a", "x": {"socket_id": "3.4"}}'
    assert client.authorize_channel_from_body(body) == client.authenticate("private-a", "1.2")

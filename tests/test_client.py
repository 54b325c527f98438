"""The ``Pusher`` client: construction, and the request each method sends.

A recording backend (the official backend protocol: ``__init__(client, **options)``,
``send_request(request)``) captures the ``Request``; the tests check its method,
path, query and body, that its signature covers what is sent, and that it has
every attribute of the official request object.
"""

from __future__ import annotations

import copy
import json
import time

import pytest

import pusher_fast
from pusher_fast import errors
from tests.helpers import (
    APP_ID,
    EMPTY_MD5,
    KEY,
    MASTER_KEY_B64,
    SECRET,
    RecordingBackend,
    assert_signed,
    body_json,
    decrypt_data,
    make_client,
)

AUTH_KEYS = {"auth_key", "auth_signature", "auth_timestamp", "auth_version", "body_md5"}


@pytest.fixture
def client():
    return make_client()


# -- construction --------------------------------------------------------------------


class TestConstruction:
    def test_defaults(self, client):
        assert client.app_id == APP_ID
        assert client.key == KEY
        assert client.secret == SECRET
        assert client.host == "api.pusherapp.com"
        assert client.port == 443
        assert client.ssl is True
        assert client.scheme == "https"
        assert client.timeout == 5
        assert client.base_url == "https://api.pusherapp.com:443"

    def test_plain_http_defaults_to_port_80(self):
        client = make_client(ssl=False)
        assert (client.scheme, client.port) == ("http", 80)
        assert client.base_url == "http://api.pusherapp.com:80"

    def test_cluster_picks_the_host(self):
        assert make_client(cluster="eu").host == "api-eu.pusher.com"

    def test_host_wins_over_cluster(self):
        assert make_client(cluster="eu", host="example.com").host == "example.com"

    def test_explicit_port_is_kept(self):
        client = make_client(host="127.0.0.1", port=6001, ssl=False)
        assert client.port == 6001
        assert client.base_url == "http://127.0.0.1:6001"

    def test_backend_gets_the_client_and_its_options(self):
        client = make_client(response={"x": 1}, custom_option="yes")
        assert isinstance(client.http, RecordingBackend)
        assert client.http.client is client
        assert client.http.options == {"custom_option": "yes"}
        assert client.trigger("c", "e", "d") == {"x": 1}

    def test_retries_reaches_a_custom_backend_only_when_given(self):
        assert "retries" not in make_client().http.options
        assert make_client(retries=3).http.options["retries"] == 3

    def test_public_names(self):
        assert pusher_fast.Pusher is pusher_fast.client.Pusher
        assert pusher_fast.IMPLEMENTATION in ("native", "python")
        for name in [
            "PusherError",
            "PusherBadRequest",
            "PusherBadAuth",
            "PusherForbidden",
            "PusherBadStatus",
        ]:
            assert getattr(errors, name) is getattr(pusher_fast, name)
            assert issubclass(getattr(errors, name), errors.PusherError)
        assert issubclass(errors.PusherTransportError, errors.PusherError)
        assert errors.PusherBadStatus("x", 503).status == 503


class TestFromUrl:
    def test_http_url_with_explicit_port(self):
        client = pusher_fast.Pusher.from_url(
            "http://mykey:mysecret@127.0.0.1:6001/apps/123456", backend=RecordingBackend
        )
        assert (client.key, client.secret, client.app_id) == ("mykey", "mysecret", "123456")
        assert (client.host, client.port, client.ssl) == ("127.0.0.1", 6001, False)
        client.trigger("c", "e", "d")
        assert client.http.last.url.startswith("http://127.0.0.1:6001/apps/123456/events?")

    def test_https_url_defaults_to_443(self):
        client = pusher_fast.Pusher.from_url(
            "https://k:s@api-eu.pusher.com/apps/42", backend=RecordingBackend
        )
        assert (client.host, client.port, client.ssl, client.scheme) == (
            "api-eu.pusher.com",
            443,
            True,
            "https",
        )

    def test_plain_http_defaults_to_80(self):
        client = pusher_fast.Pusher.from_url(
            "http://k:s@h.example/apps/1", backend=RecordingBackend
        )
        assert client.port == 80

    def test_options_override_the_url(self):
        client = pusher_fast.Pusher.from_url(
            "http://k:s@h.example/apps/1", backend=RecordingBackend, timeout=2, port=8080
        )
        assert (client.timeout, client.port) == (2, 8080)

    def test_trailing_slash_is_accepted(self):
        client = pusher_fast.Pusher.from_url("http://k:s@h/apps/7/", backend=RecordingBackend)
        assert client.app_id == "7"

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://key:topsecret@host/apps/1",
            "http://key:topsecret@host/app/1",
            "http://key:topsecret@host/apps/abc",
            "http://key:topsecret@host/apps/",
            "http://key:topsecret@host:notaport/apps/1",
            "http://key:topsecret@host:99999/apps/1",
            "http://key:topsecret@/apps/1",
            "http://keyonly@host/apps/1",
            "key:topsecret@host/apps/1",
            "",
        ],
    )
    def test_unparsable_url_is_a_value_error_without_the_secret(self, url):
        with pytest.raises(ValueError) as info:
            pusher_fast.Pusher.from_url(url, backend=RecordingBackend)
        assert "topsecret" not in str(info.value)
        assert "topsecret" not in repr(info.value.args)

    def test_raw_slash_in_the_secret_parses_as_the_official_library_does(self):
        client = pusher_fast.Pusher.from_url(
            "http://key:TOP/SE?CR#ET@host:6001/apps/1", backend=RecordingBackend
        )
        assert (client.key, client.secret, client.host, client.port, client.app_id) == (
            "key",
            "TOP/SE?CR#ET",
            "host",
            6001,
            "1",
        )

    @pytest.mark.parametrize(
        "url",
        [
            "http://key:T0P/S3CR3T@host/apps/x",
            "http://key:T0P/S3CR3T@host:port/apps/1",
            "http://key:T0P/S3CR3T/apps/1",
            "http://key:T0P/S3CR3T",
            "key:T0P/S3CR3T@host/apps/1",
            "http://key:T0P/S3CR3T@/apps/1",
            b"http://key:T0P/S3CR3T\xff@host/apps/1",
        ],
    )
    def test_a_secret_with_a_slash_is_never_echoed(self, url):
        with pytest.raises(ValueError) as info:
            pusher_fast.Pusher.from_url(url, backend=RecordingBackend)
        for text in (str(info.value), repr(info.value)):
            assert "S3CR3T" not in text and "T0P" not in text

    def test_from_env_reads_pusher_url(self, monkeypatch):
        monkeypatch.setenv("PUSHER_URL", "http://k:s@127.0.0.1:6001/apps/9")
        client = pusher_fast.Pusher.from_env(backend=RecordingBackend)
        assert (client.app_id, client.port, client.key) == ("9", 6001, "k")

    def test_from_env_reads_another_variable(self, monkeypatch):
        monkeypatch.setenv("MY_PUSHER", "https://k:s@example.com/apps/10")
        client = pusher_fast.Pusher.from_env("MY_PUSHER", backend=RecordingBackend)
        assert (client.app_id, client.ssl) == ("10", True)

    @pytest.mark.parametrize("value", [None, ""])
    def test_from_env_missing_variable_is_a_value_error(self, monkeypatch, value):
        if value is None:
            monkeypatch.delenv("PUSHER_URL", raising=False)
        else:
            monkeypatch.setenv("PUSHER_URL", value)
        with pytest.raises(ValueError, match="PUSHER_URL"):
            pusher_fast.Pusher.from_env(backend=RecordingBackend)


# -- the Request object ------------------------------------------------------------------


class TestRequestObject:
    def test_has_every_attribute_of_the_official_request(self, client):
        client.trigger("c", "e", "d")
        request = client.http.last
        for name in [
            "method",
            "path",
            "params",
            "body",
            "query_params",
            "query_string",
            "signed_path",
            "url",
            "base_url",
            "headers",
        ]:
            assert hasattr(request, name), name
        assert request.signed_path == request.path + "?" + request.query_string
        assert request.base_url == "https://api.pusherapp.com:443"
        assert request.url == request.base_url + request.signed_path
        assert isinstance(request.body, bytes)
        assert request.query_params == dict(
            item.split("=", 1) for item in request.query_string.split("&")
        )

    def test_post_headers_carry_json_content_type(self, client):
        client.trigger("c", "e", "d")
        headers = client.http.last.headers
        assert headers["Content-Type"] == "application/json"
        assert "X-Pusher-Library" in headers

    def test_get_headers_have_no_content_type(self, client):
        client.channels_info()
        assert "Content-Type" not in client.http.last.headers

    def test_headers_are_a_fresh_dict(self, client):
        client.trigger("c", "e", "d")
        client.http.last.headers["Content-Type"] = "text/plain"
        client.trigger("c", "e", "d")
        assert client.http.last.headers["Content-Type"] == "application/json"

    def test_post_params_are_the_body_fields(self, client):
        client.trigger("c", "e", {"a": 1})
        request = client.http.last
        assert request.params == body_json(request)

    def test_get_params_are_the_call_parameters(self, client):
        client.channels_info("presence-", ["user_count"])
        assert client.http.last.params == {"filter_by_prefix": "presence-", "info": "user_count"}

    def test_timestamp_comes_from_the_clock(self, client, monkeypatch):
        monkeypatch.setattr(time, "time", lambda: 1700000000.6)
        client.trigger("c", "e", "d")
        assert client.http.last.query_params["auth_timestamp"] == "1700000001"


# -- trigger ------------------------------------------------------------------------------


class TestTrigger:
    def test_single_channel(self, client):
        result = client.trigger("my-channel", "my-event", {"message": "hi"})
        request = client.http.last
        assert result == {}
        assert (request.method, request.path) == ("POST", "/apps/3/events")
        assert body_json(request) == {
            "name": "my-event",
            "channels": ["my-channel"],
            "data": '{"message":"hi"}',
        }
        query = assert_signed(request)
        assert set(query) == AUTH_KEYS

    def test_several_channels_and_socket_id(self, client):
        client.trigger(["a", "b"], "e", "d", socket_id="123.456")
        body = body_json(client.http.last)
        assert body["channels"] == ["a", "b"]
        assert body["socket_id"] == "123.456"
        assert_signed(client.http.last)

    def test_socket_id_positional_like_the_official_signature(self, client):
        client.trigger("a", "e", "d", "1.2")
        assert body_json(client.http.last)["socket_id"] == "1.2"

    @pytest.mark.parametrize("socket_id", [None, ""])
    def test_no_socket_id_field_without_a_socket_id(self, client, socket_id):
        client.trigger("a", "e", "d", socket_id=socket_id)
        assert "socket_id" not in body_json(client.http.last)

    def test_info_asks_for_channel_attributes(self):
        client = make_client(response={"channels": {"a": {"subscription_count": 2}}})
        result = client.trigger("a", "e", "d", info=["subscription_count", "user_count"])
        assert result == {"channels": {"a": {"subscription_count": 2}}}
        assert body_json(client.http.last)["info"] == "subscription_count,user_count"
        assert set(client.http.last.query_params) == AUTH_KEYS  # info goes in the body

    def test_info_as_a_comma_separated_string(self, client):
        client.trigger("a", "e", "d", info="user_count,subscription_count")
        assert body_json(client.http.last)["info"] == "user_count,subscription_count"

    def test_no_info_field_without_info(self, client):
        client.trigger("a", "e", "d")
        assert "info" not in body_json(client.http.last)

    def test_body_is_compact_utf8_json(self, client):
        client.trigger("c", "é", {"k": "ü"})
        body = client.http.last.body
        assert "é".encode() in body
        assert b": " not in body and b", " not in body
        assert body_json(client.http.last)["data"] == '{"k":"ü"}'

    def test_json_encoder_gives_the_official_library_bytes(self):
        client = make_client(json_encoder=json.JSONEncoder)
        client.trigger(["a", "b"], "é", {"k": "ü", "n": [1, 2]}, socket_id="1.2")
        data = json.dumps({"k": "ü", "n": [1, 2]}, ensure_ascii=False)
        expected = json.dumps(
            {"name": "é", "channels": ["a", "b"], "data": data, "socket_id": "1.2"}
        ).encode("utf-8")
        assert client.http.last.body == expected
        assert_signed(client.http.last)

    def test_data_of_every_json_type(self, client):
        data = {"s": "x", "i": -3, "f": 1.5, "t": True, "n": None, "l": [1, "a"], "d": {}}
        client.trigger("c", "e", data)
        assert json.loads(body_json(client.http.last)["data"]) == data
        for scalar in [7, 1.25, True, None, [1]]:
            client.trigger("c", "e", scalar)
            assert json.loads(body_json(client.http.last)["data"]) == scalar


# -- trigger_batch -----------------------------------------------------------------------


class TestTriggerBatch:
    def test_events_are_encoded_and_sent(self, client):
        batch = [
            {"channel": "a", "name": "e1", "data": {"x": 1}},
            {"channel": "b", "name": "e2", "data": "text", "socket_id": "1.2"},
        ]
        client.trigger_batch(batch)
        request = client.http.last
        assert (request.method, request.path) == ("POST", "/apps/3/batch_events")
        assert body_json(request) == {
            "batch": [
                {"channel": "a", "name": "e1", "data": '{"x":1}'},
                {"channel": "b", "name": "e2", "data": "text", "socket_id": "1.2"},
            ]
        }
        assert_signed(request)

    def test_input_is_not_mutated(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        batch = [
            {"channel": "a", "name": "e", "data": {"nested": [1, {"deep": True}]}},
            {"channel": "private-encrypted-x", "name": "e", "data": {"secret": 1}},
            {"channel": "b", "name": "e", "data": "s", "info": ["user_count"], "socket_id": "1.1"},
        ]
        before = copy.deepcopy(batch)
        client.trigger_batch(batch)
        assert batch == before
        assert isinstance(batch[0]["data"], dict)

    def test_input_is_not_mutated_when_validation_fails(self, client):
        batch = [
            {"channel": "a", "name": "e", "data": {"x": 1}},
            {"channel": "bad channel", "name": "e", "data": {"y": 2}},
        ]
        before = copy.deepcopy(batch)
        with pytest.raises(ValueError):
            client.trigger_batch(batch)
        assert batch == before

    def test_same_batch_can_be_sent_twice(self, client):
        batch = [{"channel": "a", "name": "e", "data": {"x": 1}}]
        client.trigger_batch(batch)
        client.trigger_batch(batch)
        first, second = (body_json(r) for r in client.http.requests)
        assert first == second
        assert second["batch"][0]["data"] == '{"x":1}'

    def test_already_encoded_data_is_not_encoded_again(self, client):
        client.trigger_batch(
            [{"channel": "a", "name": "e", "data": '{"x":1}'}], already_encoded=True
        )
        assert body_json(client.http.last)["batch"][0]["data"] == '{"x":1}'
        client.trigger_batch([{"channel": "a", "name": "e", "data": '{"x":1}'}])
        assert body_json(client.http.last)["batch"][0]["data"] == '{"x":1}'

    def test_already_encoded_events_on_encrypted_channels_are_encrypted(self):
        client = make_client(encryption_master_key_base64=MASTER_KEY_B64)
        client.trigger_batch(
            [{"channel": "private-encrypted-a", "name": "e", "data": '{"x":1}'}],
            already_encoded=True,
        )
        sent = body_json(client.http.last)["batch"][0]["data"]
        assert decrypt_data("private-encrypted-a", sent) == '{"x":1}'

    def test_per_event_info(self, client):
        client.trigger_batch(
            [
                {"channel": "a", "name": "e", "data": "d", "info": ["subscription_count"]},
                {"channel": "presence-b", "name": "e", "data": "d", "info": "user_count"},
                {"channel": "c", "name": "e", "data": "d"},
            ]
        )
        events = body_json(client.http.last)["batch"]
        assert events[0]["info"] == "subscription_count"
        assert events[1]["info"] == "user_count"
        assert "info" not in events[2]

    def test_extra_event_fields_are_kept_in_order(self, client):
        client.trigger_batch([{"name": "e", "extra": 1, "channel": "a", "data": "d"}])
        event = body_json(client.http.last)["batch"][0]
        assert list(event) == ["name", "extra", "channel", "data"]

    def test_any_iterable_of_events(self, client):
        client.trigger_batch({"channel": f"c{i}", "name": "e", "data": "d"} for i in range(3))
        assert [e["channel"] for e in body_json(client.http.last)["batch"]] == ["c0", "c1", "c2"]

    def test_batch_is_sent_as_given_even_beyond_ten(self, client):
        client.trigger_batch([{"channel": "c", "name": "e", "data": str(i)} for i in range(11)])
        assert len(body_json(client.http.last)["batch"]) == 11

    def test_empty_batch(self, client):
        client.trigger_batch([])
        assert body_json(client.http.last) == {"batch": []}


# -- queries ------------------------------------------------------------------------------


class TestQueries:
    def test_channels_info_without_arguments(self, client):
        client.channels_info()
        request = client.http.last
        assert (request.method, request.path, request.body) == ("GET", "/apps/3/channels", b"")
        query = assert_signed(request)
        assert set(query) == AUTH_KEYS
        assert query["body_md5"] == EMPTY_MD5

    def test_channels_info_with_prefix_and_attributes(self, client):
        client.channels_info(prefix_filter="presence-", attributes=["user_count"])
        query = assert_signed(client.http.last)
        assert query["filter_by_prefix"] == "presence-"
        assert query["info"] == "user_count"
        assert set(query) == AUTH_KEYS | {"filter_by_prefix", "info"}

    def test_channels_info_attributes_as_string(self, client):
        client.channels_info(attributes="user_count,subscription_count")
        assert client.http.last.query_params["info"] == "user_count,subscription_count"

    def test_channel_info(self, client):
        client.channel_info("presence-room", ["user_count", "subscription_count"])
        request = client.http.last
        assert (request.method, request.path) == ("GET", "/apps/3/channels/presence-room")
        query = assert_signed(request)
        assert query["info"] == "user_count,subscription_count"

    def test_channel_info_path_keeps_punctuation_unescaped(self, client):
        client.channel_info("a-_=@,.;b")
        assert client.http.last.path == "/apps/3/channels/a-_=@,.;b"
        assert_signed(client.http.last)

    def test_users_info(self, client):
        client.users_info("presence-room")
        request = client.http.last
        assert (request.method, request.path) == ("GET", "/apps/3/channels/presence-room/users")
        assert set(assert_signed(request)) == AUTH_KEYS

    def test_query_returns_the_backend_answer(self):
        client = make_client(response={"channels": {"presence-a": {}}})
        assert client.channels_info() == {"channels": {"presence-a": {}}}


# -- users --------------------------------------------------------------------------------


class TestUsers:
    def test_send_to_user_triggers_on_the_user_channel(self, client):
        client.send_to_user("user-1", "hello", {"x": 1})
        request = client.http.last
        assert (request.method, request.path) == ("POST", "/apps/3/events")
        assert body_json(request) == {
            "name": "hello",
            "channels": ["#server-to-user-user-1"],
            "data": '{"x":1}',
        }
        assert_signed(request)

    def test_terminate_user_connections_uses_the_app_path(self, client):
        # Deliberate fix: the official library drops /apps/{id}.
        client.terminate_user_connections("user-1")
        request = client.http.last
        assert request.method == "POST"
        assert request.path == "/apps/3/users/user-1/terminate_connections"
        assert body_json(request) == {}
        assert assert_signed(request)["body_md5"] == "99914b932bd37a50b983c5e7c90ae93b"  # md5("{}")


# -- answers that are not what they claim ------------------------------------------------


class TestNonJsonSuccess:
    """A 2xx answer that is not JSON is a PusherBadStatus with an excerpt, on every transport."""

    @pytest.mark.parametrize("status", [200, 202])
    @pytest.mark.parametrize(
        "body", [b"<html>proxy login</html>", b"", b"\xff\xfe not utf-8", b'{"a":', "text"]
    )
    def test_process_response_raises_pusher_bad_status(self, status, body):
        from pusher_fast._request import process_response

        with pytest.raises(errors.PusherBadStatus, match="not JSON") as info:
            process_response(status, body)
        assert info.value.status == status

    def test_the_excerpt_is_bounded(self):
        from pusher_fast._request import process_response

        with pytest.raises(errors.PusherBadStatus) as info:
            process_response(200, b"<html>" + b"x" * 1_000_000)
        assert "<html>xxx" in str(info.value)
        assert len(str(info.value)) < 400

    @pytest.mark.timeout(30)
    @pytest.mark.usefixtures("clean_proxy_environment")
    @pytest.mark.parametrize("transport", ["fast", "urllib3", "async", "aiohttp"])
    def test_every_transport_raises_it(self, mini, transport):
        import asyncio

        from tests.helpers import http11

        mini.always(http11(200, b"<html>captive portal</html>"))
        options = {
            "app_id": APP_ID,
            "key": KEY,
            "secret": SECRET,
            "host": "127.0.0.1",
            "port": mini.port,
            "ssl": False,
            "timeout": 5,
        }
        if transport == "fast":
            call = lambda: pusher_fast.Pusher(**options).trigger("c", "e", "d")  # noqa: E731
        elif transport == "urllib3":
            from pusher_fast.transports import Urllib3Backend

            client = pusher_fast.Pusher(backend=Urllib3Backend, **options)
            call = lambda: client.trigger("c", "e", "d")  # noqa: E731
        else:
            from pusher_fast.aio import AsyncPusher

            if transport == "aiohttp":
                from pusher_fast.aiohttp import AsyncIOBackend

                options["backend"] = AsyncIOBackend

            async def main():
                client = AsyncPusher(**options)
                try:
                    return await client.trigger("c", "e", "d")
                finally:
                    await client.aclose()

            call = lambda: asyncio.run(main())  # noqa: E731
        with pytest.raises(errors.PusherBadStatus, match="captive portal") as info:
            call()
        assert info.value.status == 200


# -- the secret and the master key never appear in a message -----------------------------

SECRET_TEXT = "TOPSECRETVALUE"


class TestSecretNeverShown:
    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"secret": b"\xff" + SECRET_TEXT.encode()}, ValueError),
            ({"secret": bytearray(b"\xfe" + SECRET_TEXT.encode())}, ValueError),
            ({"secret": SECRET_TEXT + "\udcff"}, ValueError),
            ({"secret": 1234}, TypeError),
            ({"secret": [SECRET_TEXT]}, TypeError),
            ({"secret": {"s": SECRET_TEXT}}, TypeError),
            ({"encryption_master_key": SECRET_TEXT}, ValueError),
            ({"encryption_master_key": SECRET_TEXT + "\udcff"}, ValueError),
            ({"encryption_master_key": [SECRET_TEXT]}, TypeError),
            ({"encryption_master_key_base64": SECRET_TEXT}, ValueError),
            ({"encryption_master_key_base64": SECRET_TEXT + "é"}, ValueError),
            ({"encryption_master_key_base64": SECRET_TEXT.encode() + b"\xff"}, ValueError),
            ({"encryption_master_key_base64": [SECRET_TEXT]}, TypeError),
        ],
    )
    def test_bad_secret_or_master_key_says_what_is_wrong_without_the_value(self, options, error):
        kwargs = {"app_id": APP_ID, "key": KEY, "secret": SECRET, "backend": RecordingBackend}
        kwargs.update(options)
        with pytest.warns() if "encryption_master_key" in options else _no_warning():
            with pytest.raises(error) as info:
                pusher_fast.Pusher(**kwargs)
        for text in (str(info.value), repr(info.value), repr(info.value.args)):
            assert SECRET_TEXT not in text
            assert "1234" not in text
        name = next(iter(options))
        assert name in str(info.value)

    def test_secret_is_not_in_the_client_or_request_repr(self):
        client = make_client(secret=SECRET_TEXT)
        client.trigger("c", "e", "d")
        assert SECRET_TEXT not in repr(client)
        assert SECRET_TEXT not in repr(client.http.last)
        assert SECRET_TEXT not in repr(client._signer)

    def test_cli_never_prints_a_bad_secret(self, capsys, monkeypatch):
        from pusher_fast.__main__ import main

        monkeypatch.delenv("PUSHER_URL", raising=False)
        for argv in (
            ["channels", "--url", f"http://key:TOP/{SECRET_TEXT}@host:port/apps/1"],
            ["channels", "--url", f"http://key:{SECRET_TEXT}@host/apps/x"],
            ["channels", "--app-id", "1", "--key", "k", "--secret", SECRET_TEXT + "\udcff"],
        ):
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 2
            assert "bad credentials" in err
            assert SECRET_TEXT not in out and SECRET_TEXT not in err

    def test_testing_app_never_shows_a_bad_secret(self):
        from pusher_fast.testing import App

        with pytest.raises(ValueError) as info:
            App("1", "key", [SECRET_TEXT])  # type: ignore[arg-type]
        assert SECRET_TEXT not in str(info.value)


def _no_warning():
    import contextlib

    return contextlib.nullcontext()


# -- host, with or without a port --------------------------------------------------------


class TestHostAndPort:
    @pytest.mark.parametrize(
        ("host", "options", "expected"),
        [
            ("api.example.com:8080", {}, ("api.example.com", 8080, "https://api.example.com:8080")),
            ("api.example.com:8080", {"port": 8080}, ("api.example.com", 8080, None)),
            ("api.example.com", {"port": 8080}, ("api.example.com", 8080, None)),
            ("127.0.0.1:6001", {"ssl": False}, ("127.0.0.1", 6001, "http://127.0.0.1:6001")),
            ("[::1]:8080", {}, ("::1", 8080, "https://[::1]:8080")),
            ("[::1]", {"ssl": False}, ("::1", 80, "http://[::1]:80")),
            ("::1", {}, ("::1", 443, "https://[::1]:443")),
        ],
    )
    def test_host_may_carry_the_port(self, host, options, expected):
        from pusher_fast._http11 import host_header

        client = make_client(host=host, **options)
        name, port, base_url = expected
        assert (client.host, client.port) == (name, port)
        if base_url:
            assert client.base_url == base_url
        client.trigger("c", "e", "d")
        assert client.http.last.url.startswith(client.base_url + "/apps/3/events?")
        default = 443 if client.ssl else 80
        shown = f"[{name}]" if ":" in name else name
        assert host_header(client.host, client.port, default) == (
            shown if port == default else f"{shown}:{port}"
        )

    @pytest.mark.timeout(30)
    @pytest.mark.usefixtures("clean_proxy_environment")
    def test_a_request_reaches_host_colon_port_with_its_host_header(self, mini):
        from tests.helpers import http11

        mini.always(http11(200, b"{}"))
        client = pusher_fast.Pusher(
            app_id=APP_ID, key=KEY, secret=SECRET, host=f"127.0.0.1:{mini.port}", ssl=False
        )
        assert client.trigger("c", "e", "d") == {}
        (seen,) = mini.requests
        assert seen.headers["Host"] == f"127.0.0.1:{mini.port}"

    def test_a_port_that_disagrees_is_a_value_error(self):
        with pytest.raises(ValueError, match=r"'api.example.com:8080'.*port=9090"):
            make_client(host="api.example.com:8080", port=9090)

    @pytest.mark.parametrize(
        ("host", "rule"),
        [
            ("https://api.example.com", "scheme"),
            ("http://api.example.com:8080", "scheme"),
            ("api.example.com/apps/1", "path"),
            ("api.example.com?x=1", "path"),
            ("user@api.example.com", "user"),
            ("api example.com", "spaces"),
            ("api.example.com\n", "spaces"),
            (":8080", "name is empty"),
            ("[]:8080", "IPv6"),
            ("api.example.com:", "port"),
            ("api.example.com:http", "port"),
            ("api.example.com:70000", "port"),
            ("[::1", "IPv6"),
            ("[not-v6]:80", "IPv6"),
            ("1:2:3", "IPv6"),
        ],
    )
    def test_bad_host_is_refused_at_construction(self, host, rule):
        with pytest.raises(ValueError, match=rule) as info:
            make_client(host=host)
        assert repr(host) in str(info.value)

    @pytest.mark.parametrize(
        "url", ["http://k:s@api.example.com:6001/apps/1", "http://k:s@[::1]:6001/apps/1"]
    )
    def test_from_url_gives_the_same_host_and_port(self, url):
        client = pusher_fast.Pusher.from_url(url, backend=RecordingBackend)
        assert client.port == 6001
        assert client.host in ("api.example.com", "::1")
        assert client.base_url == url.replace("k:s@", "").rsplit("/apps", 1)[0]


# -- a key that is not ASCII -------------------------------------------------------------

NON_ASCII_KEYS = ["kéy", "ключ", "🔑-key"]


class TestNonAsciiKey:
    """Sent as the official library's requests sends it: percent-encoded in the URL,
    signed unescaped; the embedded server verifies the signature."""

    @pytest.mark.timeout(60)
    @pytest.mark.usefixtures("clean_proxy_environment")
    @pytest.mark.parametrize("key", NON_ASCII_KEYS)
    @pytest.mark.parametrize("transport", ["fast", "urllib3", "async", "aiohttp"])
    def test_requests_with_a_non_ascii_key_are_accepted(self, key, transport):
        import asyncio
        import urllib.parse

        from pusher_fast.testing import PusherServer

        with PusherServer(key=key, secret=SECRET) as server:
            options = {
                "app_id": server.app_id,
                "key": key,
                "secret": SECRET,
                "host": "127.0.0.1",
                "port": server.port,
                "ssl": False,
            }
            if transport in ("fast", "urllib3"):
                if transport == "urllib3":
                    from pusher_fast.transports import Urllib3Backend

                    options["backend"] = Urllib3Backend
                client = pusher_fast.Pusher(**options)
                assert client.trigger("c", "e", {"x": 1}) == {}
                assert client.channels_info() == {"channels": {}}
            else:
                from pusher_fast.aio import AsyncPusher

                if transport == "aiohttp":
                    from pusher_fast.aiohttp import AsyncIOBackend

                    options["backend"] = AsyncIOBackend

                async def main():
                    client = AsyncPusher(**options)
                    try:
                        assert await client.trigger("c", "e", {"x": 1}) == {}
                        assert await client.channels_info() == {"channels": {}}
                    finally:
                        await client.aclose()

                asyncio.run(main())
            assert [r.status for r in server.requests] == [200, 200]
            for recorded in server.requests:
                assert recorded.query.isascii()
                assert f"auth_key={urllib.parse.quote(key)}&" in recorded.query

    @pytest.mark.parametrize("key", NON_ASCII_KEYS)
    def test_query_string_stays_unescaped_as_signed(self, key):
        client = make_client(key=key)
        client.trigger("c", "e", "d")
        request = client.http.last
        assert request.query_string.startswith(f"auth_key={key}&")
        assert_signed(request, key=key)

    @pytest.mark.parametrize("key", NON_ASCII_KEYS)
    def test_auth_strings_carry_the_key_as_is(self, key):
        client = make_client(key=key)
        assert client.authenticate("private-c", "1.1")["auth"].startswith(key + ":")
        assert client.authenticate_user("1.1", {"id": "u"})["auth"].startswith(key + ":")

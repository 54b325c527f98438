"""Users' tests keep working after ``import pusher_fast as pusher``: every route the README's
"Testing code that uses pusher_fast" names (requests mocks through ``RequestsBackend``, patching
``Pusher.trigger``, the pytest fixtures), and the requests and Tornado transports themselves."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path
from unittest import mock

import pusher
import pusher.requests
import pytest
import requests
import requests_mock
import responses

import pusher_fast
import pusher_fast.requests
import pusher_fast.tornado
from pusher_fast.errors import PusherBadAuth, PusherBadRequest, PusherTransportError
from pusher_fast.testing import PusherServer

ROOT = Path(__file__).resolve().parent.parent
CREDS = {"app_id": "123456", "key": "key", "secret": "secret", "cluster": "eu"}
EVENTS_URL = "https://api-eu.pusher.com:443/apps/123456/events"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


# -- responses / requests-mock: one backend= argument keeps them intercepting ------------------


# The same test body, written once as a user of the official library would, runs against the
# official package and against pusher_fast: only the module differs.
@pytest.mark.parametrize(
    "module, backend",
    [
        (pusher, pusher.requests.RequestsBackend),
        (pusher_fast, pusher_fast.requests.RequestsBackend),
    ],
    ids=["official", "pusher_fast"],
)
@responses.activate
def test_responses_intercepts_a_trigger(module, backend) -> None:
    responses.add(responses.POST, re.compile(r".*/apps/123456/events.*"), json={})
    client = module.Pusher(backend=backend, **CREDS)
    assert client.trigger("orders", "created", {"id": 7}) == {}
    (call,) = responses.calls
    assert call.request.url.startswith(EVENTS_URL + "?")
    body = json.loads(call.request.body)
    assert body["name"] == "created" and body["channels"] == ["orders"]
    assert json.loads(body["data"]) == {"id": 7}
    params = query_of(call.request.url)
    assert params["auth_key"] == "key" and len(params["auth_signature"]) == 64
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["X-Pusher-Library"].startswith(module.__name__.replace("_", "-"))


@responses.activate
def test_responses_sees_nothing_from_the_default_transport(pusher_server) -> None:
    """The hazard the backend= argument removes: the default transport is not requests."""
    responses.add(responses.POST, re.compile(r".*"), json={})
    client = pusher_fast.Pusher(**pusher_server.client_kwargs())
    client.trigger("orders", "created", {"id": 1})
    assert len(responses.calls) == 0
    assert len(pusher_server.events) == 1  # it went out over the network


@responses.activate
def test_responses_error_statuses_become_pusher_errors() -> None:
    responses.add(responses.POST, EVENTS_URL, status=400, body="bad event")
    responses.add(responses.GET, re.compile(r".*/channels\?.*"), status=401, body="no")
    client = pusher_fast.Pusher(backend=pusher_fast.requests.RequestsBackend, **CREDS)
    with pytest.raises(PusherBadRequest, match="bad event"):
        client.trigger("orders", "created", {})
    with pytest.raises(PusherBadAuth):
        client.channels_info()


@responses.activate
def test_responses_catches_the_bulk_sender_too() -> None:
    responses.add(responses.POST, re.compile(r".*/batch_events.*"), json={})
    client = pusher_fast.Pusher(backend=pusher_fast.requests.RequestsBackend, **CREDS)
    with client.bulk(concurrency=2) as sender:
        for n in range(25):
            sender.add("orders", "tick", {"n": n})
    assert sender.report.delivered == 25 and not sender.report.failed
    sent = [json.loads(c.request.body)["batch"] for c in responses.calls]
    assert all(1 <= len(b) <= 10 for b in sent)
    assert sorted(json.loads(e["data"])["n"] for b in sent for e in b) == list(range(25))


@responses.activate
def test_unmatched_request_is_a_transport_error() -> None:
    # responses refuses requests nobody registered with requests' ConnectionError.
    client = pusher_fast.Pusher(backend=pusher_fast.requests.RequestsBackend, **CREDS)
    with pytest.raises(PusherTransportError) as caught:
        client.trigger("orders", "created", {})
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_requests_mock_intercepts_a_trigger() -> None:
    with requests_mock.Mocker() as m:
        m.post(EVENTS_URL, json={"channels": {"orders": {"subscription_count": 2}}})
        client = pusher_fast.Pusher(backend=pusher_fast.requests.RequestsBackend, **CREDS)
        result = client.trigger("orders", "created", "x", info="subscription_count")
        assert result == {"channels": {"orders": {"subscription_count": 2}}}
        assert m.call_count == 1
        assert m.last_request.json()["info"] == "subscription_count"


# -- the transports against a server that checks signatures ---------------------------------------


def test_requests_backend_against_a_real_server(pusher_server: PusherServer) -> None:
    client = pusher_fast.Pusher(
        backend=pusher_fast.requests.RequestsBackend, **pusher_server.client_kwargs()
    )
    pusher_server.add_member("presence-room", "u1")
    assert client.trigger(["a", "b"], "e", {"n": 1}) == {}
    assert client.trigger_batch([{"channel": "c", "name": "e", "data": "x"}]) == {}
    assert client.channels_info(prefix_filter="presence-", attributes=["user_count"]) == {
        "channels": {"presence-room": {"user_count": 1}}
    }
    assert client.users_info("presence-room") == {"users": [{"id": "u1"}]}
    assert [e.channel for e in pusher_server.events] == ["a", "b", "c"]


def test_requests_backend_retries_when_asked(pusher_server: PusherServer) -> None:
    pusher_server.fail_next(2, status=503)
    client = pusher_fast.Pusher(
        backend=pusher_fast.requests.RequestsBackend, retries=3, **pusher_server.client_kwargs()
    )
    assert client.trigger("a", "e", "x") == {}
    assert len(pusher_server.events) == 1


def test_requests_backend_unreachable_is_a_transport_error() -> None:
    client = pusher_fast.Pusher(
        backend=pusher_fast.requests.RequestsBackend,
        app_id="1",
        key="k",
        secret="s",
        host="127.0.0.1",
        port=free_port(),
        ssl=False,
        timeout=2,
    )
    with pytest.raises(PusherTransportError, match=r"127\.0\.0\.1"):
        client.trigger("a", "e", "x")


def test_tornado_backend_against_a_real_server(pusher_server: PusherServer) -> None:
    client = pusher_fast.Pusher(
        backend=pusher_fast.tornado.TornadoBackend, **pusher_server.client_kwargs()
    )
    pusher_server.add_subscriber("orders", 3)

    async def scenario() -> tuple[object, object]:
        future = client.trigger("orders", "created", {"id": 1})
        assert isinstance(future, asyncio.Future)  # as the official backend returns
        triggered = await future
        # GET sends no body (Tornado refuses one; the official backend fails here)
        info = await client.channel_info("orders", ["subscription_count"])
        return triggered, info

    triggered, info = asyncio.run(scenario())
    assert triggered == {}
    assert info == {"occupied": True, "subscription_count": 3}
    assert pusher_server.events_for("orders")[0].json() == {"id": 1}


def test_tornado_backend_errors(pusher_server: PusherServer) -> None:
    kwargs = dict(pusher_server.client_kwargs(), secret="wrong")
    bad_auth = pusher_fast.Pusher(backend=pusher_fast.tornado.TornadoBackend, **kwargs)
    unreachable = pusher_fast.Pusher(
        backend=pusher_fast.tornado.TornadoBackend,
        **dict(pusher_server.client_kwargs(), port=free_port(), timeout=2),
    )

    async def scenario() -> None:
        with pytest.raises(PusherBadAuth):
            await bad_auth.trigger("a", "e", "x")
        with pytest.raises(PusherTransportError):
            await unreachable.trigger("a", "e", "x")

    asyncio.run(scenario())
    assert pusher_server.events == []


def test_tornado_backend_refuses_retries() -> None:
    with pytest.raises(TypeError, match="retries"):
        pusher_fast.Pusher(backend=pusher_fast.tornado.TornadoBackend, retries=3, **CREDS)


# -- names: pusher.requests / pusher.aiohttp / pusher.tornado as in the official package -------


def test_submodules_are_reachable_as_attributes_after_import() -> None:
    code = (
        "import sys\n"
        "import pusher_fast as pusher\n"
        "assert 'pusher_fast.requests' not in sys.modules  # loaded on first use only\n"
        "print(pusher.requests.RequestsBackend.__module__,\n"
        "      pusher.aiohttp.AsyncIOBackend.__module__,\n"
        "      pusher.tornado.TornadoBackend.__module__)\n"
        "try:\n"
        "    pusher.no_such_thing\n"
        "except AttributeError as exc:\n"
        "    print('AttributeError', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert result.stdout.split()[:3] == [
        "pusher_fast.requests",
        "pusher_fast.aiohttp",
        "pusher_fast.tornado",
    ]
    assert "AttributeError" in result.stdout and "no_such_thing" in result.stdout


# -- patching Pusher.trigger, and what it does not catch ------------------------------------------


def notify_order(client: pusher_fast.Pusher, order_id: int) -> None:
    """Application code under test."""
    client.trigger("orders", "created", {"id": order_id})


def test_patching_pusher_trigger(pusher_server: PusherServer) -> None:
    client = pusher_fast.Pusher(**pusher_server.client_kwargs())
    with mock.patch.object(pusher_fast.Pusher, "trigger", return_value={}) as trigger:
        notify_order(client, 7)
    trigger.assert_called_once_with("orders", "created", {"id": 7})
    assert pusher_server.events == []  # nothing went out


def test_patching_pusher_trigger_does_not_catch_the_bulk_sender(
    pusher_server: PusherServer,
) -> None:
    client = pusher_fast.Pusher(**pusher_server.client_kwargs())
    with mock.patch.object(pusher_fast.Pusher, "trigger") as trigger:
        with client.bulk() as sender:
            sender.add("orders", "created", {"id": 1})
    trigger.assert_not_called()
    assert len(pusher_server.events) == 1  # sent for real: patch the sender, or use a server


# -- the fixtures the pytest plugin provides ------------------------------------------------------

# This suite's conftest has fixtures of its own named pusher_client, so the plugin's fixtures
# are exercised as a user sees them: in a separate pytest session with only the plugin.
FIXTURE_TESTS = """
import pusher_fast
import pytest


def notify_order(client, order_id):
    client.trigger("orders", "created", {"id": order_id})


def test_pusher_client(pusher_server, pusher_client):
    notify_order(pusher_client, 3)
    assert pusher_server.events_for("orders", name="created")[0].json() == {"id": 3}


def test_pusher_url_sets_the_environment(pusher_server, pusher_url):
    client = pusher_fast.Pusher.from_env()  # code that configures itself from PUSHER_URL
    assert pusher_url == pusher_server.pusher_url
    notify_order(client, 4)
    assert pusher_server.events[0].json() == {"id": 4}


def test_wait_for_events(pusher_client, wait_for_events):
    with pusher_client.bulk(concurrency=2) as sender:
        for n in range(15):
            sender.add("ticks", "tick", {"n": n})
    events = wait_for_events(15, channel="ticks")
    assert sorted(e.json()["n"] for e in events) == list(range(15))


def test_pusher_server_factory(pusher_server_factory):
    strict = pusher_server_factory(max_payload_bytes=10)
    client = pusher_fast.Pusher(**strict.client_kwargs())
    with pytest.raises(pusher_fast.PusherBadStatus) as caught:
        client.trigger("a", "e", "x" * 50)
    assert caught.value.status == 413


def test_environment_is_restored():
    import os
    assert "PUSHER_URL" not in os.environ
"""


def test_plugin_fixtures_in_a_user_session(tmp_path: Path) -> None:
    (tmp_path / "test_user_code.py").write_text(FIXTURE_TESTS)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pusher_fast.testing.plugin",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-p", "no:randomly",
         str(tmp_path / "test_user_code.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout

"""Integration tests against real peers: soketi (server) and pusher-js under Node (client).

The module under test is ``pusher_fast`` by default, or the official ``pusher`` package with
``PEER_TEST_MODULE=pusher`` (see ``pusher_module`` in conftest.py). Tests marked ``deviation`` rely
on pusher_fast's deliberate fixes or extensions and are skipped for the official package.

soketi facts these tests rely on: it answers API errors with HTTP 200 and a body
``{"error": ..., "code": ...}`` (success is ``{"ok": true}`` or the queried data), it ignores
``info=`` (it always reports ``subscription_count``/``occupied``, and ``user_count`` only on a
single presence channel), and it verifies the request signature and ``body_md5``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import json
import time
from typing import Any

import pytest

from tests.peers import MASTER_KEY, official_module_under_test
from tests.peers.browser import SubscriptionError

pytestmark = pytest.mark.integration

DATA = {"text": 'héllo ☃ "quoted" <tag> & more', "n": 42, "nested": {"list": [1, 2.5, None, True]}}


# -- helpers -------------------------------------------------------------------------------------


def assert_ok(result: Any) -> None:
    """A successful soketi answer: a dict without soketi's in-body error."""
    assert isinstance(result, dict), result
    assert "error" not in result, result


def expect_soketi_error(pusher_module: Any, call: Any, code: int) -> str:
    """soketi sends errors as HTTP 200 + ``{"error", "code"}``: the library may return that body
    (as the official one does) or raise the matching PusherError. Returns the error text."""
    errors = importlib.import_module(pusher_module.__name__ + ".errors")
    expected = {
        400: errors.PusherBadRequest,
        401: errors.PusherBadAuth,
        403: errors.PusherForbidden,
    }.get(code, errors.PusherBadStatus)
    try:
        result = call()
    except errors.PusherError as e:
        assert isinstance(e, expected), f"{type(e).__name__}: {e} (expected {expected.__name__})"
        return str(e)
    assert isinstance(result, dict), result
    assert result.get("code") == code, result
    assert result.get("error"), result
    return str(result["error"])


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def barrier(client: Any, browsers: list[Any], channel: str, uid: str) -> None:
    """Trigger a marker event and wait until every browser got it: events sent before it on the
    same connection have then been delivered (or never will be)."""
    marker = {"barrier": uid}
    assert_ok(client.trigger(channel, "barrier", marker))
    for b in browsers:
        b.wait_for_event(channel, "barrier", lambda r: r["data"] == marker, timeout=5)


# -- 1. REST calls -------------------------------------------------------------------------------


def test_trigger_single_channel(pusher_client, browser, uid):
    b = browser()
    channel = f"pub-{uid}"
    b.subscribe(channel)

    assert_ok(pusher_client.trigger(channel, "my-event", DATA))
    ev = b.wait_for_event(channel, "my-event")
    assert ev["data"] == DATA

    # A string is sent as is (not JSON-encoded again).
    assert_ok(pusher_client.trigger(channel, "str-event", "just text, not JSON"))
    ev = b.wait_for_event(channel, "str-event")
    assert ev["data"] == "just text, not JSON"

    barrier(pusher_client, [b], channel, uid)
    assert [e["event"] for e in b.events(channel)] == ["my-event", "str-event", "barrier"]


def test_trigger_multi_channel(pusher_client, browser, uid):
    b1 = browser()
    b2 = browser()
    channels = [f"multi-{uid}-a", f"multi-{uid}-b", f"private-multi-{uid}-c"]
    for ch in channels[:2]:
        b1.subscribe(ch)
    b2.subscribe(channels[2])
    b2.subscribe(channels[1])

    assert_ok(pusher_client.trigger(channels, "fan-out", DATA))
    for ch in channels[:2]:
        assert b1.wait_for_event(ch, "fan-out")["data"] == DATA
    for ch in channels[1:]:
        assert b2.wait_for_event(ch, "fan-out")["data"] == DATA

    barrier(pusher_client, [b1, b2], channels[1], uid)
    assert len(b1.events(event="fan-out")) == 2
    assert len(b2.events(event="fan-out")) == 2
    assert b1.events(channels[2]) == []


def test_trigger_batch(pusher_client, browser, uid):
    b = browser()
    pub, priv, enc = f"batch-{uid}", f"private-batch-{uid}", f"private-encrypted-batch-{uid}"
    for ch in (pub, priv, enc):
        b.subscribe(ch)
    batch = [
        {"channel": pub, "name": "b1", "data": {"i": 1, "s": "ü"}},
        {"channel": priv, "name": "b2", "data": "plain string"},
        {"channel": pub, "name": "b3", "data": {"i": 3}},
        {"channel": enc, "name": "b4", "data": {"secret": "ciphered ✓", "i": 4}},
    ]
    original = json.loads(json.dumps(batch))
    assert_ok(pusher_client.trigger_batch(batch))

    assert b.wait_for_event(pub, "b1")["data"] == {"i": 1, "s": "ü"}
    assert b.wait_for_event(priv, "b2")["data"] == "plain string"
    assert b.wait_for_event(pub, "b3")["data"] == {"i": 3}
    assert b.wait_for_event(enc, "b4")["data"] == {"secret": "ciphered ✓", "i": 4}
    assert [e["event"] for e in b.events(pub)] == ["b1", "b3"]
    if not official_module_under_test():
        assert batch == original, "trigger_batch must not mutate its input"


def test_channels_info_with_prefix_filter(pusher_client, browser, uid):
    b1 = browser(user_id=f"{uid}-u1")
    b2 = browser(user_id=f"{uid}-u2")
    presence = f"presence-{uid}-room"
    private = f"private-{uid}-x"
    public = f"{uid}-public"
    for b in (b1, b2):
        b.subscribe(presence)
    b1.subscribe(private)
    b1.subscribe(public)

    everything = pusher_client.channels_info()
    assert_ok(everything)
    chans = everything["channels"]
    assert chans[presence]["subscription_count"] == 2
    assert chans[private]["subscription_count"] == 1
    assert chans[public]["subscription_count"] == 1

    only_presence = pusher_client.channels_info(
        prefix_filter=f"presence-{uid}", attributes=["user_count"]
    )
    assert_ok(only_presence)
    assert set(only_presence["channels"]) == {presence}
    # soketi ignores info=: when a server does report user_count it must be right.
    if "user_count" in only_presence["channels"][presence]:
        assert only_presence["channels"][presence]["user_count"] == 2

    only_private = pusher_client.channels_info(prefix_filter=f"private-{uid}")
    assert set(only_private["channels"]) == {private}

    nothing = pusher_client.channels_info(prefix_filter=f"presence-{uid}-none")
    assert nothing["channels"] in ({}, [])


def test_channel_info(pusher_client, browser, uid):
    channel = f"info-{uid}"
    empty = pusher_client.channel_info(channel, ["subscription_count"])
    assert_ok(empty)
    assert empty["occupied"] is False
    assert empty.get("subscription_count", 0) == 0

    b1, b2 = browser(), browser()
    b1.subscribe(channel)
    b2.subscribe(channel)
    info = pusher_client.channel_info(channel, ["subscription_count"])
    assert info["occupied"] is True
    assert info["subscription_count"] == 2

    presence = f"presence-info-{uid}"
    b1.subscribe(presence)
    b2.subscribe(presence)
    info = pusher_client.channel_info(presence, ["user_count", "subscription_count"])
    assert info["occupied"] is True
    assert info["subscription_count"] == 2
    # Two connections without user_id: the auth server gives each its own anonymous user.
    assert info["user_count"] == 2

    # Unsubscribing is not acknowledged by the protocol: poll (bounded).
    b2.unsubscribe(channel)
    deadline = time.monotonic() + 5
    while True:
        info = pusher_client.channel_info(channel, ["subscription_count"])
        if info["subscription_count"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert info["subscription_count"] == 1
    assert info["occupied"] is True


def test_users_info(pusher_client, browser, uid):
    channel = f"presence-users-{uid}"
    alice = browser(user_id=f"alice-{uid}", user_info={"name": "Alice"})
    bob = browser(user_id=f"bob-{uid}", user_info={"name": "Bob"})
    alice.subscribe(channel)
    bob.subscribe(channel)
    alice.wait_for("member_added", lambda r: r["id"] == f"bob-{uid}")

    users = pusher_client.users_info(channel)
    assert_ok(users)
    assert sorted(u["id"] for u in users["users"]) == [f"alice-{uid}", f"bob-{uid}"]

    bob.unsubscribe(channel)
    alice.wait_for("member_removed", lambda r: r["id"] == f"bob-{uid}")
    users = pusher_client.users_info(channel)
    assert [u["id"] for u in users["users"]] == [f"alice-{uid}"]


def test_send_to_user(pusher_client_user_auth, soketi_user_auth, browser, uid):
    alice_id, bob_id = f"alice-{uid}", f"bob-{uid}"
    alice = browser(soketi_user_auth, user_id=alice_id, user_info={"role": "admin", "n": "Zoë"})
    bob = browser(soketi_user_auth, user_id=bob_id)
    signed = alice.signin()
    assert signed["user_data"]["id"] == alice_id
    assert signed["user_data"]["user_info"] == {"role": "admin", "n": "Zoë"}
    bob.signin()

    assert_ok(pusher_client_user_auth.send_to_user(alice_id, "for-alice", DATA))
    ev = alice.wait_for("user_event", lambda r: r["event"] == "for-alice")
    assert ev["data"] == DATA

    assert_ok(pusher_client_user_auth.send_to_user(bob_id, "for-bob", {"only": "bob"}))
    assert bob.wait_for("user_event", lambda r: r["event"] == "for-bob")["data"] == {"only": "bob"}
    # Alice got hers before; a last one to her is the barrier for "bob's never reached alice".
    assert_ok(pusher_client_user_auth.send_to_user(alice_id, "last", "x"))
    alice.wait_for("user_event", lambda r: r["event"] == "last")
    assert [r["event"] for r in alice.reports if r["type"] == "user_event"] == ["for-alice", "last"]
    assert [r["event"] for r in bob.reports if r["type"] == "user_event"] == ["for-bob"]


# The official library posts to /users/{id}/terminate_connections (no /apps/{id}): soketi 404s.
@pytest.mark.deviation
def test_terminate_user_connections(pusher_client_user_auth, soketi_user_auth, browser, uid):
    alice_id, bob_id = f"alice-{uid}", f"bob-{uid}"
    alice = browser(soketi_user_auth, user_id=alice_id)
    bob = browser(soketi_user_auth, user_id=bob_id)
    alice.signin()
    bob.signin()
    start = alice.mark()

    assert_ok(pusher_client_user_auth.terminate_user_connections(alice_id))

    err = alice.wait_for("pusher_error", timeout=5, start=start)
    assert err["data"]["code"] == 4009
    alice.wait_for("disconnected", timeout=5, start=start)
    # Bob is untouched and still receives.
    assert bob.state()["state"] == "connected"
    assert_ok(pusher_client_user_auth.send_to_user(bob_id, "still-here", {"ok": 1}))
    bob.wait_for("user_event", lambda r: r["event"] == "still-here")


def test_full_channel_alphabet_and_unicode_user_info(
    pusher_client, pusher_client_user_auth, soketi_user_auth, browser, uid
):
    """Channel names and user ids with every allowed punctuation character (``-_=@,.;``) go
    into URL paths and signatures; non-ASCII user_info goes into signed JSON strings."""
    channel = f"presence-a_b=c@d,e.f;g-{uid}"
    user_id = f"u=1@x,y.z;w_-{uid}"
    info = {"name": "Zoë ☃ 日本", "q": '"quoted"'}
    b = browser(user_id=user_id, user_info=info)
    sub = b.subscribe(channel)
    assert sub["me"] == {"id": user_id, "info": info}
    assert pusher_client.channel_info(channel, ["user_count"])["user_count"] == 1
    assert pusher_client.users_info(channel)["users"] == [{"id": user_id}]
    assert set(pusher_client.channels_info(prefix_filter="presence-a_b=c@d,e.f;g")["channels"]) >= {
        channel
    }
    assert_ok(pusher_client.trigger(channel, "ev;=@", {"v": "ü"}))
    assert b.wait_for_event(channel, "ev;=@")["data"] == {"v": "ü"}

    signed_in_browser = browser(soketi_user_auth, user_id=user_id, user_info=info)
    signed = signed_in_browser.signin()
    assert signed["user_data"] == {"id": user_id, "user_info": info}
    assert_ok(pusher_client_user_auth.send_to_user(user_id, "to-user", {"v": "☃"}))
    ev = signed_in_browser.wait_for("user_event", lambda r: r["event"] == "to-user")
    assert ev["data"] == {"v": "☃"}


# -- 2. pusher-js subscribes through the library's auth endpoint ---------------------------------


def test_subscribe_all_channel_types_through_library_auth(
    pusher_client, auth_server, browser, soketi, uid
):
    b = browser(user_id=f"u-{uid}", user_info={"name": "Zoë"})
    channels = {
        "public": f"pub-all-{uid}",
        "private": f"private-all-{uid}",
        "presence": f"presence-all-{uid}",
        "encrypted": f"private-encrypted-all-{uid}",
    }
    for ch in channels.values():
        b.subscribe(ch)

    # The auth responses the library produced are the documented signatures.
    socket_id = b.socket_id
    by_channel = {
        r.form["channel_name"]: r for r in auth_server.auth_requests if r.kind == "channel"
    }
    priv = by_channel[channels["private"]]
    assert priv.status == 200
    private_sig = sign(soketi.secret, f"{socket_id}:{channels['private']}")
    expected = f"{soketi.key}:{private_sig}"
    assert priv.response["auth"] == expected
    pres = by_channel[channels["presence"]].response
    assert json.loads(pres["channel_data"]) == {"user_id": f"u-{uid}", "user_info": {"name": "Zoë"}}
    presence_string = f"{socket_id}:{channels['presence']}:{pres['channel_data']}"
    assert pres["auth"] == f"{soketi.key}:{sign(soketi.secret, presence_string)}"
    enc = by_channel[channels["encrypted"]].response
    shared = enc["shared_secret"]
    if isinstance(shared, bytes):  # the official library's defect
        shared = shared.decode("ascii")
    assert (
        base64.b64decode(shared)
        == hashlib.sha256(channels["encrypted"].encode() + MASTER_KEY).digest()
    )

    payloads = {kind: {"kind": kind, **DATA} for kind in channels}
    for kind, ch in channels.items():
        assert_ok(pusher_client.trigger(ch, "ev", payloads[kind]))
    for kind, ch in channels.items():
        got = b.wait_for_event(ch, "ev")
        assert got["data"] == payloads[kind], kind

    barrier(pusher_client, [b], channels["public"], uid)
    for ch in channels.values():
        assert len(b.events(ch, "ev")) == 1


@pytest.mark.deviation
def test_shared_secret_is_text(pusher_client, uid):
    resp = pusher_client.authenticate(f"private-encrypted-{uid}", "1234.5678")
    assert isinstance(resp["shared_secret"], str)


def test_socket_id_excludes_sender(pusher_client, browser, uid):
    channel = f"private-excl-{uid}"
    sender, other = browser(), browser()
    sender.subscribe(channel)
    other.subscribe(channel)
    sid = sender.socket_id
    assert sid != other.socket_id

    assert_ok(pusher_client.trigger(channel, "excluded", {"n": 1}, socket_id=sid))
    assert other.wait_for_event(channel, "excluded")["data"] == {"n": 1}
    assert_ok(
        pusher_client.trigger_batch(
            [{"channel": channel, "name": "excluded-batch", "data": {"n": 2}, "socket_id": sid}]
        )
    )
    assert other.wait_for_event(channel, "excluded-batch")["data"] == {"n": 2}

    barrier(pusher_client, [sender, other], channel, uid)
    assert [e["event"] for e in sender.events(channel)] == ["barrier"]
    assert [e["event"] for e in other.events(channel)] == ["excluded", "excluded-batch", "barrier"]


def test_auth_with_wrong_secret_is_refused_by_soketi(make_client, auth_server, browser, uid):
    auth_server.clients["wrong"] = make_client(secret="not-the-secret")
    b = browser(channel_auth_url=auth_server.channel_auth_url_for("wrong"))
    with pytest.raises(SubscriptionError):
        b.subscribe(f"private-wrong-{uid}")
    # The same browser with the right signature gets in (control).
    good = browser()
    good.subscribe(f"private-wrong-{uid}")


# -- 3. presence ---------------------------------------------------------------------------------


def test_presence_member_added_carries_user_info(pusher_client, browser, uid):
    channel = f"presence-members-{uid}"
    alice_info = {"name": "Alice", "tags": ["a", "ß"]}
    bob_info = {"name": "Bob", "n": 2}
    alice = browser(user_id=f"alice-{uid}", user_info=alice_info)
    bob = browser(user_id=f"bob-{uid}", user_info=bob_info)
    sub = alice.subscribe(channel)
    assert sub["me"] == {"id": f"alice-{uid}", "info": alice_info}
    assert sub["count"] == 1

    sub = bob.subscribe(channel)
    assert sub["count"] == 2
    assert {"id": f"alice-{uid}", "info": alice_info} in sub["members"]

    added = alice.wait_for("member_added", lambda r: r["channel"] == channel)
    assert added["id"] == f"bob-{uid}"
    assert added["info"] == bob_info

    bob.unsubscribe(channel)
    removed = alice.wait_for("member_removed", lambda r: r["channel"] == channel)
    assert removed["id"] == f"bob-{uid}"


# -- 4. webhooks ---------------------------------------------------------------------------------


def test_webhooks_validate(pusher_client_user_auth, soketi_user_auth, auth_server, browser, uid):
    channel = f"presence-hook-{uid}"
    user_id = f"hooked-{uid}"
    b = browser(soketi_user_auth, user_id=user_id, user_info={"x": 1})
    b.subscribe(channel)

    occupied_hook, occupied = auth_server.wait_for_webhook_event("channel_occupied", channel)
    added_hook, added = auth_server.wait_for_webhook_event("member_added", channel, user_id=user_id)
    client = pusher_client_user_auth

    for hook in (occupied_hook, added_hook):
        assert hook.key == soketi_user_auth.key
        assert hook.signature
        validated = client.validate_webhook(hook.key, hook.signature, hook.body)
        assert validated == json.loads(hook.body)
        assert isinstance(validated["time_ms"], int)
        # str bodies are accepted too
        assert client.validate_webhook(hook.key, hook.signature, hook.body.decode()) == validated
    assert occupied == {"name": "channel_occupied", "channel": channel}
    assert added == {"name": "member_added", "channel": channel, "user_id": user_id}

    body = added_hook.body
    tampered = body.replace(user_id.encode(), b"mallory" + user_id.encode()[7:])
    assert tampered != body
    assert client.validate_webhook(added_hook.key, added_hook.signature, tampered) is None
    assert client.validate_webhook("other-key", added_hook.signature, body) is None
    bad_sig = ("0" if added_hook.signature[0] != "0" else "1") + added_hook.signature[1:]
    assert client.validate_webhook(added_hook.key, bad_sig, body) is None

    b.unsubscribe(channel)
    vacated_hook, _ = auth_server.wait_for_webhook_event("channel_vacated", channel)
    assert client.validate_webhook(vacated_hook.key, vacated_hook.signature, vacated_hook.body)


# -- 5. errors -----------------------------------------------------------------------------------


def test_wrong_secret_gets_soketi_401(pusher_module, make_client, pusher_client, uid):
    bad = make_client(secret="wrong-secret")
    text = expect_soketi_error(pusher_module, lambda: bad.trigger(f"c-{uid}", "e", {"a": 1}), 401)
    assert "authentication" in text.lower()
    expect_soketi_error(pusher_module, lambda: bad.channels_info(), 401)
    expect_soketi_error(pusher_module, lambda: bad.channel_info(f"c-{uid}"), 401)
    expect_soketi_error(
        pusher_module,
        lambda: bad.trigger_batch([{"channel": f"c-{uid}", "name": "e", "data": "x"}]),
        401,
    )
    # control: the right secret works against the same server
    assert_ok(pusher_client.trigger(f"c-{uid}", "e", {"a": 1}))


def test_unknown_app_and_bad_request(pusher_module, make_client, pusher_client, browser, uid):
    other_app = make_client(app_id="654321")
    text = expect_soketi_error(pusher_module, lambda: other_app.trigger(f"c-{uid}", "e", "x"), 404)
    assert "654321" in text
    # soketi takes at most 10 events per batch; the library sends what it is given.
    b = browser()
    channel = f"too-many-{uid}"
    b.subscribe(channel)
    batch = [{"channel": channel, "name": f"e{i}", "data": str(i)} for i in range(11)]
    text = expect_soketi_error(pusher_module, lambda: pusher_client.trigger_batch(batch), 400)
    assert "10" in text
    barrier(pusher_client, [b], channel, uid)
    assert [e["event"] for e in b.events(channel)] == ["barrier"]


# -- 6. other transports and pusher_fast extensions ------------------------------------------------


@pytest.mark.deviation  # the official from_url keeps ":PORT" in the host and then uses port 80
def test_from_url_keeps_explicit_port(pusher_module, soketi, browser, uid):
    url = f"http://{soketi.key}:{soketi.secret}@127.0.0.1:{soketi.port}/apps/{soketi.app_id}"
    client = pusher_module.Pusher.from_url(url)
    b = browser()
    channel = f"from-url-{uid}"
    b.subscribe(channel)
    assert_ok(client.trigger(channel, "via-url", DATA))
    assert b.wait_for_event(channel, "via-url")["data"] == DATA


def test_aiohttp_backend(pusher_module, make_client, browser, uid):
    aio = importlib.import_module(pusher_module.__name__ + ".aiohttp")
    client = make_client(backend=aio.AsyncIOBackend)
    b = browser()
    channel = f"private-aio-{uid}"
    b.subscribe(channel)

    async def main() -> tuple[Any, Any, Any]:
        try:
            r1 = await client.trigger(channel, "aio", DATA)
            r2 = await client.trigger_batch([{"channel": channel, "name": "aio-b", "data": "x"}])
            r3 = await client.channel_info(channel, ["subscription_count"])
            return r1, r2, r3
        finally:
            backend = getattr(client, "http", None)
            if hasattr(backend, "aclose"):
                await backend.aclose()

    r1, r2, info = asyncio.run(asyncio.wait_for(main(), 20))
    assert_ok(r1)
    assert_ok(r2)
    assert info["subscription_count"] == 1
    assert b.wait_for_event(channel, "aio")["data"] == DATA
    assert b.wait_for_event(channel, "aio-b")["data"] == "x"


@pytest.mark.deviation  # pusher_fast extension: the bulk sender
def test_bulk_sender_accounts_for_every_event(make_client, pusher_client, browser, uid):
    b = browser()
    channels = [f"bulk-{uid}-a", f"private-bulk-{uid}-b"]
    for ch in channels:
        b.subscribe(ch)
    with pusher_client.bulk(concurrency=3) as sender:
        for i in range(23):
            sender.add(channels, "bulk", {"i": i})  # fanned out: 46 batch events
    report = sender.report
    assert report.ok, report
    assert (report.submitted, report.delivered, report.failed) == (46, 46, [])
    assert report.requests in (5, 6)  # 10 per request (a partial first one may go alone)

    barrier(pusher_client, [b], channels[0], uid)
    for ch in channels:
        got = sorted(e["data"]["i"] for e in b.events(ch, "bulk"))
        assert got == list(range(23)), ch

    # soketi's in-body 401 is a failure, not retried, and every event is accounted for.
    bad = make_client(secret="wrong-secret")
    with bad.bulk(retries=2, backoff_base=0.01) as sender:
        for i in range(12):
            sender.add(channels[0], "never", {"i": i})
    report = sender.report
    assert report.delivered == 0
    assert len(report.failed) == 12
    assert {f.status for f in report.failed} == {401}
    assert report.retries == 0
    assert sorted(json.loads(f.event["data"])["i"] for f in report.failed) == list(range(12))
    barrier(pusher_client, [b], channels[0], uid + "-2")
    assert b.events(channels[0], "never") == []


@pytest.mark.deviation  # pusher_fast extension: AsyncPusher and its bulk sender
@pytest.mark.parametrize("transport", ["asyncio", "aiohttp"])
def test_async_pusher_and_async_bulk(
    pusher_module, soketi, master_key_b64, browser, uid, transport
):
    aio = importlib.import_module(pusher_module.__name__ + ".aiohttp")
    options = {"backend": aio.AsyncIOBackend} if transport == "aiohttp" else {}
    b = browser()
    channel = f"private-encrypted-abulk-{transport}-{uid}"
    b.subscribe(channel)

    async def main() -> Any:
        async with aio.AsyncPusher(
            **soketi.client_kwargs(), encryption_master_key_base64=master_key_b64, **options
        ) as client:
            expected = aio.AsyncIOBackend if transport == "aiohttp" else aio.AsyncHTTPBackend
            assert type(client.http) is expected
            assert_ok(await client.trigger(channel, "single", DATA))
            async with client.bulk(concurrency=2) as sender:
                for i in range(15):
                    await sender.add(channel, "many", {"i": i})
            return sender.report

    report = asyncio.run(asyncio.wait_for(main(), 20))
    assert (report.submitted, report.delivered, report.failed) == (15, 15, [])
    assert b.wait_for_event(channel, "single")["data"] == DATA
    b.wait_for("event", lambda r: r.get("event") == "many" and r["data"] == {"i": 14})
    deadline = time.monotonic() + 5
    while len(b.events(channel, "many")) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(e["data"]["i"] for e in b.events(channel, "many")) == list(range(15))

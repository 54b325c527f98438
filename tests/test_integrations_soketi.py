"""The integrations end to end: a real app serving the auth and webhook endpoints, soketi,
and pusher-js under Node.

- The ASGI app (``pusher_fast.integrations.asgi``) served by uvicorn on 127.0.0.1, or the
  Flask app (``pusher_fast.integrations.flask``) served by the standard library's wsgiref;
- soketi configured to send its ``channel_occupied``, ``member_added`` and ``client_event``
  webhooks to the app (client events enabled);
- pusher-js authorising a private, a presence and a private-encrypted channel and signing
  in through the app's endpoints (its ``channelAuthorization`` / ``userAuthentication``
  endpoints), with the presence member and the user taken from the params pusher-js posts;
- events triggered with pusher_fast reach pusher-js (decrypted on the encrypted channel), a
  refused channel fails to subscribe with the app's 403, and the webhooks arrive at
  ``on_webhook`` verified and typed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import pusher_fast
from pusher_fast import Webhook, WebhookEvent
from tests.peers.app_server import ServedApp, serve_asgi, serve_wsgi
from tests.peers.browser import BrowserClient, SubscriptionError
from tests.peers.soketi import start_soketi

# deviation: the endpoints are a pusher_fast extension, tested on pusher_fast whatever
# PEER_TEST_MODULE says.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.deviation,
    pytest.mark.timeout(120),
]

WEBHOOK_EVENTS = ["channel_occupied", "member_added", "client_event"]


class Hooks:
    """What ``on_webhook`` received, with a wait."""

    def __init__(self) -> None:
        self.received: list[Webhook] = []
        self._cond = threading.Condition()

    def on_webhook(self, webhook: Webhook) -> None:
        with self._cond:
            self.received.append(webhook)
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[WebhookEvent], bool], timeout: float = 10.0
    ) -> WebhookEvent:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for hook in self.received:
                    for event in hook.events:
                        if predicate(event):
                            return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching webhook event; got {self.received}")
                self._cond.wait(remaining)


def presence_member(fields: dict[str, str], socket_id: str) -> dict[str, Any]:
    member: dict[str, Any] = {"user_id": fields.get("user_id") or f"anon-{socket_id}"}
    if "user_info" in fields:
        member["user_info"] = json.loads(fields["user_info"])
    return member


def decide(fields: dict[str, str], channel: str, socket_id: str) -> Any:
    if "denied" in channel:
        return False
    if channel.startswith("presence-"):
        return presence_member(fields, socket_id)
    return True


def asgi_app(client: Any, hooks: Hooks) -> ServedApp:
    from pusher_fast.integrations.asgi import pusher_app

    async def authorize(request: Any, channel: str, socket_id: str) -> Any:
        fields = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        return decide(fields, channel, socket_id)

    async def user_async(request: Any, socket_id: str) -> Any:
        fields = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        return {"id": fields["user_id"], "user_info": json.loads(fields["user_info"])}

    app = pusher_app(client, authorize=authorize, user=user_async, on_webhook=hooks.on_webhook)
    return serve_asgi(app)


def flask_app(client: Any, hooks: Hooks) -> ServedApp:
    from flask import Flask

    from pusher_fast.integrations.flask import pusher_blueprint

    app = Flask("pusher_fast_e2e")
    app.register_blueprint(
        pusher_blueprint(
            client,
            authorize=lambda request, channel, socket_id: decide(
                request.form.to_dict(), channel, socket_id
            ),
            user=lambda request, socket_id: {
                "id": request.form["user_id"],
                "user_info": json.loads(request.form["user_info"]),
            },
            on_webhook=hooks.on_webhook,
        )
    )
    return serve_wsgi(app)


APPS = {"asgi-uvicorn": asgi_app, "flask-wsgiref": flask_app}


@pytest.fixture(params=list(APPS))
def stack(request: Any, master_key_b64: str) -> Iterator[tuple[Any, Any, ServedApp, Hooks]]:
    hooks = Hooks()
    # The app needs the client (credentials of the soketi app), soketi needs the app's URL:
    # fix the credentials first, serve the app, then start soketi pointing at it.
    app_config = {"id": "123456", "key": "e2e-key", "secret": "e2e-secret"}
    client = pusher_fast.Pusher(
        app_id=app_config["id"],
        key=app_config["key"],
        secret=app_config["secret"],
        host="127.0.0.1",
        port=1,  # the app's client only signs (no request); `api` below talks to soketi
        ssl=False,
        encryption_master_key_base64=master_key_b64,
    )
    served = APPS[request.param](client, hooks)
    try:
        soketi = start_soketi(
            [
                {
                    **app_config,
                    "enableClientMessages": True,
                    # soketi answers pusher:signin only with user authentication on (then a
                    # connection that does not sign in within the timeout is dropped).
                    "enableUserAuthentication": True,
                    "webhooks": [{"url": served.webhook_url, "event_types": WEBHOOK_EVENTS}],
                }
            ],
            user_authentication_timeout_ms=30000,
        )
        try:
            api = pusher_fast.Pusher(
                **soketi.client_kwargs(), encryption_master_key_base64=master_key_b64
            )
            yield soketi, api, served, hooks
        finally:
            soketi.stop()
    finally:
        served.stop()


def test_pusher_js_through_the_apps_endpoints_and_webhooks_back(stack, uid):
    soketi, api, served, hooks = stack
    user_id = f"ann-{uid}"
    private, presence = f"private-{uid}", f"presence-{uid}"
    encrypted, denied = f"private-encrypted-{uid}", f"private-denied-{uid}"

    with BrowserClient(soketi, served, user_id=user_id, user_info={"name": "Ann"}) as browser:
        socket_id = browser.socket_id
        browser.subscribe(private)
        sub = browser.subscribe(presence)
        assert sub["me"]["id"] == user_id and sub["me"]["info"] == {"name": "Ann"}
        browser.subscribe(encrypted)
        signed_in = browser.signin()
        assert signed_in["user_data"] == {"id": user_id, "user_info": {"name": "Ann"}}
        with pytest.raises(SubscriptionError) as refused:
            browser.subscribe(denied)
        assert refused.value.report["status"] == 403

        for channel in (private, presence, encrypted):
            assert api.trigger(channel, "news", {"on": channel, "text": "Zoë"}) == {"ok": True}
            got = browser.wait_for_event(channel, "news", timeout=10)
            assert got["data"] == {"on": channel, "text": "Zoë"}  # decrypted by pusher-js
        api.send_to_user(user_id, "hello", {"to": user_id})
        assert browser.wait_for("user_event", lambda r: r["event"] == "hello")["data"] == {
            "to": user_id
        }

        browser.send(
            {"cmd": "trigger", "channel": presence, "event": "client-wave", "data": {"n": 1}}
        )
        client_event = hooks.wait_for(lambda e: e.name == "client_event" and e.channel == presence)

    assert client_event == WebhookEvent(
        name="client_event",
        channel=presence,
        event="client-wave",
        data='{"n":1}',
        socket_id=socket_id,
        user_id=user_id,
    )
    for channel in (private, presence, encrypted):
        occupied = hooks.wait_for(
            lambda e, c=channel: e.name == "channel_occupied" and e.channel == c
        )
        assert occupied == WebhookEvent(name="channel_occupied", channel=channel)
    added = hooks.wait_for(lambda e: e.name == "member_added" and e.channel == presence)
    assert added == WebhookEvent(name="member_added", channel=presence, user_id=user_id)
    assert all(isinstance(h, Webhook) and isinstance(h.time_ms, int) for h in hooks.received)
    assert not any(e.channel == denied for h in hooks.received for e in h.events)


def test_forged_webhooks_and_hostile_auth_bodies_over_real_http(stack):
    import urllib.request

    _, api, served, hooks = stack
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with opener.open(req, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    body = json.dumps({"time_ms": int(time.time() * 1000), "events": []}).encode()
    forged = {"X-Pusher-Key": api.key, "X-Pusher-Signature": "0" * 64}
    assert post(served.webhook_url, body, forged) == 401
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (
        post(served.channel_auth_url, b"socket_id=1.1%3Aprivate-x&channel_name=private-a", form)
        == 400
    )
    assert post(served.channel_auth_url, b"x" * 100_000, form) == 400
    assert post(served.user_auth_url, b"socket_id=1.1&socket_id=2.2", form) == 400
    assert hooks.received == []

"""The local Pusher API and soketi, side by side: the same requests, the same verdicts.

One table of valid and invalid requests is sent to ``pusher_fast.testing.PusherServer`` and to
a real soketi (tests/peers/soketi.py). soketi reports errors in a JSON body ``{"error", "code"}``
(its HTTP status is not always meaningful), so verdicts are compared on that code when present.
Where soketi is more lenient than the Pusher service (it does not check ``auth_timestamp``, for
instance) our server follows the service, and the row says why the two differ.

Also here: the official Node ``pusher`` package (peers/node_modules/pusher) triggering against
our server, a client we did not write in a language we do not use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote, urlencode

import orjson
import pytest
import urllib3

from pusher_fast.testing import PusherServer
from tests.peers import NODE_MODULES, node_executable, peers_missing_reason
from tests.peers.soketi import DEFAULT_APP, start_soketi

PEERS_MISSING = peers_missing_reason()
NODE_PUSHER = NODE_MODULES / "pusher"


@dataclass(frozen=True)
class Peer:
    """Where to send and with which credentials: our server or soketi."""

    name: str
    host: str
    port: int
    app_id: str
    key: str
    secret: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


# -- request construction (this file's own signer) -----------------------------------------------


def _sign(secret: str, method: str, path: str, params: dict[str, str]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return hmac.new(
        secret.encode(), f"{method}\n{path}\n{query}".encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class Req:
    method: str
    resource: str  # after /apps/{id}/
    body: Optional[bytes] = None
    extra: tuple[tuple[str, str], ...] = ()
    key: Optional[str] = None  # default: the peer's key
    secret: Optional[str] = None  # default: the peer's secret
    app_id: Optional[str] = None  # default: the peer's app id
    age: float = 0.0  # seconds to subtract from the timestamp
    body_md5: Optional[str] = "auto"
    version: str = "1.0"
    after_signing: tuple[tuple[str, str], ...] = ()

    def target(self, peer: Peer) -> tuple[str, bytes]:
        body = self.body or b""
        path = f"/apps/{self.app_id or peer.app_id}/{self.resource}"
        params = {
            "auth_key": self.key or peer.key,
            "auth_timestamp": str(int(time.time() - self.age)),
            "auth_version": self.version,
        }
        if self.body_md5 == "auto":
            if body:
                params["body_md5"] = hashlib.md5(body).hexdigest()
        elif self.body_md5 is not None:
            params["body_md5"] = self.body_md5
        params.update(self.extra)
        params["auth_signature"] = _sign(self.secret or peer.secret, self.method, path, params)
        params.update(self.after_signing)
        return path + "?" + urlencode(params, quote_via=quote, safe=",-"), body


def trigger(doc: Any, **kw: Any) -> Req:
    return Req("POST", "events", doc if isinstance(doc, bytes) else orjson.dumps(doc), **kw)


def batch(events: list[dict[str, Any]], **kw: Any) -> Req:
    return Req("POST", "batch_events", orjson.dumps({"batch": events}), **kw)


def ev(channel: str = "orders", name: str = "created", data: str = '{"id":1}') -> dict[str, Any]:
    return {"name": name, "channels": [channel], "data": data}


@dataclass(frozen=True)
class Row:
    id: str
    request: Req
    ours: int  # the status our server answers (as the service does)
    soketi: int | tuple[int, ...]  # the code soketi answers (one of them, when it varies)
    differs: str = ""  # why soketi's verdict differs from the service's ("" = they agree)

    @property
    def soketi_codes(self) -> tuple[int, ...]:
        return self.soketi if isinstance(self.soketi, tuple) else (self.soketi,)


TABLE: list[Row] = [
    # valid requests: everyone accepts
    Row("valid trigger", trigger(ev()), 200, 200),
    Row(
        "valid trigger, channel field",
        trigger({"name": "e", "channel": "a", "data": "1"}),
        200,
        200,
    ),
    Row(
        "valid trigger, 100 channels",
        trigger({**ev(), "channels": [f"c{i}" for i in range(100)]}),
        200,
        200,
    ),
    Row("valid trigger, 200-char channel", trigger(ev("c" * 200)), 200, 200),
    Row("valid trigger, 10 KB data", trigger(ev(data="x" * 10240)), 200, 200),
    Row("valid trigger with socket_id", trigger({**ev(), "socket_id": "123.456"}), 200, 200),
    Row(
        "valid batch of 10",
        batch([{"channel": f"c{i}", "name": "e", "data": "1"} for i in range(10)]),
        200,
        200,
    ),
    Row("valid GET channels", Req("GET", "channels"), 200, 200),
    Row(
        "valid GET channels by prefix",
        Req("GET", "channels", extra=(("filter_by_prefix", "presence-"),)),
        200,
        200,
    ),
    Row("valid GET channel", Req("GET", "channels/news"), 200, 200),
    Row("valid GET presence users", Req("GET", "channels/presence-room/users"), 200, 200),
    Row(
        "valid terminate connections",
        Req("POST", "users/u1/terminate_connections", b"{}"),
        200,
        200,
    ),
    # authentication
    Row("bad signature (wrong secret)", trigger(ev(), secret="not-the-secret"), 401, 401),
    Row(
        "parameter added after signing",
        Req("GET", "channels", after_signing=(("filter_by_prefix", "x"),)),
        401,
        401,
    ),
    Row("wrong body_md5", trigger(ev(), body_md5=hashlib.md5(b"other").hexdigest()), 401, 401),
    Row("missing body_md5", trigger(ev(), body_md5=None), 401, 401),
    Row(
        "unknown app key, unknown secret",
        trigger(ev(), key="nobody", secret="nobody-secret"),
        401,
        401,
    ),
    Row(
        "unknown app key, signed with the app's secret",
        trigger(ev(), key="nobody"),
        401,
        200,
        "soketi signs with whatever auth_key the request names, never checking it is the app's key",
    ),
    Row(
        "stale timestamp (1 hour old)",
        trigger(ev(), age=3600),
        401,
        200,
        "soketi does not check auth_timestamp; the service rejects timestamps over 600 s off",
    ),
    Row(
        "auth_version 2.0",
        trigger(ev(), version="2.0"),
        401,
        200,
        "soketi signs with the given auth_version without checking it is 1.0",
    ),
    Row("unknown app id", trigger(ev(), app_id="999999"), 404, 404),
    # limits and validation
    Row(
        "201-char channel",
        trigger(ev("c" * 201)),
        400,
        200,
        "soketi's HTTP API does not check channel names (it does for WebSocket subscriptions)",
    ),
    Row(
        "invalid channel characters",
        trigger(ev("has space")),
        400,
        200,
        "soketi's HTTP API does not check channel names",
    ),
    Row("101 channels", trigger({**ev(), "channels": [f"c{i}" for i in range(101)]}), 400, 400),
    Row("201-char event name", trigger(ev(name="n" * 201)), 400, 400),
    Row("11 KB data", trigger(ev(data="x" * 11264)), 413, 413),
    Row(
        "11-event batch",
        batch([{"channel": f"c{i}", "name": "e", "data": "1"} for i in range(11)]),
        400,
        400,
    ),
    Row(
        "batch with an 11 KB event",
        batch([{"channel": "a", "name": "e", "data": "x" * 11264}]),
        413,
        413,
    ),
    Row("missing data", trigger({"name": "e", "channels": ["a"]}), 400, 400),
    Row("missing channels", trigger({"name": "e", "data": "1"}), 400, 400),
    Row(
        "invalid JSON body",
        trigger(b"{not json"),
        400,
        (400, 401),
        "soketi answers 400, or 401 when the body arrives in the same read as the headers: "
        "its body reader then hashes '{}' instead of the raw body for body_md5",
    ),
    Row(
        "encrypted channel with another channel",
        trigger({**ev(), "channels": ["private-encrypted-a", "b"]}),
        400,
        200,
        "soketi does not check that an encrypted channel is triggered alone",
    ),
    Row("users of a non-presence channel", Req("GET", "channels/news/users"), 400, 400),
]


# -- peers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[urllib3.PoolManager]:
    pool = urllib3.PoolManager(retries=False, timeout=15)
    yield pool
    pool.clear()


@pytest.fixture(scope="module")
def ours() -> Iterator[Peer]:
    with PusherServer(DEFAULT_APP["id"], DEFAULT_APP["key"], DEFAULT_APP["secret"]) as server:
        yield Peer("ours", server.host, server.port, server.app_id, server.key, server.secret)


@pytest.fixture(scope="module")
def soketi() -> Iterator[Peer]:
    if PEERS_MISSING:
        pytest.skip(PEERS_MISSING)
    # The service's 10 KB data limit (soketi's default is 100 KB).
    app = {**DEFAULT_APP, "maxEventPayloadInKb": 10}
    with start_soketi([app]) as server:
        yield Peer("soketi", server.host, server.port, server.app_id, server.key, server.secret)


def verdict(http: urllib3.PoolManager, peer: Peer, req: Req) -> tuple[int, bytes]:
    """The status a peer gives a request: the body's ``code`` when it carries one."""
    target, body = req.target(peer)
    headers = {"Content-Type": "application/json"} if body else {}
    r = http.request(req.method, peer.url + target, body=body or None, headers=headers)
    code = r.status
    try:
        doc = json.loads(r.data)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("code"), int):
        code = doc["code"]
    return code, r.data


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_our_server_answers_as_the_service(http: urllib3.PoolManager, ours: Peer, row: Row) -> None:
    code, body = verdict(http, ours, row.request)
    assert code == row.ours, body[:300]


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_soketi_agrees_or_the_difference_is_documented(
    http: urllib3.PoolManager, soketi: Peer, row: Row
) -> None:
    code, body = verdict(http, soketi, row.request)
    assert code in row.soketi_codes, body[:300]
    if not row.differs:
        assert row.soketi_codes == (row.ours,), f"{row.id}: undocumented difference"
    else:
        assert row.soketi_codes != (row.ours,), f"{row.id}: documented difference is gone"


def test_table_covers_accept_and_reject() -> None:
    agree = [r for r in TABLE if not r.differs]
    assert {r.ours for r in agree} >= {200, 400, 401, 404, 413}
    assert len({r.id for r in TABLE}) == len(TABLE)


def test_the_official_python_client_against_both(ours: Peer, soketi: Peer) -> None:
    import pusher

    for peer in (ours, soketi):
        client = pusher.Pusher(
            app_id=peer.app_id,
            key=peer.key,
            secret=peer.secret,
            host=peer.host,
            port=peer.port,
            ssl=False,
        )
        client.trigger(["a", "b"], "created", {"id": 1})
        client.trigger_batch([{"channel": "a", "name": "e", "data": {"k": 1}}])
        assert "channels" in client.channels_info()
        assert client.channel_info("news")["occupied"] is False
        assert client.users_info("presence-room") == {"users": []}


# -- the official Node client --------------------------------------------------------------------

NODE_SCRIPT = r"""
const Pusher = require(process.env.NODE_PUSHER);
const p = new Pusher({
  appId: process.env.APP_ID, key: process.env.KEY, secret: process.env.SECRET,
  host: "127.0.0.1", port: process.env.PORT, useTLS: false,
});
(async () => {
  const out = {};
  const body = async (r) => r.json();
  out.trigger = await body(await p.trigger(["orders", "presence-room"], "created", {id: 1},
                                          {info: "subscription_count"}));
  out.batch = await body(await p.triggerBatch([
    {channel: "orders", name: "updated", data: {id: 2}},
    {channel: "presence-room", name: "joined", data: "raw", info: "user_count"},
  ]));
  out.send_to_user = (await p.sendToUser("u-9", "notice", {hi: true})).status;
  out.channels = await body(await p.get({
    path: "/channels", params: {filter_by_prefix: "presence-", info: "user_count"},
  }));
  out.channel = await body(await p.get({path: "/channels/presence-room",
                                        params: {info: "user_count,subscription_count"}}));
  out.users = await body(await p.get({path: "/channels/presence-room/users"}));
  out.terminate = await body(await p.terminateUserConnections("u1"));
  try {
    await new Pusher({appId: process.env.APP_ID, key: process.env.KEY, secret: "wrong",
                      host: "127.0.0.1", port: process.env.PORT, useTLS: false})
      .trigger("orders", "x", {});
    out.bad_secret = "accepted";
  } catch (e) { out.bad_secret = e.status; }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


@pytest.mark.skipif(
    node_executable() is None or not NODE_PUSHER.exists(),
    reason="node or peers/node_modules/pusher is missing (cd peers && npm ci)",
)
def test_the_official_node_client_triggers_against_our_server() -> None:
    with PusherServer(DEFAULT_APP["id"], DEFAULT_APP["key"], DEFAULT_APP["secret"]) as server:
        server.add_member("presence-room", "u1", {"name": "One"})
        server.add_member("presence-room", "u2")
        server.add_subscriber("orders", 3)
        node = node_executable()
        assert node is not None
        env = {
            "NODE_PUSHER": str(NODE_PUSHER),
            "APP_ID": server.app_id,
            "KEY": server.key,
            "SECRET": server.secret,
            "PORT": str(server.port),
            "PATH": "/usr/bin:/bin",
        }
        result = subprocess.run(
            [node, "-e", NODE_SCRIPT], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["trigger"] == {
            "channels": {
                "orders": {"subscription_count": 3},
                "presence-room": {"subscription_count": 2},
            }
        }
        assert out["batch"] == {"batch": [{}, {"user_count": 2}]}
        assert out["send_to_user"] == 200
        assert out["channels"] == {"channels": {"presence-room": {"user_count": 2}}}
        assert out["channel"] == {"occupied": True, "user_count": 2, "subscription_count": 2}
        assert out["users"] == {"users": [{"id": "u1"}, {"id": "u2"}]}
        assert out["terminate"] == {}
        assert out["bad_secret"] == 401
        assert [(e.channel, e.name) for e in server.events] == [
            ("orders", "created"),
            ("presence-room", "created"),
            ("orders", "updated"),
            ("presence-room", "joined"),
            ("#server-to-user-u-9", "notice"),
        ]
        assert server.events[0].json() == {"id": 1}
        assert server.events[3].data == "raw"
        assert server.terminated_users == ["u1"]
        assert {r.status for r in server.requests} == {200, 401}

"""The Flask, Django and ASGI (Starlette) endpoints, each through its framework's own test
client (Flask ``test_client``, Django ``Client`` with CSRF checks on, Starlette
``TestClient``), on one table of requests: every path, every refusal, form and JSON
bodies, and hostile bodies (huge, binary, repeated keys, wrong types, a forged
``1.1:private-x`` socket id), which are answered 400/403, never 500, and never reach a
callback.  The test clients re-raise server exceptions, so a 500 would fail loudly.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
import types
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pusher_fast.integrations import MAX_AUTH_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES
from tests.helpers import KEY, MASTER_KEY_B64, SECRET, hmac_hex, make_client

flask = pytest.importorskip("flask")
django = pytest.importorskip("django")
starlette = pytest.importorskip("starlette")
pytest.importorskip("httpx")  # Starlette's TestClient

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="pusher-fast-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="tests._pusher_urls_unset",
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

from django.test import Client as DjangoClient  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from pusher_fast.integrations.asgi import pusher_app, pusher_routes  # noqa: E402
from pusher_fast.integrations.django import pusher_urlpatterns  # noqa: E402
from pusher_fast.integrations.flask import pusher_blueprint  # noqa: E402

FRAMEWORKS = ["flask", "django", "asgi"]
FORM = "application/x-www-form-urlencoded"
NOW = 1_700_000_000.0
NOW_MS = int(NOW * 1000)
SOCKET_ID = "1234.5678"


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


class Harness:
    """One framework app around the endpoints, driven by that framework's test client."""

    def __init__(self, framework: str, client: Any, **callbacks: Any) -> None:
        self.framework = framework
        if framework == "flask":
            app = flask.Flask("pusher_fast_tests")
            app.testing = True  # exceptions propagate to the test
            app.register_blueprint(pusher_blueprint(client, **callbacks))
            self._flask = app.test_client()
        elif framework == "django":
            name = f"tests._pusher_urls_{id(self)}"
            module = types.ModuleType(name)
            module.urlpatterns = pusher_urlpatterns(client, **callbacks)  # type: ignore[attr-defined]
            sys.modules[name] = module
            self._urlconf = name
            self._django = DjangoClient(enforce_csrf_checks=True)
        else:
            self._asgi = TestClient(Starlette(routes=pusher_routes(client, **callbacks)))

    def post(
        self, path: str, body: bytes | Any, content_type: str = FORM, **headers: str
    ) -> tuple[int, Any]:
        if self.framework == "flask":
            r = self._flask.post(path, data=body, content_type=content_type, headers=headers)
            return r.status_code, r.get_json(silent=True)
        if self.framework == "django":
            extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
            with override_settings(ROOT_URLCONF=self._urlconf):
                r = self._django.generic("POST", path, body, content_type=content_type, **extra)
            is_json = r.get("Content-Type") == "application/json"
            return r.status_code, json.loads(r.content) if is_json else None
        r = self._asgi.post(path, content=body, headers={"content-type": content_type, **headers})
        is_json = r.headers.get("content-type") == "application/json"
        return r.status_code, r.json() if is_json else None

    def get(self, path: str) -> int:
        if self.framework == "flask":
            return int(self._flask.get(path).status_code)
        if self.framework == "django":
            with override_settings(ROOT_URLCONF=self._urlconf):
                return int(self._django.get(path).status_code)
        return int(self._asgi.get(path).status_code)


class Recorder:
    """Callbacks that record what they were given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.webhooks: list[Any] = []

    def authorize(self, request: Any, channel: str, socket_id: str) -> Any:
        self.calls.append(("authorize", type(request).__name__, channel, socket_id))
        if "denied" in channel:
            return False
        if channel.startswith("presence-"):
            return {"user_id": f"u-{socket_id}", "user_info": {"name": "Zoë"}}
        return True

    def user(self, request: Any, socket_id: str) -> Any:
        self.calls.append(("user", type(request).__name__, socket_id))
        if socket_id == "9.9":
            return None
        return {"id": "ann", "user_info": {"team": "a"}}

    def on_webhook(self, webhook: Any) -> None:
        self.webhooks.append(webhook)

    def callbacks(self) -> dict[str, Any]:
        return {"authorize": self.authorize, "user": self.user, "on_webhook": self.on_webhook}


REQUEST_TYPES = {"flask": "Request", "django": "WSGIRequest", "asgi": "Request"}


@pytest.fixture
def client() -> Any:
    return make_client(encryption_master_key_base64=MASTER_KEY_B64)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=FRAMEWORKS)
def app(request: Any, client: Any, recorder: Recorder) -> Harness:
    return Harness(request.param, client, **recorder.callbacks())


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


# -- channel authorization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel", ["private-orders", "presence-room", "private-encrypted-x", "private-a@b;c"]
)
def test_channel_auth_answers_what_authenticate_gives(app, client, recorder, channel):
    status, answer = app.post("/pusher/auth", form(socket_id=SOCKET_ID, channel_name=channel))
    assert status == 200
    custom = recorder.authorize(None, channel, SOCKET_ID)
    assert answer == client.authenticate(channel, SOCKET_ID, None if custom is True else custom)
    assert recorder.calls[0] == ("authorize", REQUEST_TYPES[app.framework], channel, SOCKET_ID)
    if channel == "private-orders":
        assert answer == {"auth": f"{KEY}:{hmac_hex(SECRET, f'{SOCKET_ID}:{channel}')}"}


def test_channel_auth_takes_a_json_body(app, client):
    body = json.dumps({"socket_id": SOCKET_ID, "channel_name": "private-a"}).encode()
    status, answer = app.post("/pusher/auth", body, "application/json")
    assert (status, answer) == (200, client.authenticate("private-a", SOCKET_ID))


def test_pusher_js_params_are_fine(app, client):
    body = form(socket_id=SOCKET_ID, channel_name="private-a", user_id="x", user_info='{"a":1}')
    assert app.post("/pusher/auth", body) == (200, client.authenticate("private-a", SOCKET_ID))


def test_a_refused_channel_is_403(app, recorder):
    status, answer = app.post(
        "/pusher/auth", form(socket_id=SOCKET_ID, channel_name="private-denied")
    )
    assert (status, answer) == (403, {"error": "forbidden"})
    assert len(recorder.calls) == 1


HUGE = form(socket_id=SOCKET_ID, channel_name="private-a", pad="x" * MAX_AUTH_BODY_BYTES)
HOSTILE_AUTH_BODIES = {
    "empty": b"",
    "huge": HUGE,
    "binary": bytes(range(256)) * 4,
    "not utf-8": b"socket_id=1.1&channel_name=private-\xff\xfe",
    "bad percent-escape": b"socket_id=1.1&channel_name=private-%ff",
    "repeated socket_id": b"socket_id=1.1&socket_id=2.2&channel_name=private-a",
    "repeated channel_name": b"socket_id=1.1&channel_name=private-a&channel_name=private-b",
    "escaped repeat": b"socket_id=1.1&channel_name=private-a&socket%5Fid=2.2",
    "forged socket id": form(socket_id="1.1:private-other", channel_name="private-a"),
    "socket id with newline": form(socket_id="1.1\n", channel_name="private-a"),
    "arabic digits": form(socket_id="\u0661.\u0661", channel_name="private-a"),
    "missing channel": form(socket_id="1.1"),
    "missing socket id": form(channel_name="private-a"),
    "bad channel": form(socket_id="1.1", channel_name="private-a:b"),
    "server-to-user channel": form(socket_id="1.1", channel_name="#server-to-user-ann"),
    "long channel": form(socket_id="1.1", channel_name="private-" + "a" * 200),
    "json wrong types": b'{"socket_id": 1.1, "channel_name": ["private-a"]}',
    "json null": b'{"socket_id": null, "channel_name": "private-a"}',
    "json broken": b'{"socket_id": "1.1", ',
    "json array": b'[{"socket_id": "1.1", "channel_name": "private-a"}]',
    "field without value": b"socket_id=1.1&channel_name",
}


@pytest.mark.parametrize("name", list(HOSTILE_AUTH_BODIES))
def test_hostile_channel_auth_bodies_are_400_and_reach_no_callback(app, recorder, name):
    status, answer = app.post("/pusher/auth", HOSTILE_AUTH_BODIES[name])
    assert status == 400, answer
    assert set(answer) == {"error"} and 0 < len(answer["error"]) <= 200
    assert SECRET not in answer["error"]
    assert recorder.calls == []


@pytest.mark.parametrize(
    "name", ["empty", "huge", "binary", "repeated socket_id", "forged socket id"]
)
def test_hostile_user_auth_bodies_are_400(app, recorder, name):
    status, answer = app.post("/pusher/user-auth", HOSTILE_AUTH_BODIES[name])
    assert status == 400, answer
    assert recorder.calls == []


def test_get_is_not_allowed(app, recorder):
    for path in ("/pusher/auth", "/pusher/user-auth", "/pusher/webhook"):
        assert app.get(path) == 405
    assert recorder.calls == []


# -- user authentication ------------------------------------------------------------------------


def test_user_auth_answers_what_authenticate_user_gives(app, client, recorder):
    status, answer = app.post("/pusher/user-auth", form(socket_id=SOCKET_ID))
    assert status == 200
    assert answer == client.authenticate_user(SOCKET_ID, recorder.user(None, SOCKET_ID))
    assert recorder.calls[0] == ("user", REQUEST_TYPES[app.framework], SOCKET_ID)


def test_user_auth_refused_is_403(app):
    assert app.post("/pusher/user-auth", form(socket_id="9.9")) == (403, {"error": "forbidden"})


# -- webhooks -----------------------------------------------------------------------------------


def signed_webhook(events: list[dict[str, Any]], key: str = KEY, secret: str = SECRET,
                   time_ms: int = NOW_MS) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    body = json.dumps({"time_ms": time_ms, "events": events}).encode()
    return body, {"X-Pusher-Key": key, "X-Pusher-Signature": hmac_hex(secret, body)}


OCCUPIED = [{"name": "channel_occupied", "channel": "presence-room"}]


@pytest.mark.usefixtures("frozen_clock")
def test_a_valid_webhook_reaches_on_webhook_typed(app, recorder):
    events = [*OCCUPIED, {"name": "member_added", "channel": "presence-room", "user_id": "ann"}]
    body, headers = signed_webhook(events)
    assert app.post("/pusher/webhook", body, "application/json", **headers) == (200, {})
    (hook,) = recorder.webhooks
    assert hook.time_ms == NOW_MS
    assert [(e.name, e.channel, e.user_id) for e in hook.events] == [
        ("channel_occupied", "presence-room", None),
        ("member_added", "presence-room", "ann"),
    ]


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no headers", 401, "missing_header"),
        ("unknown key", 401, "unknown_key"),
        ("bad signature", 401, "bad_signature"),
        ("tampered", 401, "bad_signature"),
        ("stale", 401, "stale"),
        ("not json", 400, "not_json"),
        ("bad shape", 400, "bad_shape"),
        ("huge", 400, None),
    ],
)
def test_refused_webhooks(app, recorder, case, status, reason):
    body, headers = signed_webhook(OCCUPIED)
    if case == "no headers":
        headers = {}
    elif case == "unknown key":
        headers["X-Pusher-Key"] = "someone-else"
    elif case == "bad signature":
        headers["X-Pusher-Signature"] = "0" * 64
    elif case == "tampered":
        body = body.replace(b"presence-room", b"presence-roam")
    elif case == "stale":
        body, headers = signed_webhook(OCCUPIED, time_ms=NOW_MS - 300_001)
    elif case == "not json":
        body = b"\x00\xff not json"
        headers["X-Pusher-Signature"] = hmac_hex(SECRET, body)
    elif case == "bad shape":
        body = json.dumps({"time_ms": NOW_MS, "events": [{"name": 1}]}).encode()
        headers["X-Pusher-Signature"] = hmac_hex(SECRET, body)
    else:
        body = b" " * (MAX_WEBHOOK_BODY_BYTES + 1)
    got_status, answer = app.post("/pusher/webhook", body, "application/json", **headers)
    assert got_status == status
    if reason is not None:
        assert answer == {"error": reason}
    assert recorder.webhooks == []


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_webhooks_signed_with_rotated_credentials(framework, client, recorder):
    app = Harness(framework, client, on_webhook=recorder.on_webhook,
                  extra_tokens=[{"key": "old-key", "secret": "old-secret"}])  # fmt: skip
    body, headers = signed_webhook(OCCUPIED, key="old-key", secret="old-secret")
    assert app.post("/pusher/webhook", body, "application/json", **headers) == (200, {})
    assert len(recorder.webhooks) == 1
    body, headers = signed_webhook(OCCUPIED, key="old-key", secret="other")
    assert app.post("/pusher/webhook", body, "application/json", **headers)[0] == 401


# -- configuration and application bugs ----------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_only_the_endpoints_given_are_served(framework, client, recorder):
    app = Harness(framework, client, user=recorder.user, user_auth_path="/me/signin")
    assert app.post("/me/signin", form(socket_id=SOCKET_ID))[0] == 200
    assert app.post("/pusher/auth", form(socket_id=SOCKET_ID, channel_name="private-a"))[0] == 404
    assert app.post("/pusher/webhook", b"{}")[0] == 404


@pytest.mark.parametrize("build", [pusher_blueprint, pusher_urlpatterns, pusher_routes])
def test_misconfiguration_is_refused_when_building(build, client):
    with pytest.raises(ValueError, match="at least one"):
        build(client)
    with pytest.raises(TypeError, match="callable"):
        build(client, authorize="yes")
    with pytest.raises(ValueError, match="extra_tokens"):
        build(client, on_webhook=print, extra_tokens=[{"key": "k"}])


@pytest.mark.parametrize("build", [pusher_blueprint, pusher_urlpatterns])
def test_synchronous_frameworks_refuse_async_callbacks(build, client):
    async def authorize(request, channel, socket_id):
        return True

    class AsyncCallable:
        async def __call__(self, webhook):
            return None

    with pytest.raises(TypeError, match="authorize is an async function"):
        build(client, authorize=authorize)
    with pytest.raises(TypeError, match="on_webhook is an async function"):
        build(client, on_webhook=AsyncCallable())


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("channel", "decision", "error"),
    [
        ("presence-room", True, "custom_data"),
        ("private-a", "yes", "should return True, False"),
        ("presence-room", {"name": "no user_id"}, "user_id"),
    ],
)
def test_a_callback_bug_propagates_to_the_framework(framework, client, channel, decision, error):
    app = Harness(framework, client, authorize=lambda request, channel, socket_id: decision)
    with pytest.raises((TypeError, ValueError), match=error):
        app.post("/pusher/auth", form(socket_id=SOCKET_ID, channel_name=channel))


# -- each framework's own ways -------------------------------------------------------------------


def _presence_from_form(fields: Any, socket_id: str) -> dict[str, Any]:
    return {"user_id": fields.get("user_id") or f"anon-{socket_id}"}


def test_flask_callbacks_can_read_the_form(client):
    def authorize(request, channel, socket_id):
        assert request is flask.request._get_current_object()
        return _presence_from_form(request.form, socket_id)

    app = Harness("flask", client, authorize=authorize)
    status, answer = app.post(
        "/pusher/auth", form(socket_id="1.2", channel_name="presence-r", user_id="zoe")
    )
    assert status == 200 and json.loads(answer["channel_data"]) == {"user_id": "zoe"}


def test_django_callbacks_can_read_the_form_and_csrf_is_exempt(client):
    app = Harness("django", client, authorize=lambda request, channel, socket_id:
                  _presence_from_form(request.POST, socket_id))  # fmt: skip
    status, answer = app.post(
        "/pusher/auth", form(socket_id="1.2", channel_name="presence-r", user_id="zoe")
    )
    assert status == 200 and json.loads(answer["channel_data"]) == {"user_id": "zoe"}


def test_django_urlpatterns_are_named(client):
    patterns = pusher_urlpatterns(client, authorize=bool, user=bool, on_webhook=print)
    assert [p.name for p in patterns] == ["pusher-auth", "pusher-user-auth", "pusher-webhook"]
    assert [str(p.pattern) for p in patterns] == [
        "pusher/auth",
        "pusher/user-auth",
        "pusher/webhook",
    ]


def test_asgi_async_callbacks_are_awaited_and_sync_ones_run_in_a_thread(client):
    in_loop: dict[str, bool] = {}

    def running_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    async def authorize(request, channel, socket_id):
        in_loop["async"] = running_loop()
        # (request.form() would need python-multipart; the body is there to read again)
        fields = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        return _presence_from_form(fields, socket_id)

    def user(request, socket_id):
        in_loop["sync"] = running_loop()
        time.sleep(0.01)  # blocking is fine here: this runs in the thread pool
        return {"id": "ann"}

    app = Harness("asgi", client, authorize=authorize, user=user)
    status, answer = app.post(
        "/pusher/auth", form(socket_id="1.2", channel_name="presence-r", user_id="zoe")
    )
    assert status == 200 and json.loads(answer["channel_data"]) == {"user_id": "zoe"}
    assert app.post("/pusher/user-auth", form(socket_id="1.2"))[0] == 200
    assert in_loop == {"async": True, "sync": False}


def test_asgi_chunked_bodies_are_bounded_and_replayed_to_callbacks(client):
    seen = []

    async def authorize(request, channel, socket_id):
        seen.append(await request.body())
        return True

    http = TestClient(pusher_app(client, authorize=authorize))
    body = form(socket_id="1.2", channel_name="private-a")

    def chunks(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    r = http.post("/pusher/auth", content=chunks(body), headers={"content-type": FORM})
    assert r.status_code == 200 and seen == [body]
    r = http.post("/pusher/auth", content=chunks(HUGE), headers={"content-type": FORM})
    assert r.status_code == 400 and len(seen) == 1


def test_asgi_big_webhooks_are_verified_off_the_event_loop(client, recorder, frozen_clock):
    events = [{"name": "client_event", "channel": "private-a", "event": "client-x",
               "data": "x" * 1000, "socket_id": "1.2"}] * 100  # fmt: skip
    body, headers = signed_webhook(events)
    assert len(body) > 65536
    app = Harness("asgi", client, on_webhook=recorder.on_webhook)
    assert app.post("/pusher/webhook", body, "application/json", **headers) == (200, {})
    assert len(recorder.webhooks[0].events) == 100


def test_asgi_routes_mount_under_a_prefix(client, recorder):
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/realtime", app=pusher_app(client, **recorder.callbacks()))])
    r = TestClient(outer).post(
        "/realtime/pusher/auth", content=form(socket_id="1.2", channel_name="private-a")
    )
    assert r.status_code == 200 and r.json() == client.authenticate("private-a", "1.2")


def test_flask_blueprint_url_prefix(client, recorder):
    app = flask.Flask("prefixed")
    app.register_blueprint(pusher_blueprint(client, authorize=recorder.authorize, url_prefix="/rt"))
    r = app.test_client().post(
        "/rt/pusher/auth", data=form(socket_id="1.2", channel_name="private-a")
    )
    assert r.status_code == 200 and r.get_json() == client.authenticate("private-a", "1.2")


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what was read from it."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    # Werkzeug's builder measures the stream; the environ below then drops the length.
    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def readinto(self, buffer: Any) -> int:
        chunk = (self.prefix + b"&pad=" if self.read_bytes == 0 else b"x" * 8192)[: len(buffer)]
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)


def test_flask_bodies_without_content_length_are_bounded(client, recorder):
    app = flask.Flask("chunked")
    app.testing = True
    app.register_blueprint(pusher_blueprint(client, authorize=recorder.authorize))
    http = app.test_client()
    # A server that de-chunks sets wsgi.input_terminated and no CONTENT_LENGTH.
    overrides = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}
    small = form(socket_id="1.2", channel_name="private-a")
    r = http.post("/pusher/auth", data=small, environ_overrides=overrides,
                  content_type=FORM)  # fmt: skip
    assert r.status_code == 200, r.get_json()
    endless = EndlessBody(small)
    r = http.post("/pusher/auth", input_stream=endless, environ_overrides=overrides,
                  content_type=FORM)  # fmt: skip
    assert r.status_code == 400 and len(recorder.calls) == 1
    assert endless.read_bytes <= MAX_AUTH_BODY_BYTES + 65536  # stopped near the limit


_FORMISH = st.lists(
    st.tuples(
        st.sampled_from(["socket_id", "channel_name", "socket%5Fid", "user_id", "", "x"]),
        st.sampled_from(["=", ""]),
        st.one_of(
            st.sampled_from(["1.2", "1.1%3Aprivate-x", "private-a", "presence-a", "%ff", "+"]),
            st.text(max_size=20),
        ),
    ),
    max_size=5,
).map(lambda parts: "&".join(k + s + v for k, s, v in parts).encode("utf-8", "surrogatepass"))


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=300), _FORMISH))
def test_no_body_makes_an_endpoint_fail(app, body):
    for path in ("/pusher/auth", "/pusher/user-auth", "/pusher/webhook"):
        status, answer = app.post(path, body)
        assert status in (200, 400, 401, 403), (path, body, status)
        assert isinstance(answer, dict)

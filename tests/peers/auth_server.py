"""A loopback HTTP server for pusher-js's auth requests and soketi's webhooks.

Usage::

    from tests.peers.auth_server import start_auth_server

    with start_auth_server(client) as auth:  # client: any object with the official API
        auth.channel_auth_url  # http://127.0.0.1:PORT/pusher/auth: client.authenticate(...)
        auth.user_auth_url     # http://127.0.0.1:PORT/pusher/user-auth: client.authenticate_user
        auth.webhook_url       # http://127.0.0.1:PORT/webhook: stored in auth.webhooks

``start_auth_server(client=None, *, clients=None) -> AuthServer`` (stdlib ``ThreadingHTTPServer``
in a daemon thread, 127.0.0.1, port 0). ``AuthServer`` attributes and methods:

- ``client``: the Pusher client used for auth requests (settable; ``clients[name]`` are picked
  by the query parameter ``?client=NAME`` on the endpoint URL: ``auth.channel_auth_url_for("b")``).
- Channel authorization (``POST /pusher/auth``, form-encoded ``socket_id``, ``channel_name`` as
  pusher-js sends them) calls ``client.authenticate(channel_name, socket_id, custom_data)``;
  ``custom_data`` is ``None`` except for presence channels, where it comes from the form fields
  ``user_id`` / ``user_info`` (JSON) that pusher-js adds from ``channelAuthorization.params``
  (``BrowserClient(..., user_id=..., user_info=...)``), else from ``auth.presence_data(form)``,
  else ``{"user_id": "anon-<socket_id>"}``.
- User authentication (``POST /pusher/user-auth``) calls ``client.authenticate_user(socket_id,
  user_data)`` with ``user_data = {"id": user_id, "user_info": ...}`` from the same form fields
  (or ``auth.user_data(form)``, else ``{"id": "user-<socket_id>"}``).
- The auth responses are the client's return value as JSON (``json.dumps``; ``bytes`` values, such
  as the official library's ``shared_secret``, are sent as ASCII text). If the client raises,
  the response is 403 with the error text (pusher-js reports a ``subscription_error``).
- ``auth_requests``: list of ``AuthRequest(kind, form, status, response)``.
- Webhooks (``POST /webhook...``): stored as ``ReceivedWebhook(path, headers, body)`` in
  ``auth.webhooks``; ``headers`` is the ``http.client.HTTPMessage`` (case-insensitive
  ``headers["X-Pusher-Signature"]``); ``body`` the raw bytes. ``wait_for_webhook(predicate,
  timeout)`` returns the first matching one; ``webhook_events()`` yields
  ``(webhook, event_dict)`` for every event in every stored body.
- ``stop()``; context manager.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

LOOPBACK = "127.0.0.1"


@dataclass
class ReceivedWebhook:
    path: str
    headers: HTTPMessage
    body: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def key(self) -> str | None:
        return self.headers.get("X-Pusher-Key")

    @property
    def signature(self) -> str | None:
        return self.headers.get("X-Pusher-Signature")

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[dict[str, Any]]:
        try:
            return list(self.json().get("events", []))
        except (ValueError, AttributeError):
            return []


@dataclass
class AuthRequest:
    kind: str  # "channel" or "user"
    form: dict[str, str]
    status: int
    response: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._send(200, b"OK", "text/plain")

    def do_POST(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        body = self._read_body()
        owner = self.server.owner
        if parsed.path.startswith("/webhook"):
            owner._add_webhook(ReceivedWebhook(self.path, self.headers, body))
            self._send(200, b"{}")
            return
        if parsed.path not in ("/pusher/auth", "/pusher/user-auth"):
            self._send(404, b'{"error":"not found"}')
            return
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        kind = "channel" if parsed.path == "/pusher/auth" else "user"
        try:
            client = owner.get_client(query.get("client"))
            if kind == "channel":
                result = owner.authorize_channel(client, form)
            else:
                result = owner.authenticate_user(client, form)
            payload = json.dumps(result, default=_json_default).encode("utf-8")
            status = 200
        except Exception as e:  # report to the browser and keep it for the test
            result = {"error": f"{type(e).__name__}: {e}"}
            payload = json.dumps(result).encode("utf-8")
            status = 403
        owner._add_auth_request(AuthRequest(kind, form, status, result))
        self._send(status, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    owner: AuthServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn() (a reverse name lookup): skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def _json_default(obj: Any) -> Any:
    # The official library returns ``shared_secret`` as bytes (base64 text): send it as text,
    # as an application would have to. ``AuthRequest.response`` keeps the original value.
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("ascii")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _parse_user_info(form: dict[str, str]) -> Any:
    raw = form.get("user_info")
    if raw is None:
        return None
    return json.loads(raw)


class AuthServer:
    host = LOOPBACK

    def __init__(self, client: Any = None, *, clients: dict[str, Any] | None = None) -> None:
        self.client = client
        self.clients: dict[str, Any] = dict(clients or {})
        # Optional hooks: form -> custom_data / user_data.
        self.presence_data: Callable[[dict[str, str]], dict[str, Any]] | None = None
        self.user_data: Callable[[dict[str, str]], dict[str, Any]] | None = None
        self.webhooks: list[ReceivedWebhook] = []
        self.auth_requests: list[AuthRequest] = []
        self._cond = threading.Condition()
        self._httpd = _Server((LOOPBACK, 0), _Handler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    # -- URLs ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def channel_auth_url(self) -> str:
        return f"{self.url}/pusher/auth"

    @property
    def user_auth_url(self) -> str:
        return f"{self.url}/pusher/user-auth"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook"

    def channel_auth_url_for(self, client_name: str) -> str:
        return f"{self.channel_auth_url}?client={urllib.parse.quote(client_name)}"

    def user_auth_url_for(self, client_name: str) -> str:
        return f"{self.user_auth_url}?client={urllib.parse.quote(client_name)}"

    # -- auth ----------------------------------------------------------------------------------
    def get_client(self, name: str | None) -> Any:
        client = self.clients[name] if name else self.client
        if client is None:
            raise RuntimeError("AuthServer has no client set")
        return client

    def authorize_channel(self, client: Any, form: dict[str, str]) -> Any:
        channel = form["channel_name"]
        socket_id = form["socket_id"]
        custom_data = None
        if channel.startswith("presence-"):
            if "user_id" in form:
                custom_data = {"user_id": form["user_id"]}
                info = _parse_user_info(form)
                if info is not None:
                    custom_data["user_info"] = info
            elif self.presence_data is not None:
                custom_data = self.presence_data(form)
            else:
                custom_data = {"user_id": f"anon-{socket_id}"}
        return client.authenticate(channel, socket_id, custom_data)

    def authenticate_user(self, client: Any, form: dict[str, str]) -> Any:
        socket_id = form["socket_id"]
        if "user_id" in form:
            user_data: dict[str, Any] = {"id": form["user_id"]}
            info = _parse_user_info(form)
            if info is not None:
                user_data["user_info"] = info
        elif self.user_data is not None:
            user_data = self.user_data(form)
        else:
            user_data = {"id": f"user-{socket_id}"}
        return client.authenticate_user(socket_id, user_data)

    def _add_auth_request(self, req: AuthRequest) -> None:
        with self._cond:
            self.auth_requests.append(req)
            self._cond.notify_all()

    # -- webhooks ------------------------------------------------------------------------------
    def _add_webhook(self, hook: ReceivedWebhook) -> None:
        with self._cond:
            self.webhooks.append(hook)
            self._cond.notify_all()

    def clear_webhooks(self) -> None:
        with self._cond:
            self.webhooks.clear()

    def webhook_events(self) -> Iterator[tuple[ReceivedWebhook, dict[str, Any]]]:
        with self._cond:
            hooks = list(self.webhooks)
        for hook in hooks:
            for event in hook.events():
                yield hook, event

    def wait_for_webhook(
        self, predicate: Callable[[ReceivedWebhook], bool], timeout: float = 5.0
    ) -> ReceivedWebhook:
        """The first stored webhook matching ``predicate``; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for hook in self.webhooks:
                    if predicate(hook):
                        return hook
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [h.body[:300] for h in self.webhooks]
                    raise TimeoutError(f"no matching webhook within {timeout}s; got {got}")
                self._cond.wait(remaining)

    def wait_for_webhook_event(
        self,
        name: str,
        channel: str,
        timeout: float = 5.0,
        **fields: Any,
    ) -> tuple[ReceivedWebhook, dict[str, Any]]:
        """The first stored (webhook, event) with that event ``name`` and ``channel``
        (and matching ``fields``, e.g. ``user_id=...``)."""

        def match(event: dict[str, Any]) -> bool:
            return (
                event.get("name") == name
                and event.get("channel") == channel
                and all(event.get(k) == v for k, v in fields.items())
            )

        hook = self.wait_for_webhook(lambda h: any(match(e) for e in h.events()), timeout)
        return hook, next(e for e in hook.events() if match(e))

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AuthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_auth_server(client: Any = None, *, clients: dict[str, Any] | None = None) -> AuthServer:
    """Start an :class:`AuthServer` on a free 127.0.0.1 port."""
    return AuthServer(client, clients=clients)

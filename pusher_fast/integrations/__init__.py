"""Ready auth and webhook endpoints for web frameworks (each an optional extra).

- :mod:`pusher_fast.integrations.flask`: ``pusher_blueprint(client, ...)``, a Flask Blueprint;
- :mod:`pusher_fast.integrations.django`: ``pusher_urlpatterns(client, ...)`` and the views;
- :mod:`pusher_fast.integrations.asgi`: ``pusher_routes(client, ...)``, Starlette routes
  (``pusher_app`` wraps them in an app to mount, e.g. in FastAPI).

Each serves ``POST /pusher/auth`` (channel authorization), ``POST /pusher/user-auth``
(user sign-in) and ``POST /pusher/webhook``, for the callbacks it is given:

- ``authorize(request, channel_name, socket_id)`` returns False (answer 403), True
  (private and private-encrypted channels) or the presence ``custom_data`` (a dict with
  ``user_id``);
- ``user(request, socket_id)`` returns the ``user_data`` (a dict with a string ``id``) or
  None (403);
- ``on_webhook(webhook)`` receives each verified :class:`~pusher_fast.Webhook`.

What the client sends is never trusted: a body that is too large, not UTF-8, malformed,
with a field missing or repeated, or with an invalid socket id or channel name is
answered 400 with ``{"error": "..."}`` before any callback runs; a webhook that fails
verification is answered 401 (key, signature, freshness) or 400, with
``{"error": REASON}``.  A callback that raises, or returns something that is not one of
the values above, is a bug in the application: that error propagates to the framework
(a 500 and its usual logging), it is not disguised as a refusal.

This module is framework-free: the shared steps each integration runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Union

import orjson

from .. import _validation as v
from .._auth_body import MAX_AUTH_BODY_BYTES, parse_channel_body, parse_user_body
from .._webhook import Webhook, tokens_from
from ..errors import PusherWebhookError

__all__ = [
    "AUTH_PATH",
    "MAX_AUTH_BODY_BYTES",
    "MAX_WEBHOOK_BODY_BYTES",
    "USER_AUTH_PATH",
    "WEBHOOK_PATH",
    "Answer",
    "AuthorizeResult",
    "Endpoints",
]

AUTH_PATH = "/pusher/auth"
USER_AUTH_PATH = "/pusher/user-auth"
WEBHOOK_PATH = "/pusher/webhook"
#: The largest webhook body read (Pusher batches events; each client event is at most 10 KB).
MAX_WEBHOOK_BODY_BYTES = 1 << 20

AuthorizeResult = Union[bool, Mapping[str, Any], None]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status and a JSON object."""

    status: int
    payload: Mapping[str, Any]

    def body(self) -> bytes:
        return orjson.dumps(self.payload)


FORBIDDEN = Answer(403, {"error": "forbidden"})
OK = Answer(200, {})


def bad_request(message: str) -> Answer:
    return Answer(400, {"error": message[:200]})


def too_large(limit: int) -> Answer:
    return bad_request(f"request body is larger than {limit} bytes")


def content_length_problem(value: Any, limit: int) -> Answer | None:
    """400 for a Content-Length that is malformed or over ``limit``; None when it is fine."""
    if value is None or value == "":
        return None
    try:
        length = int(value)
    except (TypeError, ValueError):
        return bad_request("malformed Content-Length")
    if length < 0:
        return bad_request("malformed Content-Length")
    if length > limit:
        return too_large(limit)
    return None


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine (an ``async def`` or an async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


@dataclass(frozen=True)
class Endpoints:
    """What an integration serves, and how; built by each framework's helper."""

    client: Any
    authorize: Optional[Callable[..., Any]] = None
    user: Optional[Callable[..., Any]] = None
    on_webhook: Optional[Callable[..., Any]] = None
    auth_path: str = AUTH_PATH
    user_auth_path: str = USER_AUTH_PATH
    webhook_path: str = WEBHOOK_PATH
    extra_tokens: Optional[tuple[Mapping[str, str], ...]] = None
    max_auth_bytes: int = MAX_AUTH_BODY_BYTES
    max_webhook_bytes: int = MAX_WEBHOOK_BODY_BYTES

    @classmethod
    def build(
        cls,
        client: Any,
        authorize: Callable[..., Any] | None,
        user: Callable[..., Any] | None,
        on_webhook: Callable[..., Any] | None,
        extra_tokens: Iterable[Mapping[str, str]] | None,
        auth_path: str = AUTH_PATH,
        user_auth_path: str = USER_AUTH_PATH,
        webhook_path: str = WEBHOOK_PATH,
        *,
        sync_only: bool = False,
    ) -> Endpoints:
        """The endpoints for a framework's keywords, checked once."""
        if authorize is None and user is None and on_webhook is None:
            raise ValueError("give at least one of authorize=, user= and on_webhook=")
        for name, fn in (("authorize", authorize), ("user", user), ("on_webhook", on_webhook)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} should be callable, got {type(fn).__name__}")
            if sync_only and fn is not None and is_async_callable(fn):
                # A WSGI view would get a coroutine back and never run it.
                raise TypeError(
                    f"{name} is an async function: these views are synchronous; use "
                    "pusher_fast.integrations.asgi, or a plain function"
                )
        tokens = None
        if extra_tokens is not None:
            tokens = tuple(extra_tokens)
            tokens_from(tokens)  # refuse malformed tokens now, not per request
        return cls(
            client,
            authorize,
            user,
            on_webhook,
            auth_path,
            user_auth_path,
            webhook_path,
            tokens,
        )

    def served(self) -> list[tuple[str, str, int, Callable[..., Any]]]:
        """``(kind, path, body limit, callback)`` for each endpoint to serve.

        ``kind`` is ``"auth"``, ``"user_auth"`` or ``"webhook"``."""
        endpoints = (
            ("auth", self.auth_path, self.max_auth_bytes, self.authorize),
            ("user_auth", self.user_auth_path, self.max_auth_bytes, self.user),
            ("webhook", self.webhook_path, self.max_webhook_bytes, self.on_webhook),
        )
        return [(kind, path, limit, fn) for kind, path, limit, fn in endpoints if fn is not None]

    # -- the steps, framework-free ---------------------------------------------------------
    # Each takes the body as the framework read it, or the answer reading it gave (passed on).

    def read_channel_request(self, body: bytes | Answer) -> tuple[str, str] | Answer:
        """``(socket_id, channel_name)``, validated, or a 400 answer."""
        if isinstance(body, Answer):
            return body
        try:
            socket_id, channel = parse_channel_body(body, self.max_auth_bytes)
            return v.validate_socket_id(socket_id), v.validate_subscribable_channel(channel)
        except (ValueError, TypeError) as exc:
            return bad_request(str(exc))

    def read_user_request(self, body: bytes | Answer) -> str | Answer:
        """The validated ``socket_id``, or a 400 answer."""
        if isinstance(body, Answer):
            return body
        try:
            return v.validate_socket_id(parse_user_body(body, self.max_auth_bytes))
        except (ValueError, TypeError) as exc:
            return bad_request(str(exc))

    def channel_answer(self, channel: str, socket_id: str, decision: Any) -> Answer:
        """The signed answer for the ``authorize`` callback's ``decision``."""
        if decision is None or decision is False:
            return FORBIDDEN
        if decision is True:
            if channel.startswith(v.PRESENCE_PREFIX):
                raise TypeError(
                    f"authorize returned True for presence channel {channel!r}: return the "
                    "member's custom_data instead, a dict with a 'user_id'"
                )
            custom_data = None
        elif isinstance(decision, Mapping):
            custom_data = decision
        else:
            raise TypeError(
                "authorize should return True, False or the presence custom_data (a dict), "
                f"got {type(decision).__name__}"
            )
        return Answer(200, self.client.authenticate(channel, socket_id, custom_data))

    def user_answer(self, socket_id: str, user_data: Any) -> Answer:
        """The signed answer for the ``user`` callback's ``user_data``."""
        if user_data is None or user_data is False:
            return FORBIDDEN
        if not isinstance(user_data, Mapping):
            raise TypeError(
                "user should return the user_data (a dict with a string 'id') or None, "
                f"got {type(user_data).__name__}"
            )
        return Answer(200, self.client.authenticate_user(socket_id, user_data))

    def read_webhook(self, headers: Any, body: bytes | Answer) -> Webhook | Answer:
        """The verified webhook, or 401/400 naming the failed check."""
        if isinstance(body, Answer):
            return body
        try:
            hook: Webhook = self.client.webhook(headers, body, extra_tokens=self.extra_tokens)
        except PusherWebhookError as exc:
            return Answer(exc.http_status, {"error": exc.reason.value})
        return hook

    # -- whole requests, for the synchronous frameworks (callbacks run in the caller's thread) --

    def sync_answer(self, kind: str, callback: Callable[..., Any]) -> SyncAnswer:
        """``answer(request, body)`` for an endpoint of ``served()``."""
        step = {"auth": _channel, "user_auth": _user, "webhook": _webhook}[kind]
        return partial(step, self, callback)


SyncAnswer = Callable[[Any, Union[bytes, Answer]], Answer]


def _channel(
    ep: Endpoints, authorize: Callable[..., Any], request: Any, body: bytes | Answer
) -> Answer:
    read = ep.read_channel_request(body)
    if isinstance(read, Answer):
        return read
    socket_id, channel = read
    return ep.channel_answer(channel, socket_id, authorize(request, channel, socket_id))


def _user(ep: Endpoints, user: Callable[..., Any], request: Any, body: bytes | Answer) -> Answer:
    socket_id = ep.read_user_request(body)
    if isinstance(socket_id, Answer):
        return socket_id
    return ep.user_answer(socket_id, user(request, socket_id))


def _webhook(
    ep: Endpoints, on_webhook: Callable[..., Any], request: Any, body: bytes | Answer
) -> Answer:
    hook = ep.read_webhook(request.headers, body)
    if isinstance(hook, Answer):
        return hook
    on_webhook(hook)
    return OK

"""Flask: the auth and webhook endpoints as a Blueprint (``pip install pusher-fast[flask]``).

>>> from flask import Flask, session
>>> from pusher_fast import Pusher
>>> from pusher_fast.integrations.flask import pusher_blueprint
>>> client = Pusher(app_id="1", key="key", secret="secret")
>>> app = Flask(__name__)
>>> app.register_blueprint(pusher_blueprint(
...     client,
...     authorize=lambda request, channel, socket_id: channel.startswith("private-"),
...     user=lambda request, socket_id: {"id": "ann"},
...     on_webhook=lambda webhook: print(webhook.events),
... ))

The body is read raw with ``request.get_data()`` (bounded: a larger body is refused
before it is read), never re-serialised from ``request.form``.  Callbacks get the
current ``flask.Request``.  See :mod:`pusher_fast.integrations` for the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable, Union

from flask import Blueprint, Request, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import (
    AUTH_PATH,
    USER_AUTH_PATH,
    WEBHOOK_PATH,
    Answer,
    Endpoints,
    content_length_problem,
    too_large,
)

__all__ = ["pusher_blueprint"]


def _respond(answer: Answer) -> Response:
    return Response(answer.body(), status=answer.status, mimetype="application/json")


def _current_request() -> Request:
    return request._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _read_body(limit: int) -> Union[bytes, Answer]:
    problem = content_length_problem(request.headers.get("Content-Length"), limit)
    if problem is not None:
        return problem
    # Also bounds a body sent without Content-Length (chunked): Werkzeug then reads at
    # most this much, so one byte more than the limit tells a body that is too large.
    request.max_content_length = limit + 1
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return too_large(limit)
    if len(body) > limit:
        return too_large(limit)
    return body


def pusher_blueprint(
    client: Any,
    *,
    authorize: Callable[[Request, str, str], Any] | None = None,
    user: Callable[[Request, str], Any] | None = None,
    on_webhook: Callable[[Any], Any] | None = None,
    auth_path: str = AUTH_PATH,
    user_auth_path: str = USER_AUTH_PATH,
    webhook_path: str = WEBHOOK_PATH,
    extra_tokens: Iterable[Mapping[str, str]] | None = None,
    name: str = "pusher",
    url_prefix: str | None = None,
) -> Blueprint:
    """A Blueprint serving an endpoint for each callback given (POST only)."""
    ep = Endpoints.build(
        client,
        authorize=authorize,
        user=user,
        on_webhook=on_webhook,
        auth_path=auth_path,
        user_auth_path=user_auth_path,
        webhook_path=webhook_path,
        extra_tokens=extra_tokens,
        sync_only=True,
    )
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    if authorize is not None:
        authorize_ = authorize

        def channel_auth() -> Response:
            body = _read_body(ep.max_auth_bytes)
            if isinstance(body, Answer):
                return _respond(body)
            read = ep.read_channel_request(body)
            if isinstance(read, Answer):
                return _respond(read)
            socket_id, channel = read
            decision = authorize_(_current_request(), channel, socket_id)
            return _respond(ep.channel_answer(channel, socket_id, decision))

        bp.add_url_rule(ep.auth_path, "auth", channel_auth, methods=["POST"])

    if user is not None:
        user_ = user

        def user_auth() -> Response:
            body = _read_body(ep.max_auth_bytes)
            if isinstance(body, Answer):
                return _respond(body)
            socket_id = ep.read_user_request(body)
            if isinstance(socket_id, Answer):
                return _respond(socket_id)
            return _respond(ep.user_answer(socket_id, user_(_current_request(), socket_id)))

        bp.add_url_rule(ep.user_auth_path, "user_auth", user_auth, methods=["POST"])

    if on_webhook is not None:
        on_webhook_ = on_webhook

        def webhook() -> Response:
            body = _read_body(ep.max_webhook_bytes)
            if isinstance(body, Answer):
                return _respond(body)
            hook = ep.read_webhook(request.headers, body)
            if isinstance(hook, Answer):
                return _respond(hook)
            on_webhook_(hook)
            return _respond(Answer(200, {}))

        bp.add_url_rule(ep.webhook_path, "webhook", webhook, methods=["POST"])

    return bp

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
    SyncAnswer,
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


def _view(answer: SyncAnswer, limit: int) -> Callable[[], Response]:
    def view() -> Response:
        body = _read_body(limit)
        return _respond(answer(_current_request(), body))

    return view


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
        authorize,
        user,
        on_webhook,
        extra_tokens,
        auth_path,
        user_auth_path,
        webhook_path,
        sync_only=True,
    )
    bp = Blueprint(name, __name__, url_prefix=url_prefix)
    for kind, rule, limit, callback in ep.served():
        view = _view(ep.sync_answer(kind, callback), limit)
        bp.add_url_rule(rule, kind, view, methods=["POST"])
    return bp

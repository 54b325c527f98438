"""Django: the auth and webhook views and their URL patterns (``pip install pusher-fast[django]``).

In ``urls.py``::

    from pusher_fast.integrations.django import pusher_urlpatterns

    urlpatterns = [
        *pusher_urlpatterns(
            client,
            authorize=lambda request, channel, socket_id: request.user.is_authenticated,
            user=lambda request, socket_id: {"id": str(request.user.pk)},
            on_webhook=handle_webhook,
        ),
    ]

The views are ``csrf_exempt``: pusher-js posts without Django's CSRF token, and the
webhook comes from Pusher's servers.  Their protection is the caller's session (checked
by your callbacks) and, for webhooks, the HMAC signature.  The body is read raw with
``request.body`` (bounded: a larger body is refused before it is read).  Callbacks get the
``HttpRequest``.  See :mod:`pusher_fast.integrations` for the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Callable, Union

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

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

__all__ = ["pusher_urlpatterns", "pusher_views"]

View = Callable[[HttpRequest], HttpResponse]


def _respond(answer: Answer) -> HttpResponse:
    return HttpResponse(answer.body(), status=answer.status, content_type="application/json")


def _read_body(request: HttpRequest, limit: int) -> Union[bytes, Answer]:
    problem = content_length_problem(request.META.get("CONTENT_LENGTH"), limit)
    if problem is not None:
        return problem
    try:
        body = request.body
    except RequestDataTooBig:  # over settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return too_large(limit)
    if len(body) > limit:
        return too_large(limit)
    return body


def _view(answer: SyncAnswer, limit: int) -> View:
    def view(request: HttpRequest) -> HttpResponse:
        return _respond(answer(request, _read_body(request, limit)))

    return csrf_exempt(require_POST(view))


def pusher_views(
    client: Any,
    *,
    authorize: Callable[[HttpRequest, str, str], Any] | None = None,
    user: Callable[[HttpRequest, str], Any] | None = None,
    on_webhook: Callable[[Any], Any] | None = None,
    extra_tokens: Iterable[Mapping[str, str]] | None = None,
) -> dict[str, View]:
    """``{"auth": view, "user_auth": view, "webhook": view}`` for the callbacks given."""
    ep = Endpoints.build(client, authorize, user, on_webhook, extra_tokens, sync_only=True)
    return {
        kind: _view(ep.sync_answer(kind, callback), limit)
        for kind, _path, limit, callback in ep.served()
    }


def pusher_urlpatterns(
    client: Any,
    *,
    authorize: Callable[[HttpRequest, str, str], Any] | None = None,
    user: Callable[[HttpRequest, str], Any] | None = None,
    on_webhook: Callable[[Any], Any] | None = None,
    auth_path: str = AUTH_PATH,
    user_auth_path: str = USER_AUTH_PATH,
    webhook_path: str = WEBHOOK_PATH,
    extra_tokens: Iterable[Mapping[str, str]] | None = None,
    name_prefix: str = "pusher",
) -> list[URLPattern]:
    """URL patterns (named ``pusher-auth``, ``pusher-user-auth``, ``pusher-webhook``)."""
    views = pusher_views(
        client, authorize=authorize, user=user, on_webhook=on_webhook, extra_tokens=extra_tokens
    )
    routes = {"auth": auth_path, "user_auth": user_auth_path, "webhook": webhook_path}
    return [
        # Django's routes carry no leading slash.
        path(routes[kind].lstrip("/"), view, name=f"{name_prefix}-{kind.replace('_', '-')}")
        for kind, view in views.items()
    ]

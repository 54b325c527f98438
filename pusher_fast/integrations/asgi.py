"""ASGI (Starlette, FastAPI): the auth and webhook endpoints as Starlette routes
(``pip install pusher-fast[asgi]``).

>>> from starlette.applications import Starlette
>>> from pusher_fast import Pusher
>>> from pusher_fast.integrations.asgi import pusher_routes
>>> client = Pusher(app_id="1", key="key", secret="secret")
>>> async def authorize(request, channel, socket_id):
...     return channel.startswith("private-")
>>> app = Starlette(routes=pusher_routes(client, authorize=authorize))

In FastAPI: ``app.router.routes.extend(pusher_routes(client, ...))``, or
``app.mount("/realtime", pusher_app(client, ...))``.

Nothing here blocks the event loop: the body is read with ``await request.body()``
(bounded: a larger body is refused before it is read; a chunked body is read
incrementally up to the limit), signing is a few microseconds of CPU, and webhook bodies
over 64 KB are verified in a worker thread.  Callbacks may be ``async def`` (awaited) or
plain functions (run with Starlette's ``run_in_threadpool``, so a callback that does
blocking I/O, such as a database query, does not stall other requests).  Callbacks get
the Starlette ``Request``.  See :mod:`pusher_fast.integrations` for the contract.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Union

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from . import (
    AUTH_PATH,
    USER_AUTH_PATH,
    WEBHOOK_PATH,
    Answer,
    Endpoints,
    content_length_problem,
    is_async_callable,
    too_large,
)

__all__ = ["pusher_app", "pusher_routes"]

#: Webhook bodies larger than this are verified (HMAC, JSON) in a worker thread.
INLINE_WEBHOOK_BYTES = 65536


def _respond(answer: Answer) -> Response:
    return Response(answer.body(), status_code=answer.status, media_type="application/json")


def _caller(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async`` function calling ``fn``: awaited if async, else in the thread pool."""
    if is_async_callable(fn):
        return fn

    async def call(*args: Any) -> Any:
        result = await run_in_threadpool(fn, *args)
        if inspect.isawaitable(result):  # e.g. a partial of an async function
            result = await result
        return result

    return call


async def _read_body(request: Request, limit: int) -> Union[tuple[bytes, Request], Answer]:
    """The raw body and the request to hand to callbacks (which can read the body again)."""
    length = request.headers.get("content-length")
    problem = content_length_problem(length, limit)
    if problem is not None:
        return problem
    if length:
        return await request.body(), request
    # No Content-Length (chunked): read up to the limit, then give callbacks a request
    # that replays what was read.
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return body, Request(request.scope, replay)


def pusher_routes(
    client: Any,
    *,
    authorize: Callable[..., Any] | None = None,
    user: Callable[..., Any] | None = None,
    on_webhook: Callable[..., Any] | None = None,
    auth_path: str = AUTH_PATH,
    user_auth_path: str = USER_AUTH_PATH,
    webhook_path: str = WEBHOOK_PATH,
    extra_tokens: Iterable[Mapping[str, str]] | None = None,
) -> list[Route]:
    """Starlette routes (POST only) for the callbacks given; sync or async callbacks."""
    ep = Endpoints.build(
        client,
        authorize=authorize,
        user=user,
        on_webhook=on_webhook,
        auth_path=auth_path,
        user_auth_path=user_auth_path,
        webhook_path=webhook_path,
        extra_tokens=extra_tokens,
    )
    routes: list[Route] = []

    if authorize is not None:
        authorize_ = _caller(authorize)

        async def channel_auth(request: Request) -> Response:
            read = await _read_body(request, ep.max_auth_bytes)
            if isinstance(read, Answer):
                return _respond(read)
            body, request = read
            fields = ep.read_channel_request(body)
            if isinstance(fields, Answer):
                return _respond(fields)
            socket_id, channel = fields
            decision = await authorize_(request, channel, socket_id)
            return _respond(ep.channel_answer(channel, socket_id, decision))

        routes.append(Route(ep.auth_path, channel_auth, methods=["POST"], name="pusher-auth"))

    if user is not None:
        user_ = _caller(user)

        async def user_auth(request: Request) -> Response:
            read = await _read_body(request, ep.max_auth_bytes)
            if isinstance(read, Answer):
                return _respond(read)
            body, request = read
            socket_id = ep.read_user_request(body)
            if isinstance(socket_id, Answer):
                return _respond(socket_id)
            user_data = await user_(request, socket_id)
            return _respond(ep.user_answer(socket_id, user_data))

        routes.append(
            Route(ep.user_auth_path, user_auth, methods=["POST"], name="pusher-user-auth")
        )

    if on_webhook is not None:
        on_webhook_ = _caller(on_webhook)

        async def webhook(request: Request) -> Response:
            read = await _read_body(request, ep.max_webhook_bytes)
            if isinstance(read, Answer):
                return _respond(read)
            body, request = read
            if len(body) > INLINE_WEBHOOK_BYTES:
                hook = await run_in_threadpool(ep.read_webhook, request.headers, body)
            else:
                hook = ep.read_webhook(request.headers, body)
            if isinstance(hook, Answer):
                return _respond(hook)
            await on_webhook_(hook)
            return _respond(Answer(200, {}))

        routes.append(Route(ep.webhook_path, webhook, methods=["POST"], name="pusher-webhook"))

    return routes


def pusher_app(client: Any, **options: Any) -> Starlette:
    """A Starlette app of :func:`pusher_routes` (same keywords), to run or mount."""
    return Starlette(routes=pusher_routes(client, **options))

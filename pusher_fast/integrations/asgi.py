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
    OK,
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

Body = Union[bytes, Answer]


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


async def _read_body(request: Request, limit: int) -> tuple[Union[bytes, Answer], Request]:
    """The raw body (or the answer refusing it) and the request to hand to callbacks (which
    can read the body again)."""
    length = request.headers.get("content-length")
    problem = content_length_problem(length, limit)
    if problem is not None:
        return problem, request
    if length:
        return await request.body(), request
    # No Content-Length (chunked): read up to the limit, then give callbacks a request
    # that replays what was read.
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large(limit), request
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return body, Request(request.scope, replay)


# The asynchronous counterparts of the framework-free sync answers: the same steps, with the
# callbacks awaited and large webhooks verified off the event loop.


async def _channel(ep: Endpoints, authorize: Any, request: Request, body: Body) -> Answer:
    read = ep.read_channel_request(body)
    if isinstance(read, Answer):
        return read
    socket_id, channel = read
    decision = await authorize(request, channel, socket_id)
    return ep.channel_answer(channel, socket_id, decision)


async def _user(ep: Endpoints, user: Any, request: Request, body: Body) -> Answer:
    socket_id = ep.read_user_request(body)
    if isinstance(socket_id, Answer):
        return socket_id
    return ep.user_answer(socket_id, await user(request, socket_id))


async def _webhook(ep: Endpoints, on_webhook: Any, request: Request, body: Body) -> Answer:
    if isinstance(body, bytes) and len(body) > INLINE_WEBHOOK_BYTES:
        hook = await run_in_threadpool(ep.read_webhook, request.headers, body)
    else:
        hook = ep.read_webhook(request.headers, body)
    if isinstance(hook, Answer):
        return hook
    await on_webhook(hook)
    return OK


_ANSWERS = {"auth": _channel, "user_auth": _user, "webhook": _webhook}


def _route(ep: Endpoints, kind: str, path: str, limit: int, callback: Callable[..., Any]) -> Route:
    answer = _ANSWERS[kind]
    call = _caller(callback)

    async def endpoint(request: Request) -> Response:
        body, request = await _read_body(request, limit)
        return _respond(await answer(ep, call, request, body))

    return Route(path, endpoint, methods=["POST"], name=f"pusher-{kind.replace('_', '-')}")


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
        client, authorize, user, on_webhook, extra_tokens, auth_path, user_auth_path, webhook_path
    )
    return [_route(ep, *served) for served in ep.served()]


def pusher_app(client: Any, **options: Any) -> Starlette:
    """A Starlette app of :func:`pusher_routes` (same keywords), to run or mount."""
    return Starlette(routes=pusher_routes(client, **options))

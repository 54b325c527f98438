"""The sans-IO request: what to send, built and signed, with no socket in sight.

A ``Request`` carries the attributes the official library's request object
has (``method``, ``path``, ``params``, ``body``, ``query_params``,
``query_string``, ``signed_path``, ``url``, ``base_url``, ``headers``), so a
``backend=`` written for pusher-http-python can send ours.
``process_response`` turns any transport's (status, body) into a result or a
``PusherError``; every transport shares it.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from . import _json
from .errors import PusherBadAuth, PusherBadRequest, PusherBadStatus, PusherForbidden
from .version import VERSION

if TYPE_CHECKING:
    from .client import Pusher

GET = "GET"
POST = "POST"

LIBRARY_HEADER = "pusher-fast-python " + VERSION
POST_HEADERS = {"X-Pusher-Library": LIBRARY_HEADER, "Content-Type": "application/json"}
GET_HEADERS = {"X-Pusher-Library": LIBRARY_HEADER}


class Request:
    """One signed Pusher HTTP API request."""

    __slots__ = ("_params", "body", "client", "method", "path", "query_string")

    def __init__(
        self,
        client: Pusher,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: bytes,
        query_string: str,
    ) -> None:
        self.client = client
        self.method = method
        self.path = path
        self._params = params
        self.body = body
        #: The signed query, sorted by key, unescaped (as the API signs it).
        self.query_string = query_string

    @property
    def params(self) -> dict[str, Any]:
        """The body's fields (POST) or the call's own query parameters (GET)."""
        if self._params is None:  # the fast path skips building it
            self._params = _json.loads(self.body) if self.body else {}
        return self._params

    @property
    def query_params(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.query_string.split("&"))
        return {key: value for key, _, value in pairs}

    @property
    def signed_path(self) -> str:
        return self.path + "?" + self.query_string

    @property
    def base_url(self) -> str:
        return self.client.base_url

    @property
    def url(self) -> str:
        return self.client.base_url + self.path + "?" + self.query_string

    @property
    def headers(self) -> dict[str, str]:
        return dict(POST_HEADERS if self.method == POST else GET_HEADERS)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} body={len(self.body)}B>"


def wire_query(query: str) -> str:
    """``query`` as it goes on the wire: non-ASCII characters (a key such as
    ``kéy``) percent-encoded as UTF-8, as requests sends the official library's
    URL; the signature covers the unescaped text, which the server recovers."""
    if query.isascii():
        return query
    return "".join(c if c.isascii() else urllib.parse.quote(c, safe="") for c in query)


#: Characters of a bad answer's body quoted in its error.
EXCERPT_CHARS = 200


def _excerpt(body: str | bytes) -> str:
    text = body[: EXCERPT_CHARS * 4] if isinstance(body, bytes) else body
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[:EXCERPT_CHARS] + ("..." if len(body) > EXCERPT_CHARS else "")


def process_response(status: int, body: str | bytes) -> Any:
    """The parsed JSON of a success, or the ``PusherError`` for the status."""
    if status == 200 or status == 202:
        try:
            return _json.loads(body)
        except ValueError:  # orjson.JSONDecodeError, and bodies that are not UTF-8
            raise PusherBadStatus(
                f"{status}: the answer is not JSON: {_excerpt(body)!r}", status
            ) from None
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if status == 400:
        raise PusherBadRequest(text)
    if status == 401:
        raise PusherBadAuth(text)
    if status == 403:
        raise PusherForbidden(text)
    raise PusherBadStatus(f"{status}: {text}", status)

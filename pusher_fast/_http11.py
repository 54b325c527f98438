"""HTTP/1.1 on the wire, without I/O: request bytes out, answers in.

Shared by the socket transports (``transports.sockets``, ``transports.aio_sockets``):

- :class:`RequestEncoder` turns a :class:`~pusher_fast._request.Request` into the bytes of
  one request (head and body, for a single write).  The head is cached per method and path,
  so a trigger only adds its signed query and Content-Length.  Anything that could end or
  split the request line or a header (spaces, control characters, non-ASCII) is refused.
- :class:`ResponseReader` reads one answer.  The parsing is httptools' (llhttp, the parser
  of Node.js), strict but for one leniency: a status or header line may end in a bare LF
  (as ``http.client`` and urllib3 accept; chunk-size lines still need CRLF).  Status line,
  headers, Content-Length (duplicates that disagree are an error, and so is Content-Length
  with Transfer-Encoding), chunked bodies, HTTP/1.0 and ``Connection: close``.  What this
  module adds: limits (:data:`MAX_HEAD_BYTES`, :data:`MAX_HEADERS`, :data:`MAX_BODY_BYTES`),
  skipping interim ``1xx`` answers, bodies delimited by the end of the connection, and
  refusing bytes after the answer (we never pipeline, so they can only be a broken peer).

>>> reader = ResponseReader()
>>> reader.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
True
>>> reader.status, reader.body, reader.keep_alive, reader.headers["content-length"]
(200, b'{}', True, '2')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httptools

from ._request import Request, wire_query
from .version import VERSION

#: Bytes of status line and headers an answer may have before it is refused.
MAX_HEAD_BYTES = 64 * 1024
#: Header fields an answer may have.
MAX_HEADERS = 256
#: Bytes of body an answer may have (the API's largest answers, channel lists, are far smaller).
MAX_BODY_BYTES = 64 * 1024 * 1024

USER_AGENT = "pusher-fast-python/" + VERSION
_HEADS_MAX = 256  # cached request heads (one per method and path)


class ProtocolError(Exception):
    """The server's answer broke HTTP/1.1 or a limit: the connection cannot be used again."""


# -- requests ---------------------------------------------------------------------------------


# Printable ASCII but the space: what a request target may hold.
_TARGET_BYTES = bytes(range(0x21, 0x7F))


def target_bytes(text: str) -> bytes | None:
    """``text`` as ASCII bytes, or None if it holds a space, a control or a non-ASCII
    character: anything that could end a request line."""
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    # Deleting the allowed bytes leaves the others: one C loop, about twice as fast on a
    # signed query as str.isprintable(), which looks every character up in a table.
    return None if raw.translate(None, _TARGET_BYTES) else raw


def is_safe_target(text: str) -> bool:
    """No space, control or non-ASCII character: nothing that could end a request line."""
    return target_bytes(text) is not None


def host_header(host: str, port: int, default_port: int) -> str:
    """The Host header's value: IPv6 literals bracketed, IDNs in ASCII, the port if not default."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    return host if port == default_port else f"{host}:{port}"


class RequestEncoder:
    """The bytes of requests to one origin (``host`` as it goes in the Host header)."""

    __slots__ = ("_common", "_heads")

    def __init__(self, host: str) -> None:
        if not is_safe_target(host):
            raise ValueError(f"host {host!r} holds spaces, control or non-ASCII characters")
        self._common = (
            f" HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"
            f"User-Agent: {USER_AGENT}\r\n"
        )
        self._heads: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def encode(self, request: Request) -> bytes:
        """The whole request, head and body."""
        body = request.body
        query = request.query_string
        wire = target_bytes(query)  # checked and encoded once
        if wire is None:
            query = wire_query(query)  # a non-ASCII key, percent-encoded
            wire = target_bytes(query)
            if wire is None:
                raise ValueError(f"query string {query!r} holds spaces or control characters")
        if type(request) is Request:  # its headers depend on the method only: cache the head
            key = (request.method, request.path)
            parts = self._heads.get(key)
            if parts is None:
                parts = self._head_parts(request)
                if len(self._heads) >= _HEADS_MAX:
                    self._heads.clear()
                self._heads[key] = parts
        else:
            parts = self._head_parts(request)
            if isinstance(body, str):
                body = body.encode("utf-8")
        prefix, suffix = parts
        return b"".join((prefix, wire, suffix, b"%d\r\n\r\n" % len(body), body))

    def _head_parts(self, request: Request) -> tuple[bytes, bytes]:
        """(``METHOD path?``, the rest of the head up to the Content-Length value)."""
        method, path = request.method, request.path
        if not is_safe_target(method + path):
            raise ValueError(f"{method} {path!r} holds spaces or control characters")
        lines = []
        for name, value in request.headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                continue  # ours; the length of the body as sent
            if not name or not is_safe_target(name) or ":" in name:
                raise ValueError(
                    f"invalid header name {name!r}: it should be non-empty printable ASCII "
                    "without spaces or colons"
                )
            if not (value + "x").isprintable() or not value.isascii():
                raise ValueError(
                    f"invalid value for header {name!r}: {value!r} should be printable ASCII"
                )
            lines.append(f"{name}: {value}\r\n")
        suffix = self._common + "".join(lines) + "Content-Length: "
        return f"{method} {path}?".encode("ascii"), suffix.encode("latin-1")


# -- answers ----------------------------------------------------------------------------------


class ResponseHeaders(Mapping[str, str]):
    """An answer's headers, case-insensitive (``headers.get("Retry-After")``).

    A field sent more than once reads as its values joined with ``", "``.
    """

    __slots__ = ("_fields", "_map")

    def __init__(self, fields: list[tuple[bytes, bytes]]) -> None:
        self._fields = fields
        self._map: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        mapping = self._map
        if mapping is None:
            mapping = {}
            for raw_name, raw_value in self._fields:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                mapping[name] = f"{mapping[name]}, {value}" if name in mapping else value
            self._map = mapping
        return mapping

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._mapping()!r})"


class ResponseReader:
    """Reads one answer from the bytes fed to it; ``feed`` says when it is complete.

    ``feed(b"")`` means the server closed the connection: that completes an answer whose body
    runs to the end of the connection, and is an error anywhere else.  Every violation raises
    :class:`ProtocolError`.
    """

    __slots__ = (
        "_body",
        "_body_size",
        "_framed",
        "_head_bytes",
        "_head_size",
        "_in_head",
        "_parser",
        "_trailers",
        "complete",
        "fields",
        "keep_alive",
        "status",
    )

    def __init__(self) -> None:
        parser = self._parser = httptools.HttpResponseParser(self)
        # A bare LF ending the status line or a header line is accepted, as http.client,
        # urllib3 and HTTP mocking libraries do (RFC 9112, 2.2 lets a recipient); a bare
        # CR, and every framing rule, stay strict.
        parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.fields: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.complete = False
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0  # bytes fed while in the head (pieces may hold body bytes too)
        self._head_bytes = 0  # the head's own bytes, as reported field by field
        self._trailers = 0
        self._in_head = True
        self._framed = False  # Content-Length or chunked: the end is known without EOF

    def next_answer(self) -> ResponseReader:
        """A reader for the connection's next answer: this one, reset, when its answer is
        complete and keeps the connection open (its parser then waits for a new message),
        else a new reader.  Saves making a parser per request on a kept-alive connection."""
        if not (self.complete and self.keep_alive):
            return ResponseReader()
        self._reset()
        return self

    @property
    def body(self) -> bytes:
        body = self._body
        return body[0] if len(body) == 1 else b"".join(body)

    @property
    def headers(self) -> ResponseHeaders:
        return ResponseHeaders(self.fields)

    @property
    def started(self) -> bool:
        """Whether any byte of an answer has arrived."""
        return self._head_size > 0 or self.complete

    def feed(self, data: bytes) -> bool:
        """Take the next bytes (``b""`` at the end of the connection); True once complete."""
        if not data:
            return self._end_of_stream()
        if self.complete:
            raise ProtocolError(f"{len(data)} unexpected bytes after the answer")
        if self._in_head:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # HttpParserCallbackError included
            if self.complete:
                # Bytes after a complete answer: the answer stands, the connection goes.
                self.keep_alive = False
                return True
            cause = exc.__context__
            if isinstance(exc, httptools.HttpParserCallbackError) and isinstance(
                cause, ProtocolError
            ):
                raise cause from None
            raise ProtocolError(f"malformed answer: {exc}") from exc
        if self._in_head and self._head_size > MAX_HEAD_BYTES:
            # A head still unfinished past the limit (an endless line, say): llhttp keeps
            # what it has not reported, so stop before it holds more than one piece extra.
            raise ProtocolError(f"answer head longer than {MAX_HEAD_BYTES} bytes")
        return self.complete

    def _end_of_stream(self) -> bool:
        if self.complete:
            return True
        if not self._in_head and not self._framed:
            self.complete = True  # the body ran to the end of the connection
            self.keep_alive = False
            return True
        where = "in the head" if self._in_head else "in the body"
        raise ProtocolError(f"the server closed the connection {where} of its answer")

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise ProtocolError("unexpected bytes after the answer")

    def on_status(self, reason: bytes) -> None:
        self._head_bytes += len(reason) + 17  # "HTTP/1.1 200 " and CRLF, and the final CRLF

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A trailer field (after a chunked body): not merged into the headers
            # (RFC 9110, 6.5.1), but counted against the same limits.
            self._trailers += 1
            if self._trailers > MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} trailer fields in the answer")
            return
        fields = self.fields
        if len(fields) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} header fields in the answer")
        size = self._head_bytes = self._head_bytes + len(name) + len(value) + 4  # CRLF, ": "
        if size > MAX_HEAD_BYTES:
            raise ProtocolError(f"answer head longer than {MAX_HEAD_BYTES} bytes")
        fields.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self.status = status = parser.get_status_code()
        if status < 100:
            raise ProtocolError(f"invalid status code {status}: it should be 100 to 999")
        if status == 101 or parser.should_upgrade():
            raise ProtocolError(f"unexpected protocol switch (status {status})")
        self.keep_alive = parser.should_keep_alive()
        self._in_head = False
        coding = b""
        for name, value in self.fields:
            size = len(name)  # lower() only the names that may be one of the two
            if size == 14 and name.lower() == b"content-length":
                self._framed = True
            elif size == 17 and name.lower() == b"transfer-encoding":
                coding = value.rsplit(b",", 1)[-1].strip().lower()
        if coding == b"chunked":  # chunked only when it is the last coding (RFC 9112, 6.3)
            self._framed = True
        if 100 <= status < 200 or status in (204, 304):
            self._framed = True  # never a body

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            raise ProtocolError(f"answer body longer than {MAX_BODY_BYTES} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            # An interim answer (103 Early Hints, say): the real one follows.
            self.fields = []
            self._in_head = True
            self._framed = False
            self._head_bytes = 0
            return
        self.complete = True

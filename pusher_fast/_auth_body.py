"""The body pusher-js posts to an auth endpoint, parsed strictly.

pusher-js sends ``socket_id=...&channel_name=...`` (form-encoded, then any
``params`` the app configured); other clients send JSON.  Only the fields the
caller asks for are read, and each must appear exactly once as a string: a
repeated ``socket_id`` or ``channel_name`` is refused rather than resolved,
since two parsers picking different copies is how signatures get forged.
Every refusal is a ``ValueError`` naming the problem (``TypeError`` for a body
of the wrong Python type).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

#: The largest auth body accepted, in bytes: pusher-js sends well under 1 KB.
MAX_AUTH_BODY_BYTES = 16384

CHANNEL_FIELDS = ("socket_id", "channel_name")
USER_FIELDS = ("socket_id",)

# pusher-js's body for a channel of the unescaped alphabet, optionally followed
# by params without escapes (group 3; the caller checks it names no second
# socket_id or channel_name): the common case, read with one regex.  Anything
# else (channel names with = @ , ; arrive percent-encoded) takes the general parse.
PUSHER_JS_FORM = re.compile(r"socket_id=([0-9]+\.[0-9]+)&channel_name=([-a-zA-Z0-9_.]+)(&[^%]*)?")


def _no_repeat(tail: str | None) -> bool:
    return not tail or ("socket_id" not in tail and "channel_name" not in tail)


def tail_is_clean(tail: str) -> bool:
    """True if the general parse accepts form ``tail`` and finds no field of a channel body in it.

    One decode of the whole tail: every name it holds, decoded, is a substring of
    that (a raw '&' or '=' is never part of an escape), and the tail's escapes are
    UTF-8 exactly when each name's and value's are.  A '+' decoding to a space
    cannot make a field name, so it is left as is.  False is only "not sure".
    """
    if "socket_id" in tail or "channel_name" in tail:
        return False
    decoded = urllib.parse.unquote_to_bytes(tail)
    if decoded.find(b"socket_id") >= 0 or decoded.find(b"channel_name") >= 0:
        return False
    if decoded.isascii():
        return True
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def unescape_channel(channel: str) -> str:
    """``channel`` with the escapes pusher-js writes for ``@ = , ;`` decoded.

    Each replaced ``%XX`` begins at a '%' the left-to-right decoder would also
    start from, so if no '%' is left the result is the full decoding; if one is,
    the caller's checks refuse the value (and the general parse decides).
    """
    return channel.replace("%40", "@").replace("%3D", "=").replace("%2C", ",").replace("%3B", ";")


def _too_large(size: int, limit: int) -> ValueError:
    return ValueError(f"auth request body is {size} bytes; the limit is {limit}")


def parse_channel_body(body: Any, max_bytes: int = MAX_AUTH_BODY_BYTES) -> tuple[str, str]:
    """``(socket_id, channel_name)`` from a channel-authorization body (not yet validated)."""
    # (A body that starts with whitespace, or is empty, takes the general parse.)
    if body.__class__ is bytes and len(body) <= max_bytes and body[:1] not in b" \t\r\n":
        # The usual shapes, straight to their parser; parse_auth_body does the same
        # for every other input.
        if body[:1] == b"{":
            fields = _from_json(body, CHANNEL_FIELDS)
        else:
            if body.isascii():
                match = PUSHER_JS_FORM.fullmatch(body.decode("ascii"))
                if match is not None:
                    socket_id, channel, tail = match.groups()
                    if _no_repeat(tail):
                        return socket_id, channel
            fields = _from_form(body, CHANNEL_FIELDS)
    else:
        fields = parse_auth_body(body, CHANNEL_FIELDS, max_bytes)
    return fields["socket_id"], fields["channel_name"]


def parse_user_body(body: Any, max_bytes: int = MAX_AUTH_BODY_BYTES) -> str:
    """The ``socket_id`` of a user-authentication body (not yet validated)."""
    return parse_auth_body(body, USER_FIELDS, max_bytes)["socket_id"]


def parse_auth_body(
    body: Any, fields: tuple[str, ...], max_bytes: int = MAX_AUTH_BODY_BYTES
) -> dict[str, str]:
    """The string value of each of ``fields`` in ``body``.

    ``body`` is bytes or str (form-encoded, or a JSON object when it starts
    with ``{``), or an already-parsed mapping whose values are strings or
    one-string lists (as ``QueryDict``/``MultiDict`` give with ``lists()``).
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
    elif isinstance(body, str):
        if len(body) > max_bytes:  # each character is at least one byte
            raise _too_large(len(body), max_bytes)
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("auth request body is not valid Unicode text") from None
    elif isinstance(body, Mapping):
        return _from_mapping(body, fields)
    else:
        raise TypeError(
            f"auth request body should be bytes, str or a mapping, got {type(body).__name__}"
        )
    if len(raw) > max_bytes:
        raise _too_large(len(raw), max_bytes)
    if raw.lstrip()[:1] == b"{":
        return _from_json(raw, fields)
    return _from_form(raw, fields)


def _from_json(raw: bytes, fields: tuple[str, ...]) -> dict[str, str]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError("auth request body starts with '{' but is not valid JSON") from None
    if not isinstance(parsed, dict):  # pragma: no cover - '{' always parses to an object
        raise ValueError("auth request body is not a JSON object")
    repeated = _repeated_keys(raw, fields)
    if repeated:
        raise ValueError(f"auth request body has {repeated!r} more than once")
    out: dict[str, str] = {}
    for name in fields:
        if name not in parsed:
            raise ValueError(f"auth request body has no {name!r} field")
        value = parsed[name]
        if not isinstance(value, str):
            raise ValueError(
                f"auth request field {name!r} should be a string, got {type(value).__name__}"
            )
        out[name] = value
    return out


def _repeated_keys(raw: bytes, fields: tuple[str, ...]) -> list[str]:
    """The ``fields`` the top-level JSON object names more than once (orjson keeps the last
    silently; two parsers picking different copies is how signatures get forged)."""
    if b"\\" not in raw and all(raw.count(b'"%s"' % f.encode()) <= 1 for f in fields):
        return []  # each field written at most once, literally: no repeat possible
    objects: list[list[str]] = []

    def keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        objects.append([key for key, _ in pairs])
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=keys)
    except ValueError:
        raise ValueError("auth request body starts with '{' but is not valid JSON") from None
    top = objects[-1]  # the outermost object is completed last
    return [f for f in fields if top.count(f) > 1]


def _from_form(raw: bytes, fields: tuple[str, ...]) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("auth request body is not valid UTF-8") from None
    found: dict[str, str] = {}
    escaped = "%" in text or "+" in text
    for piece in text.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        if escaped and ("%" in piece or "+" in piece):
            name, value = _unquote_pair(name, value)
        if name not in fields:
            continue
        if not sep:
            raise ValueError(f"auth request field {name!r} has no '=' and no value")
        if name in found:
            raise ValueError(f"auth request body repeats the {name!r} field")
        found[name] = value
    for name in fields:
        if name not in found:
            raise ValueError(f"auth request body has no {name!r} field")
    return found


def _unquote_pair(name: str, value: str) -> tuple[str, str]:
    try:
        return _unquote(name), _unquote(value)
    except UnicodeDecodeError:
        raise ValueError("auth request body holds a percent-escape that is not UTF-8") from None


def _unquote(text: str) -> str:
    """Form decoding (``+`` is a space, ``%XX`` a byte, UTF-8), strict about the result."""
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    # unquote_to_bytes is several times faster than unquote_plus; invalid escapes stay literal.
    return urllib.parse.unquote_to_bytes(text).decode("utf-8")


def _from_mapping(body: Mapping[Any, Any], fields: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in fields:
        if name not in body:
            raise ValueError(f"auth request body has no {name!r} field")
        value = body[name]
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(
                    f"auth request field {name!r} has {len(value)} values; it needs exactly one"
                )
            value = value[0]
        if not isinstance(value, str):
            raise ValueError(
                f"auth request field {name!r} should be a string, got {type(value).__name__}"
            )
        out[name] = value
    return out

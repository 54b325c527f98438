"""Webhooks: verify the raw body, then read it as typed events.

The functions here are pure: they take the accepted credentials (``Token``:
a key and the ``Signer`` of its secret), the client's ``json_decoder`` and its
encrypted-channel boxes, and raise :class:`~pusher_fast.errors.PusherWebhookError`
with the failed check as ``reason``.  ``Pusher.webhook`` and
``Pusher.validate_webhook`` are both built on :func:`verify`.

The typed result follows the Go library's ``Webhook`` / ``WebhookEvent``
(``time_ms``, ``events``; ``name``, ``channel``, ``event``, ``data``,
``socket_id``, ``user_id``), with ``None`` where Go has an empty string.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from . import _json
from ._crypto import ChannelBoxes
from ._validation import ENCRYPTED_PREFIX
from .errors import PusherWebhookError, WebhookReason

#: A webhook whose ``time_ms`` is further than this from now is refused (replays).
MAX_WEBHOOK_AGE_MS = 300_000

KEY_HEADER = "X-Pusher-Key"
SIGNATURE_HEADER = "X-Pusher-Signature"


class Token(NamedTuple):
    """One accepted key and the signer of its secret."""

    key: str
    signer: Any  # pusher_fast._signing.Signer (either path)


@dataclass(frozen=True)
class WebhookEvent:
    """One event of a webhook (``channel_occupied``, ``member_added``, ``client_event``, ...)."""

    name: str
    channel: str
    event: Optional[str] = None  # client events: the event name
    data: Optional[str] = None  # client events: the data as JSON text (decrypted if possible)
    socket_id: Optional[str] = None  # client events: the sender
    user_id: Optional[str] = None  # member_added/member_removed, presence client events


@dataclass(frozen=True)
class Webhook:
    """A verified webhook: when it was sent and its events, in order."""

    time_ms: int
    events: tuple[WebhookEvent, ...]


def _fail(reason: WebhookReason, message: str) -> PusherWebhookError:
    return PusherWebhookError(reason, message)


def raw_body(body: Any) -> bytes:
    """The bytes the signature covers; TypeError for a body that is not str or bytes."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(WebhookReason.NOT_JSON, "webhook body is not valid Unicode text") from None
    raise TypeError(
        f"webhook body should be the raw bytes or str, got {type(body).__name__}: "
        "pass the request's raw body, not a parsed one"
    )


def header(headers: Any, name: str) -> str | None:
    """``name`` from a mapping of headers (or a list of pairs), case-insensitively."""
    value: Any = None
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
    if value is None:
        items = headers.items() if hasattr(headers, "items") else headers
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise TypeError(
                f"headers should be a mapping of request headers, got {type(headers).__name__}"
            )
        wanted = name.lower()
        for key, item in items:
            if isinstance(key, bytes):
                key = key.decode("latin-1")
            if isinstance(key, str) and key.lower() == wanted:
                value = item
                break
    if isinstance(value, (list, tuple)):  # e.g. a mapping of header lists
        value = value[0] if value else None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    return value if isinstance(value, str) else None


def verify(
    tokens: Sequence[Token],
    key: str | None,
    signature: str | None,
    raw: bytes,
    json_decoder: type[json.JSONDecoder] | None = None,
    now_ms: float | None = None,
) -> dict[str, Any]:
    """The payload of a webhook signed by one of ``tokens``; PusherWebhookError otherwise.

    Checks, in order: both headers present, the key is known, the signature
    is the HMAC-SHA256 of ``raw`` (constant time, every token with that key is
    tried: a secret can rotate under the same key), the body is a JSON object
    with a numeric ``time_ms`` within 5 minutes of now.
    """
    if not key:
        raise _fail(WebhookReason.MISSING_HEADER, f"webhook has no {KEY_HEADER} header")
    if not signature:
        raise _fail(WebhookReason.MISSING_HEADER, f"webhook has no {SIGNATURE_HEADER} header")
    _check_signature(tokens, key, signature, raw)
    payload = _payload(raw, json_decoder)
    time_ms = payload.get("time_ms")
    if not time_ms or not isinstance(time_ms, (int, float)) or isinstance(time_ms, bool):
        raise _fail(WebhookReason.BAD_SHAPE, "webhook body has no numeric 'time_ms'")
    if now_ms is None:
        now_ms = time.time() * 1000
    if abs(now_ms - time_ms) > MAX_WEBHOOK_AGE_MS:
        raise _fail(
            WebhookReason.STALE,
            f"webhook time_ms {time_ms} is more than {MAX_WEBHOOK_AGE_MS // 1000} s from now",
        )
    return payload


def _check_signature(tokens: Sequence[Token], key: str, signature: str, raw: bytes) -> None:
    """Raise unless a token with ``key`` signed ``raw`` (each such token is tried)."""
    known = False
    for token in tokens:
        if token.key == key:
            known = True
            if token.signer.verify(raw, signature):
                return
    if not known:
        raise _fail(
            WebhookReason.UNKNOWN_KEY, f"webhook {KEY_HEADER} {key[:64]!r} is not a key of this app"
        )
    raise _fail(
        WebhookReason.BAD_SIGNATURE,
        f"webhook {SIGNATURE_HEADER} is not the signature of its body under key {key!r}",
    )


def _payload(raw: bytes, json_decoder: type[json.JSONDecoder] | None) -> dict[str, Any]:
    """The body as a JSON object, or the webhook error saying why it is not one."""
    try:
        if json_decoder is not None:
            payload = json.loads(raw.decode("utf-8"), cls=json_decoder)
        else:
            payload = _json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError included
        raise _fail(WebhookReason.NOT_JSON, "webhook body is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise _fail(WebhookReason.BAD_SHAPE, "webhook body is not a JSON object")
    return payload


def _decrypt(boxes: ChannelBoxes, channel: str, data: str) -> str:
    try:
        sealed = _json.loads(data)
        return boxes.decrypt(channel, sealed["nonce"], sealed["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise _fail(
            WebhookReason.DECRYPTION_FAILED,
            f"webhook event data on {channel!r} could not be decrypted",
        ) from None


def decrypt_events(payload: dict[str, Any], boxes: ChannelBoxes) -> None:
    """Replace the ``data`` of events on encrypted channels with its plaintext, in place."""
    events = payload.get("events")
    if not isinstance(events, list):
        return
    for event in events:
        if not isinstance(event, dict):
            continue
        channel = event.get("channel")
        data = event.get("data")
        if isinstance(channel, str) and channel.startswith(ENCRYPTED_PREFIX):
            if isinstance(data, str):
                event["data"] = _decrypt(boxes, channel, data)


def _optional_text(event: Mapping[str, Any], field: str, index: int) -> str | None:
    value = event.get(field)
    if value is None or isinstance(value, str):
        return value
    raise _fail(
        WebhookReason.BAD_SHAPE,
        f"webhook events[{index}].{field} should be a string, got {type(value).__name__}",
    )


def to_webhook(payload: Mapping[str, Any], boxes: ChannelBoxes | None) -> Webhook:
    """The typed :class:`Webhook` of a verified payload.

    ``data`` that is not a string (soketi forwards a client event's data as the
    JSON value the client sent, where Pusher sends it as JSON text) becomes
    compact JSON text, so ``data`` is always ``str`` or ``None``.  With
    ``boxes`` (the client has a master key), data on encrypted channels is
    decrypted.
    """
    time_ms = payload.get("time_ms")
    if isinstance(time_ms, float) and time_ms.is_integer():
        time_ms = int(time_ms)
    if not isinstance(time_ms, int) or isinstance(time_ms, bool):
        raise _fail(WebhookReason.BAD_SHAPE, "webhook 'time_ms' is not an integer")
    raw_events = payload.get("events")
    if not isinstance(raw_events, list):
        raise _fail(WebhookReason.BAD_SHAPE, "webhook body has no 'events' list")
    events = []
    for index, event in enumerate(raw_events):
        if not isinstance(event, dict):
            raise _fail(WebhookReason.BAD_SHAPE, f"webhook events[{index}] is not an object")
        name = event.get("name")
        channel = event.get("channel")
        if not isinstance(name, str) or not isinstance(channel, str):
            raise _fail(
                WebhookReason.BAD_SHAPE,
                f"webhook events[{index}] needs a string 'name' and 'channel'",
            )
        data = event.get("data")
        if data is not None and not isinstance(data, str):
            try:
                data = _json.dumps(data)
            except (TypeError, ValueError):
                raise _fail(
                    WebhookReason.BAD_SHAPE, f"webhook events[{index}].data is not JSON data"
                ) from None
        elif data is not None and boxes is not None and channel.startswith(ENCRYPTED_PREFIX):
            data = _decrypt(boxes, channel, data)
        events.append(
            WebhookEvent(
                name=name,
                channel=channel,
                event=_optional_text(event, "event", index),
                data=data,
                socket_id=_optional_text(event, "socket_id", index),
                user_id=_optional_text(event, "user_id", index),
            )
        )
    return Webhook(time_ms=time_ms, events=tuple(events))


def tokens_from(extra_tokens: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """``(key, secret)`` pairs from ``[{"key": ..., "secret": ...}, ...]``, checked."""
    if extra_tokens is None:
        return []
    if isinstance(extra_tokens, (Mapping, str, bytes)):
        raise TypeError(
            "extra_tokens should be a list of {'key': ..., 'secret': ...} dicts, "
            f"got {type(extra_tokens).__name__}"
        )
    pairs = []
    for index, token in enumerate(extra_tokens):
        if not isinstance(token, Mapping):
            raise TypeError(f"extra_tokens[{index}] should be a dict, got {type(token).__name__}")
        key = token.get("key")
        secret = token.get("secret")
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ValueError(f"extra_tokens[{index}] needs a non-empty string 'key' and 'secret'")
        pairs.append((key, secret))
    return pairs

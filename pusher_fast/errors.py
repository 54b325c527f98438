"""Exceptions raised by pusher_fast, the same hierarchy as ``pusher.errors``.

``PusherError`` is the base; the HTTP API's answers map onto
``PusherBadRequest`` (400), ``PusherBadAuth`` (401), ``PusherForbidden`` (403)
and ``PusherBadStatus`` (any other non-success status).  A request that never
got an answer (connection refused, reset, timed out) raises
``PusherTransportError``.  Bad arguments raise ``ValueError`` or ``TypeError``
before anything is sent, as the official library does.
"""

from __future__ import annotations

import enum


class PusherError(Exception):
    """Base class of every error the Pusher HTTP API or its transport reports."""

    #: The HTTP status the API answered with (None: no answer).
    status: int | None = None


class PusherBadRequest(PusherError):
    """The API answered 400: the request was malformed or broke a limit."""

    status = 400


class PusherBadAuth(PusherError):
    """The API answered 401: the key, signature or timestamp was refused."""

    status = 401


class PusherForbidden(PusherError):
    """The API answered 403: the app is disabled or over its quota."""

    status = 403


class PusherBadStatus(PusherError):
    """The API answered with another non-success status (413, 429, 5xx, ...)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PusherTransportError(PusherError):
    """No answer from the API: connection refused or reset, or a timeout.

    ``ambiguous`` is True when the request was fully sent before the failure (a read
    timeout, the connection lost before or during the answer): the API may have processed
    it.  False means it surely was not (refused, or the request could not be written).
    """

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class WebhookReason(str, enum.Enum):
    """Why a webhook was refused (``PusherWebhookError.reason``)."""

    MISSING_HEADER = "missing_header"  # no X-Pusher-Key or X-Pusher-Signature
    UNKNOWN_KEY = "unknown_key"  # X-Pusher-Key is none of the accepted keys
    BAD_SIGNATURE = "bad_signature"  # not the HMAC of the raw body under that key's secret
    STALE = "stale"  # time_ms more than 5 minutes away from now
    NOT_JSON = "not_json"  # the body is not UTF-8 JSON
    BAD_SHAPE = "bad_shape"  # JSON, but not {"time_ms": int, "events": [{...}]}
    DECRYPTION_FAILED = "decryption_failed"  # an encrypted event's data did not decrypt


class PusherWebhookError(PusherError, ValueError):
    """A webhook that cannot be trusted or read; ``reason`` says which check failed."""

    def __init__(self, reason: WebhookReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    #: Signature, key and freshness failures are authentication failures (401); the
    #: others are a bad request (400).
    @property
    def http_status(self) -> int:
        if self.reason in _AUTH_REASONS:
            return 401
        return 400


_AUTH_REASONS = frozenset(
    (
        WebhookReason.MISSING_HEADER,
        WebhookReason.UNKNOWN_KEY,
        WebhookReason.BAD_SIGNATURE,
        WebhookReason.STALE,
    )
)


__all__ = [
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherError",
    "PusherForbidden",
    "PusherTransportError",
    "PusherWebhookError",
    "WebhookReason",
]

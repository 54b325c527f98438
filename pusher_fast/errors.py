"""Exceptions raised by pusher_fast, the same hierarchy as ``pusher.errors``.

``PusherError`` is the base; the HTTP API's answers map onto
``PusherBadRequest`` (400), ``PusherBadAuth`` (401), ``PusherForbidden`` (403)
and ``PusherBadStatus`` (any other non-success status).  A request that never
got an answer (connection refused, reset, timed out) raises
``PusherTransportError``.  Bad arguments raise ``ValueError`` or ``TypeError``
before anything is sent, as the official library does.
"""

from __future__ import annotations


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


__all__ = [
    "PusherBadAuth",
    "PusherBadRequest",
    "PusherBadStatus",
    "PusherError",
    "PusherForbidden",
    "PusherTransportError",
]

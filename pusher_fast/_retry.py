"""The delivery policy: what is retried, how long to wait, when to stop.

One immutable :class:`DeliveryPolicy` serves every sender: the transports' ``retries=``
(:func:`make_policy`, :func:`send_with_policy`) and the bulk senders
(:meth:`DeliveryPolicy.for_bulk`, :func:`classify`, :func:`error_outcome`).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from urllib3.util.retry import Retry

from . import _json
from ._observe import ATTEMPT, log_retry
from .errors import PusherError, PusherTransportError

RetriesArg = Union[int, Retry, None, bool]
#: (status, body, headers) of one answer.
Raw = tuple[int, bytes, Mapping[str, str]]

#: Statuses that mean "not taken, try again later", retried by every sender: 408 (the
#: server timed out waiting for the request), 429 (rate limited) and the transient 5xx.
#: Other 5xx (501, 505, ...) are permanent.
RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))

#: The longest ``Retry-After`` a transport's ``retries=`` honours (seconds); a longer one
#: is not waited for: the answer is returned (raised) as it is.
RETRY_AFTER_MAX = 60.0


def retry_after_seconds(headers: Optional[Mapping[str, str]]) -> float | None:
    """A ``Retry-After`` header's delay in seconds (a number or an HTTP date), or None."""
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Outcome:
    """What one attempt at sending came to (the bulk senders' view of an answer)."""

    delivered: bool
    status: Optional[int]
    reason: str
    retryable: bool
    retry_after: Optional[float] = None
    ambiguous: bool = False


@dataclass(frozen=True)
class DeliveryPolicy:
    """What a sender retries; immutable, shared by threads.

    ``total`` retries after the first attempt; backoff ``backoff_factor * 2**(n-1)``
    capped at ``backoff_max``, with equal jitter; ``status_forcelist`` answers are
    retried, after their ``Retry-After`` when ``respect_retry_after``; an outcome that
    may have been processed is retried only when ``at_least_once``.  A ``Retry-After``
    over :data:`RETRY_AFTER_MAX` ends the retries, unless ``cap_retry_after`` (the bulk
    senders): then it is waited for ``backoff_max`` at most.
    """

    total: int = 0
    backoff_factor: float = 0.2
    backoff_max: float = 5.0
    status_forcelist: frozenset[int] = RETRY_STATUSES
    respect_retry_after: bool = True
    at_least_once: bool = False
    cap_retry_after: bool = False

    @classmethod
    def for_bulk(
        cls, retries: int, backoff_base: float, backoff_max: float, at_least_once: bool
    ) -> DeliveryPolicy:
        """The bulk senders' policy: their own count and backoff, ``Retry-After`` capped."""
        return cls(retries, backoff_base, backoff_max, RETRY_STATUSES, True, at_least_once, True)

    def retry_status(self, attempt: int, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying after answer ``status`` (None: do not retry).

        ``attempt`` counts the attempts made so far (1 after the first).
        """
        if attempt > self.total or status not in self.status_forcelist:
            return None
        return self.wait(attempt, retry_after_seconds(headers))

    def retry_error(self, attempt: int, ambiguous: bool) -> float | None:
        """Seconds to wait before retrying after a transport failure (None: raise it)."""
        if attempt > self.total or (ambiguous and not self.at_least_once):
            return None
        return self.backoff(attempt)

    def retry_outcome(self, attempt: int, outcome: Outcome) -> float | None:
        """Seconds to wait before retrying after a failed ``outcome`` (None: it stands)."""
        if outcome.ambiguous:
            if not self.at_least_once:
                return None
        elif not outcome.retryable:
            return None
        if attempt > self.total:
            return None
        return self.wait(attempt, outcome.retry_after)

    def wait(self, attempt: int, retry_after: float | None) -> float | None:
        """The wait before the next attempt: ``Retry-After`` when given (and honoured),
        else :meth:`backoff`; None when it is too long to wait for."""
        if retry_after is None or not self.respect_retry_after:
            return self.backoff(attempt)
        if self.cap_retry_after:
            return min(retry_after, self.backoff_max)
        return retry_after if retry_after <= RETRY_AFTER_MAX else None

    def backoff(self, attempt: int) -> float:
        """Exponential backoff capped at ``backoff_max``, with equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_factor * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2


def make_policy(retries: RetriesArg, at_least_once: bool = False) -> DeliveryPolicy:
    """The :class:`DeliveryPolicy` for a client's ``retries=`` and ``at_least_once=``."""
    if not isinstance(at_least_once, bool):
        raise TypeError(f"at_least_once should be a bool, got {at_least_once!r}")
    if isinstance(retries, Retry):
        total = retries.total
        if not isinstance(total, int) or isinstance(total, bool):
            # total=None/False: urllib3 then counts per kind; take the largest count given.
            counts = [retries.connect, retries.read, retries.status]
            total = max([c for c in counts if type(c) is int] or [0])
        backoff_max = getattr(retries, "backoff_max", None) or Retry.DEFAULT_BACKOFF_MAX
        return DeliveryPolicy(
            total=max(0, total),
            backoff_factor=float(retries.backoff_factor),
            backoff_max=float(backoff_max),
            status_forcelist=frozenset(retries.status_forcelist or RETRY_STATUSES),
            respect_retry_after=bool(retries.respect_retry_after_header),
            at_least_once=at_least_once,
        )
    if retries is None or retries is False:
        count = 0
    elif retries is True:
        count = 3
    elif isinstance(retries, int) and retries >= 0:
        count = retries
    else:
        raise TypeError(f"retries should be a non-negative int or a urllib3.Retry, got {retries!r}")
    return DeliveryPolicy(total=count, at_least_once=at_least_once)


def _next_wait(
    policy: DeliveryPolicy, made: int, outcome: Union[Raw, PusherTransportError]
) -> float | None:
    """The wait before attempt ``made + 1`` after ``outcome`` (None: it stands)."""
    if isinstance(outcome, PusherTransportError):
        return policy.retry_error(made, outcome.ambiguous)
    return policy.retry_status(made, outcome[0], outcome[2])


class _Attempts:
    """The bookkeeping both retry loops share.  ``with`` it around each attempt, storing
    the answer in ``outcome``: it numbers the attempt in :data:`ATTEMPT` (from the second
    on: the records and logs read 1 when unset) and takes a ``PusherTransportError`` as
    the outcome; then :meth:`next_wait` says how long to wait (None: return
    :meth:`final`)."""

    __slots__ = ("_policy", "_request", "_token", "made", "outcome")

    def __init__(self, policy: DeliveryPolicy, request: Any) -> None:
        self._policy = policy
        self._request = request
        self.made = 0
        self.outcome: Union[Raw, PusherTransportError]

    def __enter__(self) -> None:
        self.made += 1
        self._token = ATTEMPT.set(self.made) if self.made > 1 else None

    def __exit__(self, exc_type: object, exc: Optional[BaseException], tb: object) -> bool:
        if self._token is not None:
            ATTEMPT.reset(self._token)
        if isinstance(exc, PusherTransportError):
            self.outcome = exc
            return True
        return False

    def next_wait(self) -> float | None:
        """The wait before the next attempt, logged (None: the outcome stands)."""
        delay = _next_wait(self._policy, self.made, self.outcome)
        if delay is not None:
            log_retry(self._request, self.made, self.outcome, delay)
        return delay

    def final(self) -> Raw:
        """The answer that stands, or its ``PusherTransportError`` raised."""
        if isinstance(self.outcome, PusherTransportError):
            raise self.outcome
        return self.outcome


def send_with_policy(policy: DeliveryPolicy, attempt: Callable[[Any], Raw], request: Any) -> Raw:
    """``attempt(request)`` until ``policy`` says the outcome stands (blocking waits)."""
    attempts = _Attempts(policy, request)
    while True:
        with attempts:
            attempts.outcome = attempt(request)
        if (delay := attempts.next_wait()) is None:
            return attempts.final()
        time.sleep(delay)


async def async_send_with_policy(
    policy: DeliveryPolicy, attempt: Callable[[Any], Awaitable[Raw]], request: Any
) -> Raw:
    """:func:`send_with_policy` for coroutines."""
    attempts = _Attempts(policy, request)
    while True:
        with attempts:
            attempts.outcome = await attempt(request)
        if (delay := attempts.next_wait()) is None:
            return attempts.final()
        await asyncio.sleep(delay)


# -- the bulk senders' view: an answer or an error as an Outcome -------------------------------


def classify(status: int, body: bytes, headers: Mapping[str, str]) -> Outcome:
    """Map an HTTP answer to an outcome (shared by the sync and async bulk senders)."""
    if status in (200, 202):
        # soketi (and other Pusher-protocol servers) answer errors with 200 and
        # {"error": ..., "code": N}; the official service never does.
        if body[:1] == b"{" and body.find(b'"error"') >= 0:  # not `in`: see _events.short_data
            try:
                parsed = _json.loads(body)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "error" in parsed:
                code = parsed.get("code")
                status = code if isinstance(code, int) else 400
                return _failure(status, str(parsed.get("error")), headers)
        # Immutable, so shared: no allocation per delivered batch.
        return _DELIVERED_200 if status == 200 else _DELIVERED_202
    return _failure(status, body.decode("utf-8", "replace")[:300], headers)


_DELIVERED_200 = Outcome(True, 200, "", False)
_DELIVERED_202 = Outcome(True, 202, "", False)


def _failure(status: int, text: str, headers: Mapping[str, str]) -> Outcome:
    retryable = status in RETRY_STATUSES
    retry_after = retry_after_seconds(headers) if retryable else None
    return Outcome(False, status, f"{status}: {text}", retryable, retry_after)


def error_outcome(exc: PusherError) -> Outcome:
    """The outcome of an attempt that raised (transport failure or an API error status)."""
    if isinstance(exc, PusherTransportError):
        ambiguous = bool(getattr(exc, "ambiguous", False))
        return Outcome(False, None, f"transport: {exc}", True, None, ambiguous)
    status = exc.status or 400
    return Outcome(False, status, str(exc), status in RETRY_STATUSES)


__all__ = [
    "RETRY_AFTER_MAX",
    "RETRY_STATUSES",
    "DeliveryPolicy",
    "Outcome",
    "RetriesArg",
    "async_send_with_policy",
    "classify",
    "error_outcome",
    "make_policy",
    "retry_after_seconds",
    "send_with_policy",
]

"""The delivery policy every transport follows, and the urllib3 transport.

**Delivery policy** (:class:`DeliveryPolicy`, made from the client's ``retries=`` and
``at_least_once=``):

- A request is sent again without being asked only when it surely was not processed: the
  kept-alive connection it was to use was found closed before the request was written, or
  writing it failed.  Then it goes once more on a new connection.
- With ``retries=`` (a count, or a ``urllib3.Retry`` read as a policy: ``total``,
  ``backoff_factor``, ``backoff_max``, ``status_forcelist``, ``respect_retry_after_header``),
  the answers in :data:`RETRY_STATUSES` (408, 429, 500, 502, 503, 504) and connection failures
  before the request was fully written are retried, with capped, jittered exponential
  backoff; ``Retry-After`` (seconds or an HTTP date, up to :data:`RETRY_AFTER_MAX`) is
  honoured.
- An outcome that may have been processed (a read timeout, the connection lost after the
  request was fully written, a broken answer) raises a ``PusherTransportError`` whose
  ``ambiguous`` is True.  It is retried only with ``at_least_once=True`` (and retries left).

**The urllib3 transport** (:class:`Urllib3Backend`): used for proxies and a user's
``pool_manager=``.  TLS is verified against the system's CA store (``ca_certs=`` for another
bundle).  Proxies come from the standard environment variables (``https_proxy``,
``http_proxy``, ``no_proxy``).  urllib3's own retries are off: the policy above applies.
``client.timeout`` bounds connecting and reading the head (urllib3's ``Timeout(total=)``,
per read for the head) and the whole body (each read gets the time left).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import ssl
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import urllib3
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from ._options import CertArg, ProxiesArg, VerifyArg, is_default_tls, select_proxy, ssl_context
from ._request import Request, process_response
from .errors import PusherTransportError

if TYPE_CHECKING:
    from .client import Pusher

RetriesArg = Union[int, Retry, None, bool]

#: Statuses that mean "not taken, try again later", retried under ``retries=`` by every
#: transport and by the bulk senders: 408 (the server timed out waiting for the request),
#: 429 (rate limited) and the transient 5xx.  Other 5xx (501, 505, ...) are permanent.
RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))

#: The longest ``Retry-After`` honoured (seconds); a longer one is not waited for: the
#: answer is returned (raised) as it is.
RETRY_AFTER_MAX = 60.0


@dataclass(frozen=True)
class DeliveryPolicy:
    """What a transport retries (see the module docstring); immutable, shared by threads."""

    total: int = 0
    backoff_factor: float = 0.2
    backoff_max: float = 5.0
    status_forcelist: frozenset[int] = RETRY_STATUSES
    respect_retry_after: bool = True
    at_least_once: bool = False

    def retry_status(self, attempt: int, status: int, headers: Mapping[str, str]) -> float | None:
        """Seconds to wait before retrying after answer ``status`` (None: do not retry).

        ``attempt`` counts the attempts made so far (1 after the first).
        """
        if attempt > self.total or status not in self.status_forcelist:
            return None
        retry_after = retry_after_seconds(headers) if self.respect_retry_after else None
        if retry_after is not None:
            return retry_after if retry_after <= RETRY_AFTER_MAX else None
        return self.backoff(attempt)

    def retry_error(self, attempt: int, ambiguous: bool) -> float | None:
        """Seconds to wait before retrying after a transport failure (None: raise it)."""
        if attempt > self.total or (ambiguous and not self.at_least_once):
            return None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff capped at ``backoff_max``, with equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_factor * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2


NO_RETRIES = DeliveryPolicy()


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


def send_with_policy(
    policy: DeliveryPolicy,
    attempt: Callable[[Request], tuple[int, bytes, Mapping[str, str]]],
    request: Request,
) -> tuple[int, bytes, Mapping[str, str]]:
    """``attempt(request)`` until ``policy`` says the outcome stands (blocking waits)."""
    made = 0
    while True:
        made += 1
        try:
            status, body, headers = attempt(request)
        except PusherTransportError as exc:
            delay = policy.retry_error(made, exc.ambiguous)
            if delay is None:
                raise
        else:
            delay = policy.retry_status(made, status, headers)
            if delay is None:
                return status, body, headers
        time.sleep(delay)


async def async_send_with_policy(
    policy: DeliveryPolicy,
    attempt: Callable[[Request], Awaitable[tuple[int, bytes, Mapping[str, str]]]],
    request: Request,
) -> tuple[int, bytes, Mapping[str, str]]:
    """:func:`send_with_policy` for coroutines."""
    made = 0
    while True:
        made += 1
        try:
            status, body, headers = await attempt(request)
        except PusherTransportError as exc:
            delay = policy.retry_error(made, exc.ambiguous)
            if delay is None:
                raise
        else:
            delay = policy.retry_status(made, status, headers)
            if delay is None:
                return status, body, headers
        await asyncio.sleep(delay)


def _proxy_for(scheme: str, host: str, proxies: ProxiesArg = None) -> str | None:
    """The proxy for ``scheme://host``: explicit ``proxies`` first, then the environment."""
    return select_proxy(proxies, scheme, host)


class Urllib3Backend:
    """Sends requests over one ``urllib3.PoolManager`` (keep-alive, thread-safe).

    Options: ``pool_manager`` (inject your own), ``maxsize`` (connections kept,
    default 10), ``retries`` and ``at_least_once`` (see :func:`make_policy`), ``ca_certs``,
    and requests' ``verify``, ``cert`` and ``proxies`` (see :mod:`pusher_fast._options`).
    urllib3 checks a kept-alive connection before reusing it (a closed one is replaced
    before the request is written); nothing is resent after a failure unless the policy
    says so.
    """

    def __init__(
        self,
        client: Pusher,
        *,
        pool_manager: urllib3.PoolManager | None = None,
        maxsize: int = 10,
        retries: RetriesArg = None,
        at_least_once: bool = False,
        ca_certs: str | None = None,
        verify: VerifyArg = True,
        cert: CertArg = None,
        proxies: ProxiesArg = None,
        **pool_options: Any,
    ) -> None:
        self.client = client
        self._total = float(client.timeout)
        self.policy = make_policy(retries, at_least_once)
        self._proxied = False
        self._owns_pool = pool_manager is None
        if pool_manager is None:
            kwargs: dict[str, Any] = {"maxsize": maxsize, "block": False, **pool_options}
            if client.ssl and not is_default_tls(verify, cert):
                # One context for verify=/cert=, the same as the built-in transports'.
                context = ssl_context(ca_certs, verify, cert)
                kwargs["ssl_context"] = context
                if context.verify_mode == ssl.CERT_NONE:
                    kwargs["cert_reqs"] = "CERT_NONE"
                    kwargs["assert_hostname"] = False
            elif client.ssl:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                if ca_certs:
                    kwargs["ca_certs"] = ca_certs
            proxy = _proxy_for(client.scheme, client.host, proxies)
            if proxy:
                pool_manager = urllib3.ProxyManager(proxy, num_pools=2, **kwargs)
                self._proxied = True
            else:
                pool_manager = urllib3.PoolManager(num_pools=2, **kwargs)
        else:
            if not is_default_tls(verify, cert) or proxies is not None:
                raise ValueError(
                    "verify=, cert= and proxies= configure the pool this backend makes: "
                    "with pool_manager=, set them on your pool manager"
                )
            self._proxied = isinstance(pool_manager, urllib3.ProxyManager)
        self.pool_manager = pool_manager
        self._pool = pool_manager.connection_from_host(
            client.host, client.port, scheme=client.scheme
        )

    def send_request(self, request: Request) -> Any:
        status, body, _ = self.send_raw(request)
        return process_response(status, body)

    def send_raw(self, request: Request) -> tuple[int, bytes, Mapping[str, str]]:
        """Send and return (status, body, headers) under the client's delivery policy; no
        answer raises PusherTransportError."""
        return send_with_policy(self.policy, self.send_once, request)

    def send_once(self, request: Request) -> tuple[int, bytes, Mapping[str, str]]:
        """One attempt (the bulk senders apply their own policy)."""
        deadline = time.monotonic() + self._total
        try:
            response = self._urlopen(request, deadline)
        except ConnectTimeoutError as exc:  # NewConnectionError too: nothing was sent
            raise self._transport_error(request, exc, False) from exc
        except (Urllib3HTTPError, OSError) as exc:
            # urllib3 does not say whether the request was fully written: it may have been.
            raise self._transport_error(request, exc, True) from exc
        try:
            return response.status, self._read_body(response, deadline), response.headers
        except (Urllib3HTTPError, OSError) as exc:
            raise self._transport_error(request, exc, True) from exc

    @staticmethod
    def _read_body(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """The whole body by the deadline: each read gets the time left (a server dripping
        bytes would otherwise stretch a per-read timeout without end)."""
        chunks = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out: the request's deadline passed")
                sock = getattr(getattr(response, "connection", None), "sock", None)
                if sock is not None:
                    sock.settimeout(left)
                chunk = response.read1(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except BaseException:  # never reuse a half-read connection
            conn = getattr(response, "connection", None)
            if conn is not None:
                conn.close()
            response.release_conn()
            raise
        response.release_conn()
        return b"".join(chunks)

    def _urlopen(self, request: Request, deadline: float) -> urllib3.BaseHTTPResponse:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the request's deadline passed")
        # total= bounds connecting plus reading the head; _read_body bounds the body.
        timeout = urllib3.Timeout(connect=left, read=left, total=left)
        if self._proxied:
            return self.pool_manager.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=timeout,
                retries=False,
                preload_content=False,
            )
        return self._pool.urlopen(
            request.method,
            request.path + "?" + request.query_string,
            body=request.body,
            headers=request.headers,
            timeout=timeout,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )

    def _transport_error(
        self, request: Request, exc: Exception, ambiguous: bool
    ) -> PusherTransportError:
        return PusherTransportError(
            f"{request.method} {self.client.base_url}{request.path} failed: {exc}",
            ambiguous=ambiguous,
        )

    def __del__(self) -> None:
        # Dropped without close(): close the pool we made now, not socket by socket in the GC.
        pool_manager = getattr(self, "pool_manager", None)
        if pool_manager is not None and getattr(self, "_owns_pool", False):
            pool_manager.clear()

    def close(self) -> None:
        """Close the pooled connections; a later request opens a new one."""
        self.pool_manager.clear()
        # clear() closed the pool we hold: take the manager's fresh one for later requests.
        self._pool = self.pool_manager.connection_from_host(
            self.client.host, self.client.port, scheme=self.client.scheme
        )

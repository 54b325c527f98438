"""The default transport: one keep-alive urllib3 pool per client.

TLS is verified against the system's CA store (urllib3's default; pass
``ca_certs=`` for another bundle).  Proxies come from the standard environment
variables (``https_proxy``, ``http_proxy``, ``no_proxy``).  Retries are off
unless asked for, as in the official library; ``retries=`` takes a count or a
``urllib3.Retry``.  The pool is thread-safe, so one client can be shared.
"""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from ._request import Request, process_response
from .errors import PusherTransportError

if TYPE_CHECKING:
    from .client import Pusher

RetriesArg = Union[int, Retry, None, bool]

# The server closed the connection before answering: nothing was processed.
_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)

#: Statuses that mean "not processed, try again later" for a Pusher request.
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


class PusherRetry(Retry):
    """urllib3's Retry, but ``Retry-After`` only makes 429 and 503 retryable
    (urllib3 also retries 413 when it carries one; a payload too large stays so)."""

    RETRY_AFTER_STATUS_CODES = frozenset((429, 503))


def make_retry(retries: RetriesArg) -> Retry | bool:
    """``urllib3.Retry`` for the client's ``retries=`` argument (``False``: none)."""
    if retries is None or retries is False or retries == 0:
        return False
    if isinstance(retries, Retry):
        return retries
    if retries is True:
        retries = 3
    if not isinstance(retries, int) or retries < 0:
        raise TypeError(f"retries should be a non-negative int or a urllib3.Retry, got {retries!r}")
    return PusherRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        # Pusher's POSTs are retried only when the server said it did not take
        # them (429/5xx) or the connection failed: the same as the bulk sender.
        allowed_methods=frozenset(("GET", "POST")),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.2,
        backoff_max=5.0,
        backoff_jitter=0.1,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
        redirect=0,
    )


def _proxy_for(scheme: str, host: str) -> str | None:
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        return proxy
    return None


class Urllib3Backend:
    """Sends requests over one ``urllib3.PoolManager`` (keep-alive, thread-safe).

    Options: ``pool_manager`` (inject your own), ``maxsize`` (connections kept,
    default 10), ``retries`` (see :func:`make_retry`), ``ca_certs``.
    """

    def __init__(
        self,
        client: Pusher,
        *,
        pool_manager: urllib3.PoolManager | None = None,
        maxsize: int = 10,
        retries: RetriesArg = None,
        ca_certs: str | None = None,
        **pool_options: Any,
    ) -> None:
        self.client = client
        self._total = float(client.timeout)
        self.retries = make_retry(retries)
        self._proxied = False
        if pool_manager is None:
            kwargs: dict[str, Any] = {"maxsize": maxsize, "block": False, **pool_options}
            if client.ssl:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                if ca_certs:
                    kwargs["ca_certs"] = ca_certs
            proxy = _proxy_for(client.scheme, client.host)
            if proxy:
                pool_manager = urllib3.ProxyManager(proxy, num_pools=2, **kwargs)
                self._proxied = True
            else:
                pool_manager = urllib3.PoolManager(num_pools=2, **kwargs)
        else:
            self._proxied = isinstance(pool_manager, urllib3.ProxyManager)
        self.pool_manager = pool_manager
        self._pool = pool_manager.connection_from_host(
            client.host, client.port, scheme=client.scheme
        )

    def send_request(self, request: Request) -> Any:
        status, body, _ = self.send_raw(request)
        return process_response(status, body)

    def send_raw(self, request: Request) -> tuple[int, bytes, Mapping[str, str]]:
        """Send and return (status, body, headers); no answer raises PusherTransportError.

        A kept-alive connection that the server closed without saying so (soketi
        does after every answer; idle timeouts race the same way) breaks the next
        request before any byte of answer: that one request goes out once more,
        on a new connection, when retries are off.
        """
        # Only a kept-alive connection can be stale: note whether one was idle.
        reused = not self._proxied and self._idle_connections() > 0
        deadline = time.monotonic() + self._total
        try:
            try:
                response = self._urlopen(request, deadline)
            except ProtocolError as exc:
                stale = isinstance(exc.__context__ or exc.args[-1], _STALE)
                if not (stale and reused and self.retries is False):
                    raise
                response = self._urlopen(request, deadline)
            if self.retries is not False:  # urllib3's own retries ran: the body gets the timeout
                deadline = time.monotonic() + self._total
            return response.status, self._read_body(response, deadline), response.headers
        except (Urllib3HTTPError, OSError) as exc:
            raise self._transport_error(request, exc) from exc

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

    def _idle_connections(self) -> int:
        idle = getattr(self._pool, "pool", None)  # urllib3's LIFO of connections / None
        if idle is None:
            return 0
        return sum(1 for conn in list(idle.queue) if conn is not None)

    def _urlopen(self, request: Request, deadline: float) -> urllib3.BaseHTTPResponse:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the request's deadline passed")
        # total= bounds connecting plus reading the head; _read_body bounds the body.
        timeout = urllib3.Timeout(connect=left, read=left, total=left)
        if self.retries is not False:  # one deadline per attempt: urllib3 makes the attempts
            timeout = urllib3.Timeout(connect=self._total, read=self._total)
        if self._proxied:
            return self.pool_manager.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=timeout,
                retries=self.retries,
                preload_content=False,
            )
        return self._pool.urlopen(
            request.method,
            request.path + "?" + request.query_string,
            body=request.body,
            headers=request.headers,
            timeout=timeout,
            retries=self.retries,
            assert_same_host=False,
            preload_content=False,
        )

    def _transport_error(self, request: Request, exc: Exception) -> PusherTransportError:
        return PusherTransportError(
            f"{request.method} {self.client.base_url}{request.path} failed: {exc}"
        )

    def close(self) -> None:
        self.pool_manager.clear()

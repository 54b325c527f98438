"""The default transport: one keep-alive urllib3 pool per client.

TLS is verified against the system's CA store (urllib3's default; pass
``ca_certs=`` for another bundle).  Proxies come from the standard environment
variables (``https_proxy``, ``http_proxy``, ``no_proxy``).  Retries are off
unless asked for, as in the official library; ``retries=`` takes a count or a
``urllib3.Retry``.  The pool is thread-safe, so one client can be shared.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from ._options import CertArg, ProxiesArg, VerifyArg, is_default_tls, select_proxy, ssl_context
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


def _proxy_for(scheme: str, host: str, proxies: ProxiesArg = None) -> str | None:
    """The proxy for ``scheme://host``: explicit ``proxies`` first, then the environment."""
    return select_proxy(proxies, scheme, host)


class Urllib3Backend:
    """Sends requests over one ``urllib3.PoolManager`` (keep-alive, thread-safe).

    Options: ``pool_manager`` (inject your own), ``maxsize`` (connections kept,
    default 10), ``retries`` (see :func:`make_retry`), ``ca_certs``, and requests'
    ``verify``, ``cert`` and ``proxies`` (see :mod:`pusher_fast._options`).
    """

    def __init__(
        self,
        client: Pusher,
        *,
        pool_manager: urllib3.PoolManager | None = None,
        maxsize: int = 10,
        retries: RetriesArg = None,
        ca_certs: str | None = None,
        verify: VerifyArg = True,
        cert: CertArg = None,
        proxies: ProxiesArg = None,
        **pool_options: Any,
    ) -> None:
        self.client = client
        self.timeout = urllib3.Timeout(connect=client.timeout, read=client.timeout)
        self.retries = make_retry(retries)
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
        """Send and return (status, body, headers); no answer raises PusherTransportError.

        A kept-alive connection that the server closed without saying so (soketi
        does after every answer; idle timeouts race the same way) breaks the next
        request before any byte of answer: that one request goes out once more,
        on a new connection, when retries are off.
        """
        # Only a kept-alive connection can be stale: note whether one was idle.
        reused = not self._proxied and self._idle_connections() > 0
        try:
            response = self._urlopen(request)
        except ProtocolError as exc:
            stale = isinstance(exc.__context__ or exc.args[-1], _STALE)
            if not (stale and reused and self.retries is False):
                raise self._transport_error(request, exc) from exc
            try:
                response = self._urlopen(request)
            except Urllib3HTTPError as again:
                raise self._transport_error(request, again) from again
        except Urllib3HTTPError as exc:
            raise self._transport_error(request, exc) from exc
        return response.status, response.data, response.headers

    def _idle_connections(self) -> int:
        idle = getattr(self._pool, "pool", None)  # urllib3's LIFO of connections / None
        if idle is None:
            return 0
        return sum(1 for conn in list(idle.queue) if conn is not None)

    def _urlopen(self, request: Request) -> urllib3.BaseHTTPResponse:
        if self._proxied:
            return self.pool_manager.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=self.timeout,
                retries=self.retries,
            )
        return self._pool.urlopen(
            request.method,
            request.path + "?" + request.query_string,
            body=request.body,
            headers=request.headers,
            timeout=self.timeout,
            retries=self.retries,
            assert_same_host=False,
        )

    def _transport_error(self, request: Request, exc: Exception) -> PusherTransportError:
        return PusherTransportError(
            f"{request.method} {self.client.base_url}{request.path} failed: {exc}"
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

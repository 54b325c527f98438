"""The urllib3 transport: one ``urllib3.PoolManager`` per client, used for proxies and a
user's ``pool_manager=``.  urllib3's own retries are off: the delivery policy
(:mod:`pusher_fast._retry`) applies, as for every transport.
"""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING, Any, Optional

import urllib3
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from .._observe import OnRequest, check_hook
from .._request import Request
from .._retry import RetriesArg, make_policy
from . import base
from .base import PolicyTransport, Raw

if TYPE_CHECKING:
    from ..client import Pusher


class Urllib3Backend(PolicyTransport):
    """Sends requests over one ``urllib3.PoolManager`` (keep-alive, thread-safe).

    Options: ``pool_manager`` (inject your own), ``maxsize`` (connections kept,
    default 10), ``retries`` and ``at_least_once`` (see :func:`make_policy`), ``ca_certs``,
    and requests' ``verify``, ``cert`` and ``proxies`` (see :mod:`pusher_fast._options`).
    urllib3 checks a kept-alive connection before reusing it (a closed one is replaced
    before the request is written); nothing is resent after a failure unless the policy
    says so.  ``client.timeout`` bounds connecting and reading the head (urllib3's
    ``Timeout(total=)``) and the whole body (each read gets the time left).
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
        verify: base.VerifyArg = True,
        cert: base.CertArg = None,
        proxies: base.ProxiesArg = None,
        on_request: Optional[OnRequest] = None,
        **pool_options: Any,
    ) -> None:
        self.client = client
        self.on_request = check_hook(on_request)
        self._total = float(client.timeout)
        self.policy = make_policy(retries, at_least_once)
        self._proxied = False
        self._owns_pool = pool_manager is None
        if pool_manager is None:
            kwargs: dict[str, Any] = {"maxsize": maxsize, "block": False, **pool_options}
            if client.ssl and not base.is_default_tls(verify, cert):
                # One context for verify=/cert=, the same as the built-in transports'.
                context = base.make_ssl_context(ca_certs, verify, cert)
                kwargs["ssl_context"] = context
                if context.verify_mode == ssl.CERT_NONE:
                    kwargs["cert_reqs"] = "CERT_NONE"
                    kwargs["assert_hostname"] = False
            elif client.ssl:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                if ca_certs:
                    kwargs["ca_certs"] = ca_certs
            proxy = base.select_proxy(proxies, client.scheme, client.host)
            if proxy:
                pool_manager = urllib3.ProxyManager(proxy, num_pools=2, **kwargs)
                self._proxied = True
            else:
                pool_manager = urllib3.PoolManager(num_pools=2, **kwargs)
        else:
            if not base.is_default_tls(verify, cert) or proxies is not None:
                raise ValueError(
                    "verify=, cert= and proxies= configure the pool this backend makes: "
                    "with pool_manager=, set them on your pool manager"
                )
            self._proxied = isinstance(pool_manager, urllib3.ProxyManager)
        self.pool_manager = pool_manager
        self._pool = pool_manager.connection_from_host(
            client.host, client.port, scheme=client.scheme
        )

    def send_once(self, request: Request) -> Raw:
        """One attempt (the bulk senders apply their own policy)."""
        deadline = time.monotonic() + self._total
        try:
            response = self._urlopen(request, deadline)
        except ConnectTimeoutError as exc:  # NewConnectionError too: nothing was sent
            raise base.transport_error(request, exc, False) from exc
        except (Urllib3HTTPError, OSError) as exc:
            # urllib3 does not say whether the request was fully written: it may have been.
            raise base.transport_error(request, exc, True) from exc
        try:
            return response.status, self._read_body(response, deadline), response.headers
        except (Urllib3HTTPError, OSError) as exc:
            raise base.transport_error(request, exc, True) from exc

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


__all__ = ["Urllib3Backend"]

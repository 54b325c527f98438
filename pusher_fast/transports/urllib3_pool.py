"""The urllib3 transport: one ``urllib3.PoolManager`` per client, used for proxies and a
user's ``pool_manager=``.  urllib3's own retries are off: the delivery policy
(:mod:`pusher_fast._retry`) applies, as for every transport.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
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


# The deadline of the request this thread is sending through urllib3 (None otherwise):
# read by _DeadlineResponse, which http.client makes inside urlopen().
_sending = threading.local()


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each one given the time left to the deadline as its timeout."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # A SocketIO: it counts as a reference to the socket, so http.client closing the
        # connection (a "Connection: close" answer) waits for this reader to close too.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out: the request's deadline passed")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading the head and body by the sending thread's deadline
    (urllib3 alone gives each read of the head the whole read timeout, so a server
    dripping its head would hold the request without end)."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline: Optional[float] = getattr(_sending, "deadline", None)
        if deadline is not None:
            self.fp.close()  # nothing read from it yet
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


def _hold_to_deadline(pool: Any) -> None:
    """Make ``pool`` open connections whose answers are read by the deadline.

    Inert outside ``Urllib3Backend.send_once`` (no deadline set in the thread), so a
    pool shared with other code behaves as before for it.
    """
    cls = pool.ConnectionCls
    if getattr(cls, "response_class", None) is _DeadlineResponse:
        return
    pool.ConnectionCls = type(cls.__name__, (cls,), {"response_class": _DeadlineResponse})


class Urllib3Backend(PolicyTransport):
    """Sends requests over one ``urllib3.PoolManager`` (keep-alive, thread-safe).

    Options: ``pool_manager`` (inject your own), ``maxsize`` (connections kept,
    default 10), ``retries`` and ``at_least_once`` (see :func:`make_policy`), ``ca_certs``,
    and requests' ``verify``, ``cert`` and ``proxies`` (see :mod:`pusher_fast._options`).
    urllib3 checks a kept-alive connection before reusing it (a closed one is replaced
    before the request is written); nothing is resent after a failure unless the policy
    says so.  ``client.timeout`` is one deadline for connecting (urllib3's
    ``Timeout(total=)``), sending and the complete answer, head and body: every read of
    the answer gets the time left as its socket timeout (the pool's connection class is
    given a response class that does so; inert for other users of a shared pool).
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
        _hold_to_deadline(self._pool)

    def send_once(self, request: Request) -> Raw:
        """One attempt (the bulk senders apply their own policy)."""
        deadline = time.monotonic() + self._total
        _sending.deadline = deadline
        try:
            response = self._urlopen(request, deadline)
        except ConnectTimeoutError as exc:  # NewConnectionError too: nothing was sent
            raise base.transport_error(request, exc, False) from exc
        except (Urllib3HTTPError, OSError) as exc:
            # urllib3 does not say whether the request was fully written: it may have been.
            raise base.transport_error(request, exc, True) from exc
        finally:
            _sending.deadline = None
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
        # total= bounds connecting; _DeadlineResponse bounds each read of the answer.
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
        _hold_to_deadline(self._pool)


__all__ = ["Urllib3Backend"]

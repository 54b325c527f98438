"""A transport on the ``requests`` package (optional extra: ``pusher-fast[requests]``).

A drop-in for ``pusher.requests.RequestsBackend``.  Its use is testing: code
whose tests intercept HTTP with ``responses`` or ``requests-mock`` (as tests
of the official library usually do) keeps being intercepted after the switch
to pusher_fast with one argument::

    client = pusher_fast.Pusher(..., backend=pusher_fast.requests.RequestsBackend)

The default transports do not go through ``requests``, so those mocks do not
see their requests.  This one is also the slowest transport (about 1 ms of
CPU per request): use it where the mocking matters, not in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

# In a module named pusher_fast.requests, ``import requests`` is still the
# third-party package: Python 3 imports are absolute.
import requests
import urllib3.exceptions

from ._observe import OnRequest, check_hook
from ._request import Request
from ._retry import RetriesArg, make_policy
from .transports.base import PolicyTransport, Raw, transport_error

if TYPE_CHECKING:
    from .client import Pusher


class RequestsBackend(PolicyTransport):
    """Sends requests over one ``requests.Session`` per client (keep-alive).

    Options: ``session`` (a ``requests.Session`` of your own), ``retries`` and
    ``at_least_once`` (the delivery policy every transport follows: see
    ``pusher_fast._retry``; only a failure to connect is surely unprocessed),
    ``ca_certs`` (a CA bundle; default: requests' own, certifi);
    anything else is passed to ``Session.request`` as the official backend
    does (``proxies=``, ``cert=``, ``verify=``...).  A request that gets no
    answer raises ``PusherTransportError`` chained to requests' exception.
    """

    def __init__(
        self,
        client: Pusher,
        *,
        session: requests.Session | None = None,
        retries: RetriesArg = None,
        at_least_once: bool = False,
        ca_certs: str | None = None,
        on_request: Optional[OnRequest] = None,
        **options: Any,
    ) -> None:
        self.client = client
        self.on_request = check_hook(on_request)
        self.options = options
        if ca_certs is not None and client.ssl:
            self.options.setdefault("verify", ca_certs)
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.policy = make_policy(retries, at_least_once)

    def send_once(self, request: Request) -> Raw:
        """One attempt, without ``retries=`` (the bulk senders apply their own policy)."""
        try:
            response = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=self.client.timeout,
                **self.options,
            )
        except requests.RequestException as exc:
            # Only a connection that could not be made surely left the request unprocessed.
            unsent = isinstance(exc, requests.ConnectTimeout) or (
                isinstance(exc, requests.ConnectionError)
                and isinstance(_reason(exc), urllib3.exceptions.NewConnectionError)
            )
            raise transport_error(request, exc, not unsent) from exc
        return response.status_code, response.content, response.headers

    def close(self) -> None:
        if self._owns_session:
            self.session.close()


def _reason(exc: BaseException) -> object:
    """The urllib3 error under a requests ConnectionError (MaxRetryError.reason, or itself)."""
    inner = exc.args[0] if exc.args else None
    return getattr(inner, "reason", inner)


__all__ = ["RequestsBackend"]

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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

# In a module named pusher_fast.requests, ``import requests`` is still the
# third-party package: Python 3 imports are absolute.
import requests
import requests.adapters

from ._request import Request, process_response
from ._transport import RetriesArg, make_retry
from .errors import PusherTransportError

if TYPE_CHECKING:
    from .client import Pusher


class RequestsBackend:
    """Sends requests over one ``requests.Session`` per client (keep-alive).

    Options: ``session`` (a ``requests.Session`` of your own), ``retries`` (a
    count or a ``urllib3.Retry``, mounted as the session's adapter; off by
    default), ``ca_certs`` (a CA bundle; default: requests' own, certifi);
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
        ca_certs: str | None = None,
        **options: Any,
    ) -> None:
        self.client = client
        self.options = options
        if ca_certs is not None and client.ssl:
            self.options.setdefault("verify", ca_certs)
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        retry = make_retry(retries)
        if retry is not False:
            adapter = requests.adapters.HTTPAdapter(max_retries=retry)
            self.session.mount(client.base_url, adapter)

    def send_request(self, request: Request) -> Any:
        status, body, _ = self.send_raw(request)
        return process_response(status, body)

    def send_raw(self, request: Request) -> tuple[int, bytes, Mapping[str, str]]:
        """Send and return (status, body, headers); no answer raises PusherTransportError."""
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
            raise PusherTransportError(
                f"{request.method} {self.client.base_url}{request.path} failed: {exc}"
            ) from exc
        return response.status_code, response.content, response.headers

    def close(self) -> None:
        if self._owns_session:
            self.session.close()


__all__ = ["RequestsBackend"]

"""requests' transport keywords, as the official constructor passes them: verify, cert, proxies.

The official ``Pusher(...)`` hands its ``**backend_options`` to a requests session,
so code written for it passes these three.  They mean what they mean in requests:

- ``verify``: ``True`` (default) verifies the server against the system CA store;
  a path verifies it against that CA bundle (a file, or a directory of hashed
  certificates); ``False`` verifies nothing, and every client built that way
  warns with :class:`InsecureTransportWarning`.
- ``cert``: a client certificate, a path to a PEM file holding the certificate
  and its key, or a ``(certificate, key)`` pair of paths.
- ``proxies``: ``{"https": "http://proxy:3128", "http": ...}``; the most specific
  of ``"scheme://host"``, ``"scheme"``, ``"all://host"``, ``"all"`` applies, and a
  ``None`` value means "no proxy" for that key.  Without a matching key the
  environment's ``https_proxy``/``http_proxy``/``no_proxy`` apply, as in requests.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

from urllib3.exceptions import InsecureRequestWarning

VerifyArg = Union[bool, str, "os.PathLike[str]"]
CertArg = Union[None, str, "os.PathLike[str]", tuple[str, str]]
ProxiesArg = Optional[Mapping[str, Optional[str]]]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class InsecureTransportWarning(InsecureRequestWarning):
    """A client was built with ``verify=False``: its HTTPS peer is not authenticated."""


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside pusher_fast, so the warning names user code."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def check_options(options: Iterable[str], accepted: Iterable[str], who: str) -> None:
    """``TypeError`` naming each keyword of ``options`` not in ``accepted``, and those accepted."""
    allowed = set(accepted)
    unknown = sorted(k for k in options if k not in allowed)
    if unknown:
        raise TypeError(
            f"{who} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"it accepts {', '.join(sorted(allowed))}"
        )


def _path(value: Any, name: str) -> str:
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return path
    raise TypeError(f"{name} should be a path (str or os.PathLike), got {type(value).__name__}")


def ssl_context(
    ca_certs: str | None = None, verify: VerifyArg = True, cert: CertArg = None
) -> ssl.SSLContext:
    """The client TLS context for ``ca_certs``/``verify``/``cert`` (see the module docstring).

    TLS 1.2 or later and ALPN ``http/1.1`` in every case.  ``verify=False`` warns.
    """
    if verify is True or verify is False:
        context = ssl.create_default_context(cafile=ca_certs)
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            warnings.warn(
                "verify=False: the server's TLS certificate and host name are not checked, "
                "so anyone on the path can read and alter this client's requests",
                InsecureTransportWarning,
                stacklevel=_caller_stacklevel(),
            )
    else:
        bundle = _path(verify, "verify")
        if ca_certs is not None:
            raise ValueError("give ca_certs= or verify=<CA bundle>, not both")
        if os.path.isdir(bundle):
            context = ssl.create_default_context(capath=bundle)
        elif os.path.isfile(bundle):
            context = ssl.create_default_context(cafile=bundle)
        else:
            raise FileNotFoundError(f"verify={bundle!r}: no such CA bundle file or directory")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    if cert is not None:
        if isinstance(cert, tuple):
            if len(cert) != 2:
                raise ValueError("cert should be a path or a (certificate, key) pair of paths")
            context.load_cert_chain(_path(cert[0], "cert[0]"), _path(cert[1], "cert[1]"))
        else:
            context.load_cert_chain(_path(cert, "cert"))
    return context


def is_default_tls(verify: VerifyArg, cert: CertArg) -> bool:
    return verify is True and cert is None


def select_proxy(
    proxies: ProxiesArg, scheme: str, host: str, environment: bool = True
) -> str | None:
    """The proxy URL for ``scheme://host``: ``proxies`` first, then the environment."""
    if proxies is not None:
        if not isinstance(proxies, Mapping):
            raise TypeError(f"proxies should be a mapping, got {type(proxies).__name__}")
        for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
            if key in proxies:
                proxy = proxies[key]
                if proxy is not None and not isinstance(proxy, str):
                    raise TypeError(f"proxies[{key!r}] should be a URL string or None")
                return proxy or None
    if not environment:
        return None
    proxy = urllib.request.getproxies().get(scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        return proxy
    return None


__all__ = ["InsecureTransportWarning", "check_options", "select_proxy", "ssl_context"]

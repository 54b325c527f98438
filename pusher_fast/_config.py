"""Client configuration: the constructor's keywords, a URL or an environment
variable turned into one checked, immutable :class:`Config`."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

from . import _validation as v
from ._crypto import parse_master_key

_URL_PATH_RE = re.compile(r"/apps/([0-9]+)/?")


@dataclass(frozen=True)
class Config:
    """What a client was configured with, checked once."""

    app_id: str
    key: str
    secret: str
    ssl: bool
    host: str
    port: int
    timeout: float
    json_encoder: Optional[type[json.JSONEncoder]]
    json_decoder: Optional[type[json.JSONDecoder]]
    master_key: Optional[bytes]
    trigger_limit: int
    """Bytes of ``data`` one ``trigger`` may carry."""
    batch_limit: int
    """Bytes of ``data`` each batch event may carry."""

    @property
    def scheme(self) -> str:
        return "https" if self.ssl else "http"

    @property
    def base_url(self) -> str:
        shown_host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{self.scheme}://{shown_host}:{self.port}"


def build_config(
    app_id: Any,
    key: Any,
    secret: Any,
    ssl: Any = True,
    host: Any = None,
    port: Any = None,
    timeout: Any = 5,
    cluster: Any = None,
    encryption_master_key: Any = None,
    encryption_master_key_base64: Any = None,
    json_encoder: Any = None,
    json_decoder: Any = None,
    max_payload_kb: Any = None,
) -> Config:
    """The :class:`Config` of ``Pusher(...)``'s keywords; bad values raise as the official
    library does (TypeError/ValueError naming the value, never the secret)."""
    app_id = v.validate_app_id(app_id)
    key = v.ensure_text(key, "key")
    secret = v.validate_secret(secret)
    if not isinstance(ssl, bool):
        raise TypeError(f"ssl should be a boolean, got {ssl!r}")
    host, port = _host_port(host, port, cluster, ssl)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
        raise TypeError(f"timeout should be an integer or a float, got {timeout!r}")
    master_key = parse_master_key(encryption_master_key, encryption_master_key_base64)
    trigger_limit, batch_limit = _limits(max_payload_kb)
    return Config(
        app_id, key, secret, ssl, host, port, timeout,
        json_encoder, json_decoder, master_key, trigger_limit, batch_limit,
    )  # fmt: skip


def _host_port(host: Any, port: Any, cluster: Any, ssl: bool) -> tuple[str, int]:
    host_port = None
    if host:
        name, host_port = v.split_host(host)
    elif cluster:
        name = f"api-{v.ensure_text(cluster, 'cluster')}.pusher.com"
    else:
        name = "api.pusherapp.com"
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise TypeError(f"port should be an integer, got {port!r}")
    if port is not None and not 0 <= port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    if host_port is not None and port is not None and port != host_port:
        raise ValueError(
            f"host {host!r} names port {host_port} but port={port} was given: "
            "give the port once, or the same in both"
        )
    return name, port or host_port or (443 if ssl else 80)


def _limits(max_payload_kb: Any) -> tuple[int, int]:
    if max_payload_kb is None:
        return v.TRIGGER_MAX_DATA_BYTES, v.BATCH_MAX_DATA_BYTES
    if (
        not isinstance(max_payload_kb, int)
        or isinstance(max_payload_kb, bool)
        or max_payload_kb <= 0
    ):
        raise ValueError(f"max_payload_kb should be a positive int, got {max_payload_kb!r}")
    return max_payload_kb * 1024, max_payload_kb * 1024


def url_options(url: Any) -> dict[str, Any]:
    """The constructor keywords ``http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID`` names."""
    text = v.validate_secret(url, "url")  # the url holds the secret
    scheme, sep, rest = text.partition("://")
    userinfo, at, hostpath = rest.rpartition("@")
    if sep and at:
        # Like the official library, take everything up to the last '@' as
        # KEY:SECRET, so a raw '/', '?' or '#' in the secret still parses.
        for char, escape in (("/", "%2F"), ("?", "%3F"), ("#", "%23"), ("@", "%40")):
            userinfo = userinfo.replace(char, escape)
        text = scheme + sep + userinfo + at + hostpath
    parts = urllib.parse.urlsplit(text)
    match = _URL_PATH_RE.fullmatch(parts.path)
    try:
        port = parts.port
    except ValueError:
        port = -1
    problem = _url_problem(parts, port, match is not None)
    if problem or match is None or parts.username is None or parts.password is None:
        # The url is never shown: it holds the secret.
        raise ValueError(
            f"Unparsable url: {problem}; expected http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID"
        )
    options: dict[str, Any] = {
        "key": urllib.parse.unquote(parts.username),
        "secret": urllib.parse.unquote(parts.password),
        "host": parts.hostname,
        "app_id": match.group(1),
        "ssl": parts.scheme == "https",
    }
    if port is not None:
        options["port"] = port
    return options


def _url_problem(parts: urllib.parse.SplitResult, port: int | None, has_app: bool) -> str:
    if parts.scheme not in ("http", "https"):
        return "the scheme is not http or https"
    if not parts.username or parts.password is None:
        return "KEY:SECRET@ is missing"
    if not parts.hostname:
        return "the host is missing"
    if port == -1:
        return "the port is not a number from 0 to 65535"
    if not has_app:
        return "the path is not /apps/APP_ID"
    return ""


def env_url(env: str) -> str:
    """The URL in environment variable ``env``; ValueError when it is unset or empty."""
    value = os.environ.get(env)
    if not value:
        raise ValueError(f"Environment variable {env} not found or empty")
    return value

"""Picklable Pusher credentials for code that runs in other processes (Spark tasks, Celery
workers): they travel to the workers, build clients there, and never show the secret."""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any, Optional

from ..client import Pusher

__all__ = ["PusherCredentials", "close_client"]

_SECRET_IN_URL = re.compile(r"(//[^:/@]*):[^@/]*@")


class PusherCredentials:
    """What a worker needs to build a :class:`~pusher_fast.Pusher`: a ``PUSHER_URL`` string
    or the client's keyword arguments.  Picklable; ``repr``/``str`` never show the secret.

    >>> creds = PusherCredentials("http://key:secret@127.0.0.1:8080/apps/1")
    >>> "secret" in repr(creds)
    False
    """

    __slots__ = ("_kwargs", "_url")

    def __init__(self, url: Optional[str] = None, **kwargs: Any) -> None:
        if (url is None) == (not kwargs):
            raise ValueError(
                "PusherCredentials takes a PUSHER_URL string or the client's keyword "
                "arguments (app_id, key, secret, ...), not both and not neither"
            )
        if url is not None:
            if not isinstance(url, str):
                raise TypeError(f"url must be a str, got {type(url).__name__}")
            Pusher.from_url(url)  # fails here, on the driver, not in every task
        else:
            Pusher(**kwargs)
        self._url = url
        self._kwargs = dict(kwargs)

    @classmethod
    def from_env(cls, env: str = "PUSHER_URL") -> PusherCredentials:
        """Credentials from the URL in environment variable ``env``, read now (on the driver)."""
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"Environment variable {env} not found or empty")
        return cls(value)

    def client(self, **options: Any) -> Pusher:
        """A new client (``options`` are extra keyword arguments of :class:`Pusher`)."""
        if self._url is not None:
            return Pusher.from_url(self._url, **options)
        return Pusher(**{**self._kwargs, **options})

    def cache_key(self) -> tuple[Any, ...]:
        """A hashable identity of these credentials, for per-process caches (holds the secret:
        keep it in memory, never log it)."""
        if self._url is not None:
            return ("url", self._url)
        return ("kwargs", tuple(sorted((k, repr(v)) for k, v in self._kwargs.items())))

    def __getstate__(self) -> tuple[Optional[str], dict[str, Any]]:
        return self._url, self._kwargs

    def __setstate__(self, state: tuple[Optional[str], dict[str, Any]]) -> None:
        self._url, self._kwargs = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PusherCredentials) and self.cache_key() == other.cache_key()

    def __hash__(self) -> int:
        return hash(self.cache_key())

    def __repr__(self) -> str:
        if self._url is not None:
            parts = urllib.parse.urlsplit(self._url)
            where = f"{parts.scheme}://{parts.hostname}"
            if parts.port is not None:
                where += f":{parts.port}"
            return f"PusherCredentials(url='{where}{parts.path}', secret=***)"
        shown = ", ".join(
            f"{k}={v!r}" for k, v in sorted(self._kwargs.items()) if k in _SHOWN_KWARGS
        )
        return f"PusherCredentials({shown}, secret=***)"

    __str__ = __repr__


_SHOWN_KWARGS = frozenset(("app_id", "key", "host", "port", "cluster", "ssl"))


def close_client(client: Pusher) -> None:
    """Close a client's connections (what its transport offers; errors are not interesting
    at shutdown)."""
    close = getattr(client.http, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: S110 - closing at exit: nothing useful to do with an error
            pass

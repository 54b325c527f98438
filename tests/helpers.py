"""Shared helpers for the unit and oracle tests (imported explicitly, not a conftest).

Everything here is computed independently of ``pusher_fast``: signatures with
``hmac``/``hashlib``, decryption with PyNaCl, so a test that uses these helpers
checks the library against the protocol, not against itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import nacl.secret

# The worked example of the HTTP API reference (design.md §2).
APP_ID = "3"
KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
EXAMPLE_TIMESTAMP = 1353088179

MASTER_KEY = bytes(range(32))
MASTER_KEY_B64 = base64.b64encode(MASTER_KEY).decode("ascii")

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


class RecordingBackend:
    """A backend in the official protocol: records each Request, returns a canned answer."""

    def __init__(self, client: Any, response: Any = None, **options: Any) -> None:
        self.client = client
        self.options = options
        self.response = {} if response is None else response
        self.requests: list[Any] = []

    def send_request(self, request: Any) -> Any:
        self.requests.append(request)
        return self.response

    @property
    def last(self) -> Any:
        return self.requests[-1]


def make_client(**overrides: Any) -> Any:
    """A ``pusher_fast.Pusher`` on the example credentials with a RecordingBackend."""
    import pusher_fast

    options: dict[str, Any] = {
        "app_id": APP_ID,
        "key": KEY,
        "secret": SECRET,
        "backend": RecordingBackend,
    }
    options.update(overrides)
    return pusher_fast.Pusher(**options)


@contextlib.contextmanager
def frozen_time(value: float) -> Iterator[None]:
    """Freeze ``time.time`` (both libraries call it through the module)."""
    original = time.time
    time.time = lambda: value  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time = original  # type: ignore[assignment]


def hmac_hex(secret: str, message: str | bytes) -> str:
    if isinstance(message, str):
        message = message.encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def parse_query(query_string: str) -> dict[str, str]:
    """An unescaped ``k=v&k=v`` query as a dict; fails on repeated keys."""
    out: dict[str, str] = {}
    for item in query_string.split("&"):
        key, sep, value = item.partition("=")
        assert sep, f"malformed query item {item!r}"
        assert key not in out, f"repeated query key {key!r}"
        out[key] = value
    return out


def reference_query(
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes,
    key: str,
    secret: str,
    timestamp: int,
) -> str:
    """The signed query string computed from the protocol description alone."""
    all_params = dict(params)
    all_params.update(
        auth_key=key,
        auth_timestamp=str(timestamp),
        auth_version="1.0",
        body_md5=hashlib.md5(body).hexdigest(),
    )
    unsigned = "&".join(f"{k}={all_params[k]}" for k in sorted(all_params))
    all_params["auth_signature"] = hmac_hex(secret, f"{method}\n{path}\n{unsigned}")
    return "&".join(f"{k}={all_params[k]}" for k in sorted(all_params))


def assert_signed(request: Any, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
    """Check a request's query signs exactly its method, path and body bytes; return the query."""
    query = parse_query(request.query_string)
    assert query["auth_key"] == key
    assert query["auth_version"] == "1.0"
    assert query["auth_timestamp"].isdigit()
    assert query["body_md5"] == hashlib.md5(request.body).hexdigest()
    unsigned = "&".join(f"{k}={query[k]}" for k in sorted(query) if k != "auth_signature")
    expected = hmac_hex(secret, f"{request.method}\n{request.path}\n{unsigned}")
    assert query["auth_signature"] == expected, "signature does not cover what is sent"
    assert list(query) == sorted(query), "query parameters are not sorted by key"
    return query


def channel_key(channel: str, master_key: bytes = MASTER_KEY) -> bytes:
    return hashlib.sha256(channel.encode("utf-8") + master_key).digest()


def decrypt_data(channel: str, data: str, master_key: bytes = MASTER_KEY) -> str:
    """Decrypt an encrypted event's ``data`` text with PyNaCl directly."""
    sealed = json.loads(data)
    assert set(sealed) == {"nonce", "ciphertext"}, sealed
    nonce = base64.b64decode(sealed["nonce"], validate=True)
    assert len(nonce) == nacl.secret.SecretBox.NONCE_SIZE
    box = nacl.secret.SecretBox(channel_key(channel, master_key))
    return box.decrypt(base64.b64decode(sealed["ciphertext"], validate=True), nonce).decode("utf-8")


def encrypt_data(channel: str, plaintext: str, master_key: bytes = MASTER_KEY) -> str:
    """An encrypted event's ``data`` text, as a Pusher client would write it."""
    box = nacl.secret.SecretBox(channel_key(channel, master_key))
    sealed = box.encrypt(plaintext.encode("utf-8"))
    return json.dumps(
        {
            "nonce": base64.b64encode(sealed.nonce).decode("ascii"),
            "ciphertext": base64.b64encode(sealed.ciphertext).decode("ascii"),
        }
    )


def body_json(request: Any) -> Any:
    return json.loads(request.body.decode("utf-8"))

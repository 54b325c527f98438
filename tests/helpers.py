"""Shared helpers for the unit and oracle tests (imported explicitly, not a conftest).

Everything here is computed independently of ``pusher_fast``: signatures with
``hmac``/``hashlib``, decryption with PyNaCl, so a test that uses these helpers
checks the library against the protocol, not against itself.

``MiniServer`` (standard library, 127.0.0.1) records each request and TCP connection and
answers with raw bytes the test writes, so the framing is the test's choice (Content-Length,
chunked, HTTP/1.0, no length, ``Connection: close``, a cut answer), over plain TCP or TLS
(``tls_mini_server`` with certificates from ``cryptography_certs``/``openssl_certs``).  It is
shared by the sync (``test_fasthttp.py``) and asyncio (``test_asynchttp.py``) transport tests.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

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


def loopback_client(make: Callable[..., Any], port: int, **options: Any) -> Any:
    """``make`` (``Pusher`` or ``AsyncPusher``) for a test server on 127.0.0.1:``port``:
    plain HTTP unless ``ssl=True``, a 2 s timeout unless given."""
    options.setdefault("timeout", 2)
    options.setdefault("ssl", False)
    return make(
        app_id="123456",
        key="fast-key",
        secret="fast-secret",
        host="127.0.0.1",
        port=port,
        **options,
    )


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


# -- MiniServer: a scriptable raw HTTP server on 127.0.0.1 -----------------------------------


def http11(status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return head.encode("latin-1") + b"\r\n" + body


def chunked(body: bytes, size: int = 7) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


@dataclass
class Answer:
    raw: bytes
    close: bool = False  # close the connection after writing (FIN), announced or not


@dataclass
class Seen:
    conn: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def data_of(seen: Seen) -> str:
    """The ``data`` of the event a trigger request carries, as sent (a string)."""
    return str(json.loads(seen.body)["data"])


def echo(seen: Seen) -> Answer:
    """200 with the request's event data, so every answer can be matched to its request."""
    return Answer(http11(200, json.dumps({"echo": data_of(seen)}).encode()))


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _MiniHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    timeout = 30.0
    server: _MiniHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.conn_id = self.server.owner._opened()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._closed()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.conn_id, self.command, self.path, dict(self.headers.items()), body)
        with owner.lock:
            owner.requests.append(seen)
        answer = owner.answer(seen)
        try:
            self.wfile.write(answer.raw)
            self.wfile.flush()
        except OSError:
            pass
        if answer.close:
            self.close_connection = True


class _MiniHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # concurrent clients: the default backlog of 5 drops SYNs
    owner: MiniServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, failed TLS handshakes) are expected


class MiniServer:
    """See the module docstring.  ``answer(seen) -> Answer``; 200 ``{}`` by default."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.answer: Callable[[Seen], Answer] = lambda seen: Answer(http11())
        self.requests: list[Seen] = []
        self.connections = 0  # TCP connections accepted so far
        self.open_now = 0
        self.most_open = 0  # the most connections open at once
        self.lock = threading.Lock()
        self._httpd = _MiniHTTPServer(("127.0.0.1", 0), _MiniHandler)
        self._httpd.owner = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _opened(self) -> int:
        with self.lock:
            self.connections += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            return self.connections

    def _closed(self) -> None:
        with self.lock:
            self.open_now -= 1

    def always(self, raw: bytes, close: bool = False) -> None:
        self.answer = lambda seen: Answer(raw, close)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@dataclass
class Certificates:
    ca: Path  # what ca_certs= gets
    cert: Path  # for localhost and 127.0.0.1
    key: Path
    wrong_cert: Path | None = None  # for other.example only, from the same CA
    wrong_key: Path | None = None


def cryptography_certs(folder: Path) -> Certificates:
    """A CA, and leaves signed by it: one for localhost / 127.0.0.1, one for other.example."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pusher_fast test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(pem))

    def leaf(name: str, names: list[x509.GeneralName]) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(pem))
        key_path.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return cert_path, key_path

    cert, key = leaf(
        "localhost", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    wrong_cert, wrong_key = leaf("other.example", [x509.DNSName("other.example")])
    return Certificates(ca_path, cert, key, wrong_cert, wrong_key)


def openssl_certs(folder: Path) -> Certificates:
    """A self-signed certificate for localhost / 127.0.0.1 (it is its own CA)."""
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key_path), "-out", str(cert_path), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Certificates(cert_path, cert_path, key_path)


def tls_mini_server(cert: Path, key: Path) -> MiniServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return MiniServer(tls=context)


def readers_left_for_gc(action: Callable[[], Any]) -> int:
    """Run ``action`` with the garbage collector off; the ``ResponseReader`` objects it left
    that only the collector would free (reference cycles)."""
    import gc

    from pusher_fast._http11 import ResponseReader

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
        return sum(type(o) is ResponseReader for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()

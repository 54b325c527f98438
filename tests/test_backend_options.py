"""requests' backend keywords (``verify``, ``cert``, ``proxies``) on every default transport.

The official constructor hands ``**backend_options`` to requests, so code written for it
passes these; any other keyword is refused at construction.  Real TLS servers and a tiny
forward proxy on 127.0.0.1 show each keyword takes effect.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import pusher_fast
from pusher_fast import InsecureTransportWarning
from pusher_fast.aio import AsyncPusher
from pusher_fast.errors import PusherTransportError
from pusher_fast.transports import HTTPClientBackend, Urllib3Backend
from tests.helpers import MiniServer

SYNC_TRANSPORTS = {"default": None, "urllib3": Urllib3Backend}


def client(port: int, ssl_on: bool = True, **options: Any) -> pusher_fast.Pusher:
    options.setdefault("timeout", 3)
    if options.get("backend", "unset") is None:
        del options["backend"]
    return pusher_fast.Pusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=port, ssl=ssl_on, **options
    )


def aclient(port: int, ssl_on: bool = True, **options: Any) -> AsyncPusher:
    options.setdefault("timeout", 3)
    return AsyncPusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=port, ssl=ssl_on, **options
    )


@pytest.fixture(params=list(SYNC_TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> Any:
    return SYNC_TRANSPORTS[request.param]


# -- verify ---------------------------------------------------------------------------------


class TestVerify:
    def test_default_refuses_an_unknown_certificate(self, tls_server, transport):
        with pytest.raises(PusherTransportError, match="certificate"):
            client(tls_server.port, backend=transport).trigger("a", "e", "d")
        assert tls_server.requests == []

    def test_verify_false_connects_and_warns(self, tls_server, transport):
        with pytest.warns(InsecureTransportWarning, match="verify=False") as caught:
            c = client(tls_server.port, backend=transport, verify=False)
        # The warning points at the caller, not inside the library.
        assert any(w.filename == __file__ for w in caught)
        with pytest.warns(Warning) if transport is Urllib3Backend else _nothing():
            assert c.trigger("a", "e", "d") == {}
        assert len(tls_server.requests) == 1

    def test_every_client_built_unverified_warns(self, tls_server):
        for _ in range(3):
            with pytest.warns(InsecureTransportWarning):
                client(tls_server.port, verify=False)

    def test_verify_takes_a_ca_bundle(self, tls_server, certificates, transport):
        c = client(tls_server.port, backend=transport, verify=str(certificates.ca))
        assert c.trigger("a", "e", "d") == {}
        assert len(tls_server.requests) == 1

    def test_verify_missing_bundle_is_refused_at_construction(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"nope\.pem"):
            client(443, verify=str(tmp_path / "nope.pem"))

    def test_async_verify_false_and_bundle(self, tls_server, certificates):
        async def main() -> None:
            with pytest.warns(InsecureTransportWarning):
                c = aclient(tls_server.port, verify=False)
            async with c:
                assert await c.trigger("a", "e", "d") == {}
            async with aclient(tls_server.port, verify=str(certificates.ca)) as c:
                assert await c.trigger("a", "e", "d") == {}
            async with aclient(tls_server.port) as c:
                with pytest.raises(PusherTransportError, match="certificate"):
                    await c.trigger("a", "e", "d")

        asyncio.run(main())
        assert len(tls_server.requests) == 2


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- cert -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a client certificate")
    folder = tmp_path_factory.mktemp("client-cert")
    crt, key = folder / "client.pem", folder / "client.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(crt), "-subj", "/CN=pusher_fast test client"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return crt, key


@pytest.fixture
def mtls_server(certificates, client_cert):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_cert[0])
    server = MiniServer(tls=context)
    yield server
    server.stop()


class TestClientCertificate:
    def test_cert_pair_is_presented(self, mtls_server, certificates, client_cert, transport):
        crt, key = client_cert
        c = client(
            mtls_server.port, backend=transport, ca_certs=str(certificates.ca),
            cert=(str(crt), str(key)),
        )  # fmt: skip
        assert c.trigger("a", "e", "d") == {}
        assert len(mtls_server.requests) == 1

    def test_single_file_cert(self, mtls_server, certificates, client_cert, tmp_path):
        both = tmp_path / "both.pem"
        both.write_bytes(client_cert[0].read_bytes() + client_cert[1].read_bytes())
        c = client(mtls_server.port, ca_certs=str(certificates.ca), cert=str(both))
        assert c.trigger("a", "e", "d") == {}

    def test_without_cert_the_server_refuses(self, mtls_server, certificates, transport):
        c = client(mtls_server.port, backend=transport, ca_certs=str(certificates.ca))
        with pytest.raises(PusherTransportError):
            c.trigger("a", "e", "d")
        assert mtls_server.requests == []

    def test_async_cert(self, mtls_server, certificates, client_cert):
        crt, key = client_cert

        async def main() -> None:
            c = aclient(mtls_server.port, ca_certs=str(certificates.ca), cert=(str(crt), str(key)))
            async with c:
                assert await c.trigger("a", "e", "d") == {}
            async with aclient(mtls_server.port, ca_certs=str(certificates.ca)) as c:
                with pytest.raises(PusherTransportError):
                    await c.trigger("a", "e", "d")

        asyncio.run(main())
        assert len(mtls_server.requests) == 1


# -- proxies ----------------------------------------------------------------------------------


class ForwardProxy:
    """Records each request line it gets and answers 200 ``{}`` itself (plain HTTP)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # accept() wakes up to notice stop()
        self._stopping = threading.Event()
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(3)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(body) < length:
                        body += conn.recv(65536)
                    self.lines.append(head.split(b"\r\n")[0].decode("latin-1"))
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                    )
                except OSError:
                    pass

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def proxy():
    p = ForwardProxy()
    yield p
    p.stop()


class TestProxies:
    def test_explicit_proxy_is_used(self, proxy, monkeypatch):
        for var in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
            monkeypatch.delenv(var, raising=False)
        # Port 9 on 127.0.0.1: nothing listens, so a direct request would fail.
        c = client(9, ssl_on=False, proxies={"http": f"http://127.0.0.1:{proxy.port}"})
        assert type(c.http) is Urllib3Backend
        assert c.trigger("a", "e", "d") == {}
        assert len(proxy.lines) == 1
        assert proxy.lines[0].startswith("POST http://127.0.0.1:9/apps/1/events?")

    def test_proxy_for_the_other_scheme_does_not_apply(self):
        c = client(9, ssl_on=False, proxies={"https": "http://127.0.0.1:1"})
        assert type(c.http) is HTTPClientBackend

    def test_none_turns_off_the_environment_proxy(self, monkeypatch):
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
        monkeypatch.delenv("no_proxy", raising=False)
        assert type(client(9, ssl_on=False).http) is Urllib3Backend
        assert type(client(9, ssl_on=False, proxies={"http": None}).http) is HTTPClientBackend

    def test_host_specific_key_wins(self, proxy):
        c = client(
            9, ssl_on=False,
            proxies={"http": "http://127.0.0.1:1", "http://127.0.0.1": f"http://127.0.0.1:{proxy.port}"},
        )  # fmt: skip
        assert c.trigger("a", "e", "d") == {}
        assert len(proxy.lines) == 1

    def test_async_explicit_proxy(self, proxy, monkeypatch):
        pytest.importorskip("aiohttp")
        for var in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(var, raising=False)

        async def main() -> None:
            c = aclient(9, ssl_on=False, proxies={"http": f"http://127.0.0.1:{proxy.port}"})
            assert type(c.http).__name__ == "AsyncIOBackend"
            async with c:
                assert await c.trigger("a", "e", "d") == {}

        asyncio.run(main())
        assert len(proxy.lines) == 1
        assert proxy.lines[0].startswith("POST http://127.0.0.1:9/apps/1/events?")

    def test_http_client_backend_refuses_a_proxy_that_applies(self):
        with pytest.raises(ValueError, match="proxies"):
            client(9, ssl_on=False, backend=HTTPClientBackend, proxies={"all": "http://p:1"})


# -- unknown keywords ------------------------------------------------------------------------


class TestUnknownKeywords:
    @pytest.mark.parametrize("make", [client, aclient], ids=["Pusher", "AsyncPusher"])
    def test_unknown_keyword_is_a_type_error_naming_it(self, make):
        with pytest.raises(TypeError, match="'stream'") as info:
            make(443, stream=True)
        assert "verify" in str(info.value) and "proxies" in str(info.value)

    def test_urllib3_pool_options_are_refused_too(self):
        with pytest.raises(TypeError, match="'block'"):
            client(443, block=True)

    def test_urllib3_backend_refuses_tls_options_with_its_own_pool_manager(self):
        import urllib3

        with pytest.raises(ValueError, match="pool_manager"):
            client(443, pool_manager=urllib3.PoolManager(), verify=False)

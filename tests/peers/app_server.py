"""Serve a real web app (ASGI under uvicorn, or WSGI under the standard library's wsgiref) on
127.0.0.1, in a thread of the test process, for pusher-js's auth requests and soketi's webhooks.

Usage::

    from tests.peers.app_server import serve_asgi, serve_wsgi

    with serve_asgi(starlette_app) as served:      # or serve_wsgi(flask_app)
        served.url                                  # http://127.0.0.1:PORT
        served.channel_auth_url, served.user_auth_url, served.webhook_url
        BrowserClient(soketi, served, ...)          # pusher-js posts to the app's endpoints

Both bind a socket on a free loopback port first (no race between choosing and binding) and
are stopped by flag (uvicorn's ``should_exit``) or ``shutdown()`` (wsgiref), then joined.
The endpoint paths default to the integrations' (``/pusher/auth``, ``/pusher/user-auth``,
``/pusher/webhook``).
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

LOOPBACK = "127.0.0.1"


class ServedApp:
    def __init__(self, port: int, stop: Callable[[], None]) -> None:
        self.port = port
        self._stop = stop
        self._stopped = False
        self.auth_path = "/pusher/auth"
        self.user_auth_path = "/pusher/user-auth"
        self.webhook_path = "/pusher/webhook"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def channel_auth_url(self) -> str:
        return self.url + self.auth_path

    @property
    def user_auth_url(self) -> str:
        return self.url + self.user_auth_path

    @property
    def webhook_url(self) -> str:
        return self.url + self.webhook_path

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stop()

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_asgi(app: Any, startup_timeout: float = 10.0) -> ServedApp:
    """``app`` under uvicorn (h11 or httptools, no lifespan) in a daemon thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    # Server.run skips installing signal handlers outside the main thread.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return ServedApp(port, stop)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn): not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = LOOPBACK
        self.server_port = int(self.server_address[1])
        self.setup_environ()


def serve_wsgi(app: Any) -> ServedApp:
    """``app`` under the standard library's ``wsgiref`` server (a thread per request)."""
    httpd = _ThreadingWSGIServer((LOOPBACK, 0), _QuietHandler)
    httpd.set_app(app)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)

    return ServedApp(int(httpd.server_address[1]), stop)

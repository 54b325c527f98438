"""Closing clients: ``Pusher.close()``, ``with Pusher(...)``, ``AsyncPusher.aclose()``, the fixture.

A client's pooled connections are closed when the client is; the server sees them go.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import pusher_fast
from pusher_fast.aio import AsyncPusher
from pusher_fast.transports import HTTPClientBackend, Urllib3Backend
from tests.helpers import MiniServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server():
    s = MiniServer()
    yield s
    s.stop()


def make(port: int, **options: Any) -> pusher_fast.Pusher:
    return pusher_fast.Pusher(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=port, ssl=False, **options
    )


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.mark.parametrize("backend", [HTTPClientBackend, Urllib3Backend])
def test_close_closes_the_pool_and_the_client_stays_usable(server, backend):
    client = make(server.port, backend=backend)
    assert client.trigger("a", "e", "1") == {}
    assert server.open_now == 1
    client.close()
    assert wait_until(lambda: server.open_now == 0)  # the server saw the connection close
    assert client.trigger("a", "e", "2") == {}  # a new connection
    assert server.connections == 2
    client.close()
    client.close()  # idempotent
    assert wait_until(lambda: server.open_now == 0)


def test_with_closes_on_leaving(server):
    with make(server.port) as client:
        assert isinstance(client, pusher_fast.Pusher)
        client.trigger("a", "e", "1")
        assert server.open_now == 1
    assert wait_until(lambda: server.open_now == 0)


def test_with_closes_when_the_block_raises(server):
    with pytest.raises(KeyError):
        with make(server.port) as client:
            client.trigger("a", "e", "1")
            raise KeyError("boom")
    assert wait_until(lambda: server.open_now == 0)


class _NoClose:
    def __init__(self, client: Any, **options: Any) -> None:
        pass

    def send_request(self, request: Any) -> Any:
        return {}


class _WithClose(_NoClose):
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_user_backend_is_closed_only_when_it_can_be():
    make(1, backend=_NoClose).close()  # nothing to close: no error
    with make(1, backend=_WithClose) as client:
        pass
    assert client.http.closed == 1


def test_async_pusher_closes_with_async_with_only(server):
    client = AsyncPusher(app_id="1", key="k", secret="s", host="127.0.0.1", port=server.port,
                         ssl=False)  # fmt: skip
    with pytest.raises(TypeError, match="async with"):
        with client:
            pass
    with pytest.raises(TypeError, match="aclose"):
        client.close()

    async def main() -> None:
        async with client:
            assert await client.trigger("a", "e", "1") == {}
            assert server.open_now == 1

    asyncio.run(main())
    assert wait_until(lambda: server.open_now == 0)


def test_pusher_client_fixture_closes_its_client(tmp_path):
    test_file = tmp_path / "test_fixture_close.py"
    test_file.write_text(
        textwrap.dedent(
            """
            seen = []

            def test_uses_the_client(pusher_client):
                pusher_client.trigger("orders", "created", {"id": 1})
                assert len(pusher_client.http._idle) == 1
                seen.append(pusher_client)

            def test_the_client_was_closed():
                (client,) = seen
                assert client.http._idle == []
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pusher_fast.testing.plugin",
         "-p", "no:cacheprovider", "-W", "error::ResourceWarning",
         "-W", "error::pytest.PytestUnraisableExceptionWarning",
         "--rootdir", str(tmp_path), str(test_file)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout

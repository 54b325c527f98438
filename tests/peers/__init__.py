"""Real peers for tests: soketi, pusher-js under Node, and a loopback auth/webhook server.

Everything here listens on and talks to 127.0.0.1 only, and every process is stopped by PID.

- :func:`tests.peers.soketi.start_soketi` starts a soketi server (``SoketiServer``).
- :class:`tests.peers.browser.BrowserClient` drives a pusher-js client (``tests/peers/client.js``).
- :func:`tests.peers.auth_server.start_auth_server` serves channel authorization, user
  authentication and a webhook receiver on top of a Python Pusher client object.
- :func:`tests.peers.app_server.serve_asgi` / ``serve_wsgi`` serve a real web app (uvicorn,
  wsgiref) in a thread, e.g. the ``pusher_fast.integrations`` endpoints.

``peers_available()`` tells whether ``peers/node_modules`` (``cd peers && npm ci``) is installed
(env ``PEERS_NODE_MODULES`` points elsewhere).

The module under test is chosen here, in one place: ``pusher_fast``, or the official ``pusher``
when ``PEER_TEST_MODULE=pusher`` (``module_under_test_name()``, ``official_module_under_test()``).
``MASTER_KEY`` is the 32-byte end-to-end encryption master key the test clients use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT / "peers"
# PEERS_NODE_MODULES overrides where the npm tree is (default: peers/node_modules).
NODE_MODULES = Path(os.environ.get("PEERS_NODE_MODULES") or PEERS_DIR / "node_modules")
SOKETI_BIN = NODE_MODULES / ".bin" / "soketi"
PUSHER_JS_DIR = NODE_MODULES / "pusher-js"

MODULE_ENV = "PEER_TEST_MODULE"
MASTER_KEY = b"pusher-fast-test-master-key-32b!"
assert len(MASTER_KEY) == 32


def module_under_test_name() -> str:
    """``pusher_fast`` unless ``PEER_TEST_MODULE`` names another module (``pusher``)."""
    return os.environ.get(MODULE_ENV, "").strip() or "pusher_fast"


def official_module_under_test() -> bool:
    return module_under_test_name() == "pusher"


def node_executable() -> str | None:
    """Path of the ``node`` binary (env ``NODE`` overrides), or None."""
    return os.environ.get("NODE") or shutil.which("node")


def peers_missing_reason() -> str | None:
    """Why the real peers cannot run here, or None when they can."""
    if node_executable() is None:
        return "node is not on PATH"
    if not SOKETI_BIN.exists():
        return f"{SOKETI_BIN} is missing: run `cd peers && npm ci`"
    if not PUSHER_JS_DIR.exists():
        return f"{PUSHER_JS_DIR} is missing: run `cd peers && npm ci`"
    return None


def peers_available() -> bool:
    return peers_missing_reason() is None

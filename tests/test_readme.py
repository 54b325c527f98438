"""The README works as written: every ```python block in README.md runs, and passes.

How the README's code blocks are tested (the convention for anyone adding one):

- Every fenced block names its language. ```python blocks are executed; anything else
  (```sh for shell commands, ```json, ...) is not, so a block that is not meant to run is
  not a python block. A python block that cannot run is a bug in the README: fix the block.
- Blocks are found anew on every run, so a block added to any section is tested without
  touching this file. Each runs on its own, in a fresh namespace: it imports what it uses.
- A block that defines ``test_*`` functions is a pytest module: it is written to a temporary
  directory and run by pytest in a separate process with only the ``pusher_fast`` pytest plugin
  (the fixtures ``pusher_server``, ``pusher_client``, ``pusher_url``, ``wait_for_events``,
  ``pusher_server_factory``), exactly as a user's test file would be; every test must pass.
- Any other block is executed in this process while an embedded ``PusherServer`` runs, with
  ``PUSHER_URL`` pointing at it, and with ``pusher_fast.Pusher`` (and so ``AsyncPusher``) patched
  so that a client made for the Pusher service (any host but 127.0.0.1/localhost) goes to that
  server with its credentials. Blocks may therefore write ``cluster="eu"``, ``key="KEY"``.
  A redirected block that calls ``trigger(`` or ``.add(`` must have reached the server.
- An HTML comment right before the block (blank lines between are allowed) sets it up::

      <!-- readme-test: setup=client,events service=mocked sends=no -->

  ``setup=`` names what the harness defines before the block runs: ``client`` (a
  ``pusher_fast.Pusher`` on the server), ``events`` (100 objects with ``.channel``, ``.name``,
  ``.data``), ``store`` (a function that keeps what it is given), ``webhook`` (``key``,
  ``signature``, ``body``: a valid webhook request for the redirected client's app),
  ``celery`` (no name: every Celery app the block makes, with whatever broker and backend it
  names, runs its tasks eagerly in this process, with errors propagating and an in-memory
  broker and result backend, so ``.delay(...)`` needs no broker and sends at once; what the
  block itself configures is left as it wrote it).
  ``service=mocked``: no redirect (the block intercepts HTTP itself). ``sends=no``: the block
  must send nothing (checked: the server got no request). ``accepts=N``: the server must have
  accepted at least N events when the block ends (for blocks that send through something the
  redirect does not see: a Celery task, Spark's workers). ``slow=yes``: the case is marked
  ``slow`` (it starts an engine, such as a local Spark: CI runs it once, not on every path).
- Every block runs with ``PYSPARK_PYTHON`` set to this interpreter and ``SPARK_LOCAL_IP`` to
  127.0.0.1, and a Spark session it leaves active is stopped afterwards; changes a block makes
  to ``os.environ`` are undone after it.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import pusher_fast
import pusher_fast.client
from pusher_fast.testing import PusherServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:(.*?)-->\s*$")
_HEADING = re.compile(r"^#+\s+(.*)$")
SETUP_NAMES = {"client", "events", "store", "webhook", "celery"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Block:
    lang: str
    code: str
    line: int  # of the opening fence
    section: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{slug}-line{self.line}"

    @property
    def setup(self) -> set[str]:
        return {n for n in self.options.get("setup", "").split(",") if n}

    def is_pytest_module(self) -> bool:
        return re.search(r"^(async\s+)?def test_\w*\(", self.code, re.MULTILINE) is not None


def parse_marker(text: str) -> dict[str, str]:
    options = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"readme-test marker item {item!r} is not NAME=VALUE")
        options[name] = value
    return options


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    section = ""
    i = 0
    while i < len(lines):
        heading = _HEADING.match(lines[i])
        if heading:
            section = heading.group(1)
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        options: dict[str, str] = {}
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = _MARKER.match(lines[k]) if k >= 0 else None
        if marker:
            options = parse_marker(marker.group(1))
        code = "\n".join(lines[start + 1 : j]) + "\n"
        blocks.append(Block(fence.group(1), code, start + 1, section, options))
        i = j + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.lang in ("python", "py")]
SCRIPTS = [b for b in PYTHON if not b.is_pytest_module()]
TEST_MODULES = [b for b in PYTHON if b.is_pytest_module()]


# -- the parser and the convention ---------------------------------------------------------------


def test_parser_reads_markers_languages_and_sections() -> None:
    sample = textwrap.dedent(
        """\
        # Title
        ```sh
        echo hi
        ```
        ## Part two

        <!-- readme-test: setup=client,store sends=no -->

        ```python
        x = 1
        ```
        ```python
        y = 2
        ```
        """
    )
    sh, first, second = readme_blocks(sample)
    assert (sh.lang, sh.code, sh.section) == ("sh", "echo hi\n", "Title")
    assert (first.lang, first.code, first.section, first.line) == (
        "python",
        "x = 1\n",
        "Part two",
        9,
    )
    assert first.setup == {"client", "store"} and first.options["sends"] == "no"
    assert second.options == {}  # a marker applies to the next block only
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_marker(" setup ")


def test_readme_has_python_blocks_of_both_kinds() -> None:
    assert len(SCRIPTS) >= 4 and len(TEST_MODULES) >= 2


def test_every_code_block_names_its_language() -> None:
    unnamed = [b.line for b in BLOCKS if not b.lang]
    assert not unnamed, f"README.md code blocks without a language at lines {unnamed}"


def test_markers_name_known_setup() -> None:
    for block in PYTHON:
        assert block.setup <= SETUP_NAMES, (block.id, block.setup - SETUP_NAMES)
        known = {"setup", "service", "sends", "accepts", "slow"}
        assert set(block.options) <= known, (block.id, block.options)
        assert block.options.get("service", "local") in ("local", "mocked"), block.id
        assert block.options.get("sends", "yes") in ("yes", "no"), block.id
        assert block.options.get("slow", "no") in ("yes", "no"), block.id
        assert block.options.get("accepts", "1").isdigit(), block.id
        assert not ("accepts" in block.options and block.options.get("sends") == "no"), block.id


# -- running the blocks ---------------------------------------------------------------------------


class Redirect:
    """Points clients made for the Pusher service at ``server``; counts them."""

    def __init__(self, server: PusherServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.count = 0
        original = pusher_fast.client.Pusher.__init__
        signature = inspect.signature(original)
        redirect = self

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            bound = signature.bind(self, *args, **kwargs)
            arguments = dict(bound.arguments)
            extra = arguments.pop("backend_options", {})
            arguments.pop("self")
            if arguments.get("host") not in LOCAL_HOSTS:
                redirect.count += 1
                arguments.update(redirect.server.client_kwargs())
                arguments["cluster"] = None
            original(self, **arguments, **extra)

        monkeypatch.setattr(pusher_fast.client.Pusher, "__init__", init)


def eager_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery apps made from now on run their tasks in this process, with no broker."""
    from celery import Celery

    original = Celery.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # Settings changed on the app take precedence over a later config_from_object.
        self.conf.update(
            task_always_eager=True,
            task_eager_propagates=True,
            broker_url="memory://",
            result_backend="cache+memory://",
        )

    monkeypatch.setattr(Celery, "__init__", init)


def stop_active_spark() -> None:
    if "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def namespace_for(block: Block, server: PusherServer) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_block"}
    if "client" in block.setup:
        namespace["client"] = pusher_fast.Pusher(**server.client_kwargs())
    if "events" in block.setup:
        namespace["events"] = [
            types.SimpleNamespace(channel="orders", name="tick", data={"n": n}) for n in range(100)
        ]
    if "store" in block.setup:
        kept: list[Any] = []
        namespace["store"] = kept.append
    if "webhook" in block.setup:
        body = json.dumps(
            {
                "time_ms": int(time.time() * 1000),
                "events": [{"name": "channel_occupied", "channel": "orders"}],
            }
        ).encode()
        namespace["key"] = server.key
        namespace["body"] = body
        namespace["signature"] = hmac.new(server.secret.encode(), body, hashlib.sha256).hexdigest()
    return namespace


def _param(block: Block) -> Any:
    marks = [pytest.mark.slow] if block.options.get("slow") == "yes" else []
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", [_param(b) for b in SCRIPTS])
def test_python_block_runs(block: Block, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    environ = dict(os.environ)
    with PusherServer() as server:
        monkeypatch.setenv("PUSHER_URL", server.pusher_url)
        # Spark's Python workers run this interpreter (its packages, this checkout), on loopback.
        monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
        monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        redirect = None
        if block.options.get("service", "local") == "local":
            redirect = Redirect(server, monkeypatch)
        if "celery" in block.setup:
            eager_celery(monkeypatch)
        namespace = namespace_for(block, server)
        code = compile(block.code, f"README.md:{block.line}", "exec")
        try:
            exec(code, namespace)
        finally:
            stop_active_spark()
            for name in set(os.environ) - set(environ):
                del os.environ[name]
            os.environ.update(environ)
        sent = len(server.requests)
        accepted = len(server.events)
        if "webhook" in block.setup and "payload" in namespace:
            assert namespace["payload"] is not None, "the README's webhook was not valid"
    if "accepts" in block.options:
        wanted = int(block.options["accepts"])
        assert accepted >= wanted, f"{block.id}: the server accepted {accepted} of {wanted} events"
    if block.options.get("sends") == "no":
        assert sent == 0, f"{block.id} sent {sent} requests"
    elif redirect is not None and redirect.count and re.search(r"\.trigger\(|\.add\(", block.code):
        assert sent > 0, f"{block.id} made a client for the service but nothing reached it"


@pytest.mark.parametrize("block", TEST_MODULES, ids=[b.id for b in TEST_MODULES])
def test_pytest_block_passes(block: Block, tmp_path: Path) -> None:
    module = tmp_path / f"test_readme_line{block.line}.py"
    module.write_text(block.code, encoding="utf-8")
    tests = len(re.findall(r"^(?:async\s+)?def test_\w*\(", block.code, re.MULTILINE))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pusher_fast.testing.plugin",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(module)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{tests} passed" in result.stdout, result.stdout


# -- names the README gives: distribution, extras ------------------------------------------------


def _pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return dict(tomllib.load(handle))


def test_extras_named_in_the_readme_exist() -> None:
    project = _pyproject()["project"]
    extras = set(project["optional-dependencies"])
    text = README.read_text(encoding="utf-8")
    named = re.findall(r"(?:pusher-fast|\.)\[([a-z0-9_,-]+)\]", text)
    assert named, "the README names no extras"
    for group in named:
        for extra in group.split(","):
            assert extra in extras, f"README names extra {extra!r}; pyproject has {sorted(extras)}"
    for extra in extras:  # and every extra is explained
        assert f"`{extra}`" in text, f"extra {extra!r} is not mentioned in the README"


def test_distribution_and_package_names_agree_with_the_readme() -> None:
    project = _pyproject()["project"]
    text = README.read_text(encoding="utf-8")
    assert project["name"] == "pusher-fast"
    assert f"`pip install {project['name']}`" in text
    assert project["version"] == pusher_fast.__version__
    assert f"## {project['version']}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")

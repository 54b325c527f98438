"""Typed results: ``mypy --strict`` accepts tests/typing_example.py (user code reading
results through ``pusher_fast.types``) and refuses misreadings with the expected error
codes; the example's functions also run against the local ``PusherServer``, so the
declared shapes are the answers' real ones.

The mypy runs take some seconds (one module, run by CI with the rest of the suite).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import typing_example as example

import pusher_fast
from pusher_fast import types as result_types
from pusher_fast.aio import AsyncPusher
from pusher_fast.testing import PusherServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path(__file__).resolve().parent / "typing_example.py"

# Each line marked ``# E: code`` must be reported by mypy with that code, and no other line.
MISREADINGS = """\
from __future__ import annotations

import pusher_fast
from pusher_fast.aio import AsyncPusher


def sync_reads(client: pusher_fast.Pusher) -> None:
    client.channels_info()["channel"]  # E: typeddict-item
    client.channels_info()["channels"]["presence-x"]["user_cont"]  # E: typeddict-item
    name: str = client.channel_info("presence-x")["user_count"]  # E: assignment
    client.users_info("presence-x")["users"][0]["name"]  # E: typeddict-item
    client.authenticate("private-a", "1.2")["auht"]  # E: typeddict-item
    client.authenticate_user("1.2", {"id": "7"})["channel_data"]  # E: typeddict-item
    client.trigger_batch([])["batch"][0]["usercount"]  # E: typeddict-item
    client.validate_webhook("key", "sig", "{}")["events"]  # E: index
    client.bulk().close().failed[0].event["chanel"]  # E: typeddict-item
    client.bulk().close().as_dict()["failed"].append(1)  # E: attr-defined


async def async_reads(client: AsyncPusher) -> None:
    client.channel_info("presence-x")["occupied"]  # E: index
    (await client.users_info("presence-x"))["user"]  # E: typeddict-item
"""


def _mypy(*paths: str) -> subprocess.CompletedProcess[str]:
    # Run from the repository root: its pyproject.toml configures mypy, and the package
    # is found there (the worktree's, not an installed copy).
    env = dict(os.environ, MYPYPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *paths],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_mypy_strict_accepts_the_typed_example() -> None:
    result = _mypy(str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_refuses_misreadings(tmp_path: Path) -> None:
    bad = tmp_path / "misreadings.py"
    bad.write_text(MISREADINGS)
    expected = {
        n: m.group(1)
        for n, line in enumerate(MISREADINGS.splitlines(), 1)
        if (m := re.search(r"# E: ([\w-]+)$", line))
    }
    result = _mypy(str(bad))
    assert result.returncode == 1, result.stdout + result.stderr
    reported: dict[int, set[str]] = {}
    for line in result.stdout.splitlines():
        m = re.match(r".*misreadings\.py:(\d+): error: .*\[([\w-]+)\]$", line)
        if m:
            reported.setdefault(int(m.group(1)), set()).add(m.group(2))
    assert reported == {n: {code} for n, code in expected.items()}, result.stdout


def test_types_are_exported_and_introspectable() -> None:
    for name in result_types.__all__:
        assert getattr(pusher_fast, name) is getattr(result_types, name)
        assert name in pusher_fast.__all__
        typing.get_type_hints(getattr(result_types, name))  # no unresolvable annotation
    assert pusher_fast.BulkReport is pusher_fast.bulk.BulkReport
    assert pusher_fast.FailedEvent is pusher_fast.bulk.FailedEvent
    assert result_types.ChannelInfo.__required_keys__ == {"occupied"}
    assert result_types.ChannelAuth.__required_keys__ == {"auth"}
    assert result_types.TriggerResult.__required_keys__ == frozenset()


# -- the example against real answers ------------------------------------------------------


@pytest.fixture
def server() -> Iterator[PusherServer]:
    with PusherServer() as running:
        running.add_member("presence-room", "7")
        running.add_member("presence-room", "8")
        running.add_subscriber("orders", 3)
        yield running


def test_example_reads_real_answers(server: PusherServer) -> None:
    with pusher_fast.Pusher(**server.client_kwargs()) as client:
        assert example.presence_user_count(client, "presence-room") == 2
        assert example.channel_state(client, "orders") == (True, 3)
        assert example.channel_state(client, "nobody-here") == (False, 0)
        assert example.first_user_id(client, "presence-room") in {"7", "8"}
        assert example.trigger_counts(client, "orders") == {"orders": {"subscription_count": 3}}
        assert example.batch_counts(client, "orders") == [{"subscription_count": 3}]
        assert example.to_user_and_terminate(client, "7") == {}
        auth, channel_data, user_data = example.auth_responses(client, "1.2")
        assert auth.startswith(server.key + ":")
        assert json.loads(channel_data) == {"user_id": "7"}
        assert json.loads(user_data) == {"id": "7"}
        body = json.dumps(
            {
                "time_ms": int(time.time() * 1000),
                "events": [{"name": "channel_occupied", "channel": "orders"}],
            }
        )
        signature = hmac.new(server.secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        names = example.webhook_event_names(client, server.key, signature, body)
        assert names == ["channel_occupied:orders"]
        report, summary = example.bulk_send(client, "orders")
        assert report.ok and report.delivered == 1
        assert summary["delivered"] == 1 and summary["failed"] == 0


def test_async_example_reads_real_answers(server: PusherServer) -> None:
    async def run() -> tuple[tuple[int, bool, str], int]:
        async with AsyncPusher(**server.client_kwargs()) as client:
            reads = await example.async_reads(client, "presence-room")
            report = await example.async_bulk(client, "orders")
            return reads, report.delivered

    (user_count, occupied, user_id), delivered = asyncio.run(run())
    assert (user_count, occupied, user_id in {"7", "8"}, delivered) == (2, True, True, 1)

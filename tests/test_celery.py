"""The Celery tasks (pusher_fast.integrations.celery) on a real redis broker and a real prefork
worker: every event arrives at least once, also when the worker is killed mid-run, and each
duplicate is one the broker's redelivery explains."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pusher_fast.errors import PusherBadRequest, PusherBadStatus, PusherTransportError
from pusher_fast.integrations.celery import PusherRetryableError, _is_retryable, _retry_after
from pusher_fast.testing import PusherServer

REPO = Path(__file__).resolve().parents[1]
TASKS = 5000

# -- no broker needed ------------------------------------------------------------------------


def test_which_errors_are_retried() -> None:
    assert _is_retryable(PusherTransportError("reset"))
    assert _is_retryable(PusherBadStatus("busy", 503))
    assert _is_retryable(PusherBadStatus("slow down", 429))
    assert not _is_retryable(PusherBadStatus("too big", 413))
    assert not _is_retryable(PusherBadRequest("bad"))


def test_retry_after_is_read_when_the_error_carries_it() -> None:
    assert _retry_after(PusherBadStatus("slow down", 429)) is None  # ours carry no headers
    assert _retry_after(PusherRetryableError("x", 429, 3.0)) == 3.0
    carrying = PusherBadStatus("slow down", 429)
    carrying.headers = {"Retry-After": "7"}  # type: ignore[attr-defined]
    assert _retry_after(carrying) == 7.0
    carrying.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}  # type: ignore[attr-defined]
    assert _retry_after(carrying) is None


# -- a real broker and worker ----------------------------------------------------------------

celery = pytest.importorskip("celery")
redis = pytest.importorskip("redis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (scripts/test.sh installs it)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[PusherServer]:
    with PusherServer() as srv:
        yield srv


class Worker:
    """``celery worker --pool=prefork --concurrency=2`` in its own process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
                 "--pool=prefork", "--concurrency=2", "-Q", self.env["PF_CELERY_QUEUE"],
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"pf-{uuid.uuid4().hex[:8]}@127.0.0.1", "--loglevel=WARNING"],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the pool's children too
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no chance to ack or requeue."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown: finish, then exit
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def worker_env(redis_url: str, server: PusherServer) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PF_CELERY_BROKER=redis_url,
        PF_CELERY_QUEUE=f"pf-{uuid.uuid4().hex[:8]}",
        PUSHER_URL=server.pusher_url,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    return env


@pytest.fixture(scope="module")
def app(worker_env: dict[str, str]) -> Any:
    """The test app, in this process (to send tasks), configured like the worker's."""
    for key in ("PF_CELERY_BROKER", "PF_CELERY_QUEUE", "PUSHER_URL"):
        os.environ[key] = worker_env[key]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import tests.celery_app as module

    return module


@pytest.fixture(scope="module")
def worker(
    worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    w = Worker(worker_env, tmp_path_factory.mktemp("celery") / "worker.log")
    w.start()
    try:
        yield w
    finally:
        w.stop()


def _wait(predicate: Any, timeout: float, what: str, progress: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {progress() if progress else ''}")
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_worker_loses_nothing_and_duplicates_are_redeliveries(
    app: Any, worker: Worker, server: PusherServer
) -> None:
    channel = f"celery-{uuid.uuid4().hex[:8]}"
    runs = redis.Redis.from_url(os.environ["PF_CELERY_BROKER"])
    runs.delete("pf:runs")
    task_ids = {}
    for i in range(TASKS):
        task_ids[app.tasks.trigger.delay(channel, "tick", {"i": i}).id] = i

    def arrived() -> int:
        return len(server.events_for(channel))

    sent = time.monotonic()
    _wait(lambda: arrived() >= 1000, 120, "1000 events before the kill")
    rate = 1000 / (time.monotonic() - sent)
    worker.kill()
    at_kill = arrived()
    assert at_kill < TASKS, "the worker finished before it could be killed"
    worker.start()
    started = time.monotonic()

    def progress() -> str:
        queue = os.environ["PF_CELERY_QUEUE"]
        seen = len({e.json()["i"] for e in server.events_for(channel)})
        return (
            f"{seen} distinct events after {time.monotonic() - started:.0f} s; queue "
            f"{runs.llen(queue)}, unacked {runs.hlen('unacked')}"
        )

    _wait(
        lambda: len({e.json()["i"] for e in server.events_for(channel)}) == TASKS,
        180,
        "every event after the restart",
        progress,
    )
    time.sleep(1)  # late duplicates, if any, land too
    counts = collections.Counter(e.json()["i"] for e in server.events_for(channel))
    assert set(counts) == set(range(TASKS))  # every event arrived at least once

    executions: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for raw in runs.lrange("pf:runs", 0, -1):
        run = json.loads(raw)
        executions[task_ids[run["id"]]].append(run)
    duplicates = {i: n - 1 for i, n in counts.items() if n > 1}
    for i, extra in duplicates.items():
        # A duplicate is a task that ran again: the broker gave its message back.
        assert len(executions[i]) >= extra + 1
        assert any(run["redelivered"] for run in executions[i])
    redelivered = sum(1 for r in executions.values() for run in r if run["redelivered"])
    assert redelivered > 0, "the kill should have left unacknowledged messages to redeliver"
    assert sum(duplicates.values()) <= redelivered
    print(
        f"\n{rate:.0f} tasks/s; killed at {at_kill} events; "
        f"{len(server.events_for(channel))} events for {TASKS} tasks: "
        f"{sum(duplicates.values())} duplicates, {redelivered} redelivered runs"
    )


@pytest.mark.slow
def test_retryable_answers_are_retried_by_celery(
    app: Any, worker: Worker, server: PusherServer
) -> None:
    channel = f"retry-{uuid.uuid4().hex[:8]}"
    server.fail_next(2, status=503)
    result = app.tasks.trigger.delay(channel, "tick", {"n": 1})
    assert result.get(timeout=60) == {}
    assert [e.json() for e in server.events_for(channel)] == [{"n": 1}]
    refused = app.tasks.trigger.delay("bad channel!", "tick", {"n": 2})
    with pytest.raises(ValueError):
        refused.get(timeout=30)
    batch = [{"channel": channel, "name": "b", "data": {"k": k}} for k in range(3)]
    server.fail_next(1, status=500)
    assert app.tasks.trigger_batch.delay(batch).get(timeout=60) == {}
    assert sorted(e.json()["k"] for e in server.events_for(channel, "b")) == [0, 1, 2]


@pytest.mark.slow
def test_grouped_calls_become_batch_requests_with_results_per_call(
    app: Any, worker: Worker, server: PusherServer
) -> None:
    channel = f"grouped-{uuid.uuid4().hex[:8]}"
    before = len(server.requests)
    results = [app.tasks.trigger_grouped.delay(channel, "g", {"i": i}) for i in range(200)]
    bad = app.tasks.trigger_grouped.delay("bad channel!", "g", {"i": -1})
    assert [r.get(timeout=60) for r in results] == [{}] * 200
    with pytest.raises(Exception, match=r"(?i)channel"):
        bad.get(timeout=30)
    events = server.events_for(channel)
    assert sorted(e.json()["i"] for e in events) == list(range(200))
    requests = [r for r in server.requests[before:] if r.path.endswith("/batch_events")]
    assert all(json.loads(r.body)["batch"].__len__() <= 10 for r in requests)
    # grouped: far fewer requests than calls
    assert len(requests) <= 200 // 10 + 10

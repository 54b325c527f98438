"""The Spark sink (pusher_fast.integrations.spark) on a real local Spark: rows become events on
the embedded Pusher API server, counted by accumulators, failed rows in the dead letter."""

from __future__ import annotations

import collections
import json
import os
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pusher_fast.integrations.spark import (
    PusherCredentials,
    TokenBucket,
    partition_rate,
)
from pusher_fast.testing import PusherServer

SECRET = f"spark-secret-{uuid.uuid4().hex}"
ROWS = 20_000

# -- credentials, rate budget: no Spark needed ---------------------------------------------------


def test_credentials_pickle_and_never_show_the_secret() -> None:
    by_url = PusherCredentials(f"http://the-key:{SECRET}@127.0.0.1:8080/apps/42")
    by_kwargs = PusherCredentials(
        app_id="42", key="the-key", secret=SECRET, host="127.0.0.1", port=8080, ssl=False
    )
    for creds in (by_url, by_kwargs):
        for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
            assert SECRET not in text
            assert "the-key" in text or "42" in text
        copy = pickle.loads(pickle.dumps(creds))
        assert copy == creds
        client = copy.client()
        assert client.secret == SECRET
        assert (client.host, client.port, client.app_id) == ("127.0.0.1", 8080, "42")


def test_credentials_refuse_bad_input_without_echoing_the_secret() -> None:
    with pytest.raises(ValueError, match="not both"):
        PusherCredentials("http://k:s@h/apps/1", app_id="1")
    with pytest.raises(ValueError) as info:
        PusherCredentials(f"ftp://k:{SECRET}@h/apps/1")
    assert SECRET not in str(info.value)
    with pytest.raises(TypeError):
        PusherCredentials(b"http://k:s@h/apps/1")  # type: ignore[arg-type]


def test_rate_budget_is_split_over_the_partitions_running_at_once() -> None:
    assert partition_rate(1000, partitions=8, parallelism=2) == 500
    assert partition_rate(1000, partitions=1, parallelism=16) == 1000
    assert partition_rate(1000, partitions=100, parallelism=100) == 10
    with pytest.raises(ValueError, match="max_events_per_second"):
        partition_rate(0, 1, 1)


def test_token_bucket_paces_at_its_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(100, burst=10, clock=lambda: now[0], sleep=sleep)
    for _ in range(1010):
        bucket.take()
    # 10 tokens of burst, then 1000 events at 100/s: 10 seconds of (simulated) waiting.
    assert now[0] == pytest.approx(10.0, rel=1e-6)
    assert all(s > 0 for s in slept)


# -- real Spark ------------------------------------------------------------------------------


def _spark_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyspark") is None


needs_spark = pytest.mark.skipif(_spark_missing(), reason="pyspark is not installed")


@pytest.fixture(scope="module")
def event_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="module")
def spark(event_log: Path) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # The Python workers run this interpreter (its packages, this checkout on PYTHONPATH).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2,4]")  # 2 cores; a task may fail 4 times
        .appName("pusher_fast-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", str(event_log))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
    # What the Spark UI (and the history server) shows is this event log: no secret in it.
    texts = [p.read_text(errors="replace") for p in event_log.rglob("*") if p.is_file()]
    assert texts, "Spark wrote no event log"
    assert not any(SECRET in text for text in texts)


@pytest.fixture
def server() -> Iterator[PusherServer]:
    with PusherServer(secret=SECRET, max_payload_bytes=300) as srv:
        yield srv


def _ids(server: PusherServer, channel_prefix: str = "") -> list[int]:
    return [e.json()["id"] for e in server.events if e.channel.startswith(channel_prefix)]


def _dead_rows(spark: Any, path: Path) -> list[dict[str, Any]]:
    from pusher_fast.integrations.spark import read_dead_letter

    return [row.asDict() for row in read_dead_letter(spark, str(path)).collect()]


@pytest.mark.slow
@needs_spark
def test_every_row_delivered_exactly_once_when_nothing_fails(
    spark: Any, server: PusherServer, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    from pusher_fast.integrations.spark import send_dataframe

    df = spark.range(ROWS, numPartitions=8)
    report = send_dataframe(
        df,
        credentials=PusherCredentials(server.pusher_url),
        channel=F.concat(F.lit("orders-"), (F.col("id") % 5).cast("string")),
        event=F.lit("created"),
        data=F.struct(F.col("id")),
        dead_letter=str(tmp_path / "dead"),
    )
    ids = _ids(server)
    assert (report.submitted, report.delivered, report.failed) == (ROWS, ROWS, 0)
    assert report.retries == 0
    assert sorted(ids) == list(range(ROWS))  # each row once, none twice
    by_channel = collections.Counter(e.channel for e in server.events)
    assert by_channel == {f"orders-{k}": ROWS // 5 for k in range(5)}
    assert {e.name for e in server.events} == {"created"}
    assert _dead_rows(spark, tmp_path / "dead") == []
    # batches of up to 10 events (a partial one when a sender thread is idle), all accepted
    assert ROWS // 10 <= len(server.requests) < ROWS // 5
    assert all(r.status == 200 for r in server.requests)


@pytest.mark.slow
@needs_spark
def test_faults_retried_task_and_dead_letter(
    spark: Any, server: PusherServer, tmp_path: Path
) -> None:
    """500s to a share of requests, one task failing once, undeliverable rows: every row
    delivered at least once, counts as recorded, the dead letter exactly the rest."""
    from pyspark import TaskContext
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    from pusher_fast.integrations.spark import send_dataframe

    # Every 7th request answered 500 (injected after the 7th, 14th, ... answer).
    answered = [0]
    lock = threading.Lock()

    def every_seventh(_request: Any) -> None:
        with lock:
            answered[0] += 1
            if answered[0] % 7 == 0:
                server.fail_next(1, status=500)

    server.on_request(every_seventh)

    marker = tmp_path / "failed-once"

    def fail_first_attempt(index: int, ids: Iterator[int]) -> Iterator[tuple[int, str, str]]:
        attempt = TaskContext.get().attemptNumber()
        for i in ids:
            if index == 0 and attempt == 0 and i == 2000:
                # Rows already handed downstream get sent meanwhile: the re-run sends them again.
                time.sleep(2)
                marker.write_text("attempt 0 of partition 0 failed on purpose")
                raise RuntimeError("injected task failure (first attempt only)")
            # Undeliverable: a channel name the client refuses (never sent), and data bigger
            # than the server's 300-byte limit (413 for its whole batch, never retried).
            channel = "bad channel!" if i % 1000 == 500 else f"orders-{i % 3}"
            pad = "x" * 400 if (i % 1000 == 7 and i >= 2500) else ""
            if index == 0:
                # Rows reach the sink through 64 KB buffers: make the failed attempt's
                # first 2000 rows big enough to get there before it fails.
                pad = "y" * 150
            yield i, channel, pad

    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("channel", StringType()),
            StructField("pad", StringType()),
        ]
    )
    rows = spark.sparkContext.parallelize(range(ROWS), 8).mapPartitionsWithIndex(fail_first_attempt)
    df = spark.createDataFrame(rows, schema)
    dead = tmp_path / "dead"
    report = send_dataframe(
        df,
        credentials=PusherCredentials(**server.client_kwargs()),
        channel="channel",
        event=F.lit("created"),
        data=F.struct("id", "pad"),
        dead_letter=str(dead),
        retries=8,
    )
    server.on_request(None)
    assert marker.exists(), "the injected task failure did not happen"

    recorded = _ids(server)
    delivered = set(recorded)
    dead_rows = _dead_rows(spark, dead)
    dead_ids = [json.loads(r["data"])["id"] for r in dead_rows]

    # The account: every row read once (Spark drops the failed attempt's counts) ...
    assert report.submitted == ROWS
    assert report.delivered + report.failed == ROWS
    # ... matches what the server recorded, duplicates aside ...
    assert report.delivered == len(delivered)
    assert report.failed == len(dead_rows) == len(set(dead_ids))
    # ... and every row is delivered or in the dead letter, never both, never neither.
    assert delivered.isdisjoint(dead_ids)
    assert delivered | set(dead_ids) == set(range(ROWS))
    rejected = {i for i in range(ROWS) if i % 1000 == 500}
    too_big = {i for i in range(2500, ROWS) if i % 1000 == 7}
    assert rejected | too_big <= set(dead_ids)
    reasons = {json.loads(r["data"])["id"]: r for r in dead_rows}
    assert all(reasons[i]["reason"].startswith("rejected:") for i in rejected)
    assert all(reasons[i]["status"] == 413 for i in too_big)
    # Only 413 batches (10 rows, or fewer at a partition's end) fail on the server's side.
    server_failed = [i for i in dead_ids if i not in rejected]
    assert len(server_failed) <= 10 * len(too_big)
    # Duplicates come only from the first attempt of the failed task (rows before 2000).
    duplicates = collections.Counter(recorded) - collections.Counter(delivered)
    assert duplicates and all(i < 2000 for i in duplicates)
    assert len(recorded) == len(delivered) + sum(duplicates.values())
    # The 500s were retried (those of the failed attempt are not counted).
    failed_500 = sum(1 for r in server.requests if r.status == 500)
    assert 0 < report.retries <= failed_500
    print(
        f"\nfaults run: {report.as_dict()}, recorded {len(recorded)} events, "
        f"{sum(duplicates.values())} duplicates, {failed_500} answers 500"
    )


@pytest.mark.slow
@needs_spark
def test_dead_letter_rerun_is_one_call(spark: Any, server: PusherServer, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    from pusher_fast.integrations.spark import resend_dead_letter, send_dataframe

    df = spark.range(200, numPartitions=2)
    server.set_disabled(True)  # 403 for everything: every row fails
    dead = tmp_path / "dead"
    first = send_dataframe(
        df,
        credentials=server.pusher_url,
        channel=F.lit("replay"),
        event=F.lit("created"),
        data=F.struct("id"),
        event_id="id",
        dead_letter=str(dead),
    )
    assert (first.delivered, first.failed) == (0, 200)
    assert server.events == []
    server.set_disabled(False)
    again = resend_dead_letter(
        spark, str(dead), credentials=server.pusher_url, dead_letter=str(tmp_path / "dead2")
    )
    assert (again.submitted, again.delivered, again.failed) == (200, 200, 0)
    events = server.events_for("replay")
    assert sorted(e.json()["id"] for e in events) == list(range(200))
    assert all(e.json()["event_id"] == str(e.json()["id"]) for e in events)


@pytest.mark.slow
@needs_spark
def test_rate_budget_and_plain_values(spark: Any, server: PusherServer) -> None:
    """A budget of 400 events/s over 2 concurrent partitions: 200/s each; a numeric data
    column is JSON-encoded by the client; socket ids are passed on."""
    from pyspark.sql import functions as F

    from pusher_fast.integrations.spark import send_dataframe

    df = spark.range(400, numPartitions=2)
    started = time.monotonic()
    report = send_dataframe(
        df,
        credentials=server.pusher_url,
        channel=F.lit("paced"),
        event=F.lit("n"),
        data="id",
        socket_id=F.lit("123.456"),
        max_events_per_second=400,
    )
    elapsed = time.monotonic() - started
    assert report.delivered == 400
    events = server.events_for("paced")
    assert sorted(int(e.data) for e in events) == list(range(400))
    assert {e.socket_id for e in events} == {"123.456"}
    # each partition: 200 rows at 200/s after a 20-event burst: at least 0.9 s of pacing
    assert elapsed >= 0.9


@pytest.mark.slow
@needs_spark
def test_structured_streaming_checkpoint_restart(
    spark: Any, server: PusherServer, tmp_path: Path
) -> None:
    """Three micro-batches from a file source; a restart from the checkpoint sends nothing
    again; a batch that failed after sending is run again (same event ids), the committed
    ones are not."""
    from pyspark.sql import functions as F

    from pusher_fast.integrations.spark import foreach_batch_writer

    source = tmp_path / "in"
    source.mkdir()
    checkpoint = tmp_path / "checkpoint"

    def add_file(n: int, count: int = 100) -> None:
        lines = "\n".join(json.dumps({"id": n * 1000 + i, "file": n}) for i in range(count))
        tmp = tmp_path / f"tmp-{n}.json"
        tmp.write_text(lines + "\n")
        tmp.rename(source / f"part-{n}.json")  # the source must never see half a file

    writer = foreach_batch_writer(
        credentials=server.pusher_url,
        channel=F.lit("stream"),
        event=F.lit("row"),
        data=F.struct("id", "file"),
        event_id=True,
        dead_letter=str(tmp_path / "dead"),
    )
    fail_batch: list[int] = []

    def run_once() -> None:
        def batch(df: Any, batch_id: int) -> None:
            writer(df, batch_id)
            if batch_id in fail_batch:
                fail_batch.remove(batch_id)
                raise RuntimeError(f"injected failure after sending batch {batch_id}")

        query = (
            spark.readStream.schema("id LONG, file INT")
            .option("maxFilesPerTrigger", 1)
            .json(str(source))
            .writeStream.foreachBatch(batch)
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()

    for n in range(3):
        add_file(n)
    run_once()
    assert [r.batch_id for r in writer.reports] == [0, 1, 2]
    assert all(r.delivered == 100 and r.failed == 0 for r in writer.reports)
    first = [e.json() for e in server.events_for("stream")]
    assert sorted(e["id"] for e in first) == sorted(
        n * 1000 + i for n in range(3) for i in range(100)
    )
    assert len({e["event_id"] for e in first}) == 300

    run_once()  # restart, nothing new: no batch runs, nothing is sent again
    assert len(writer.reports) == 3
    assert len(server.events_for("stream")) == 300

    add_file(3)
    fail_batch.append(3)
    with pytest.raises(Exception, match="injected failure"):
        run_once()
    run_once()  # batch 3 was not committed: it runs again, and only it
    assert [r.batch_id for r in writer.reports] == [0, 1, 2, 3, 3]
    events = [e.json() for e in server.events_for("stream")]
    counts = collections.Counter(e["event_id"] for e in events)
    by_file = collections.defaultdict(set)
    for e in events:
        by_file[e["file"]].add(counts[e["event_id"]])
    assert by_file == {0: {1}, 1: {1}, 2: {1}, 3: {2}}  # committed batches never resent
    # the re-run sent the same event ids: subscribers can drop the duplicates
    ids_by_file3 = collections.Counter(e["event_id"] for e in events if e["file"] == 3)
    assert len(ids_by_file3) == 100 and set(ids_by_file3.values()) == {2}

"""Spark sink: send the rows of a DataFrame as Pusher events, from the executors.

>>> report = send_dataframe(                                  # doctest: +SKIP
...     df, credentials=PusherCredentials.from_env(),
...     channel="channel", event=F.lit("created"), data=F.struct("id", "total"),
...     dead_letter="s3://bucket/pusher-dead-letter/run-42")
>>> report.delivered, report.failed                           # doctest: +SKIP
(1000000, 0)

How it uses Spark:
- Rows are sent from the tasks (``mapPartitions``).  Each Python worker process keeps one
  client and one :class:`~pusher_fast.bulk.BulkSender` per credentials, built lazily on first
  use and reused by every partition and task that process runs (module-level cache, closed at
  exit).  A Python worker runs one task at a time, so a partition owns the sender while it runs:
  it waits until every row it added is delivered or failed before the task ends, so a task
  that succeeded has nothing left in flight.
- Counts come from Spark accumulators, which Spark applies once per successful task: a task
  that failed and was re-run counts once.  Rows sent by the failed attempt were sent all the
  same: the delivery guarantee is **at least once**; ``event_id`` puts a deterministic id into
  each event's data so subscribers can drop the duplicates.
- Rows that could not be delivered (refused by validation, a 4xx, or retries exhausted) are
  written with the reason to ``dead_letter`` as JSON lines by Spark's own writer, whose commit
  protocol keeps only the output of the attempt that succeeded: the location holds exactly the
  failed rows of the committed tasks, and :func:`resend_dead_letter` sends them again in one call.
- ``max_events_per_second`` is a budget for the whole job, split evenly over the partitions
  that can run at once: ``min(partitions, spark.defaultParallelism)``.  Each partition paces
  itself with a token bucket at that share.  It is an approximation: a partition that finishes
  early leaves its share unused (the job runs below the budget, never above it, as long as the
  cluster does not run more tasks at once than ``defaultParallelism``).

Credentials travel to the executors pickled inside the task, never through Spark's
configuration, job descriptions or logs (which the Spark UI shows); their ``repr`` hides the
secret.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import orjson

from ._credentials import PusherCredentials, close_client

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from ..bulk import BulkSender, FailedEvent
    from ..client import Pusher

__all__ = [
    "DEAD_LETTER_SCHEMA_DDL",
    "ForeachBatchWriter",
    "PusherCredentials",
    "SparkReport",
    "TokenBucket",
    "foreach_batch_writer",
    "partition_rate",
    "resend_dead_letter",
    "send_dataframe",
]

_log = logging.getLogger("pusher_fast.integrations.spark")

#: Columns of a dead-letter row.  ``data`` is the event's JSON text as it was to be sent (with
#: the event id, when one was added), so the rows can be sent again as they are.
DEAD_LETTER_SCHEMA_DDL = (
    "channel STRING, name STRING, data STRING, socket_id STRING, "
    "reason STRING, status INT, attempts INT"
)

ColumnLike = Union[str, "Column"]

# -- reports ---------------------------------------------------------------------------------


@dataclass
class SparkReport:
    """The account of one :func:`send_dataframe` run (or one streaming micro-batch).

    ``submitted`` rows were read, ``delivered`` accepted by the API, ``failed`` not delivered
    (each one in ``dead_letter`` when a location was given); ``retries`` counts batch requests
    that were sent again.  Rows from task attempts that failed and were re-run are not counted
    (Spark drops their accumulator updates) although they may have been delivered.
    """

    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    elapsed: float = 0.0
    batch_id: Optional[int] = None
    dead_letter: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.delivered == self.submitted

    def as_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "delivered": self.delivered,
            "failed": self.failed,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed, 3),
            "batch_id": self.batch_id,
            "dead_letter": self.dead_letter,
        }


# -- rate budget -----------------------------------------------------------------------------


def partition_rate(max_events_per_second: float, partitions: int, parallelism: int) -> float:
    """Each partition's share of a job-wide budget: the budget over the tasks that can run
    at once, ``min(partitions, parallelism)``."""
    if max_events_per_second <= 0:
        raise ValueError(f"max_events_per_second must be > 0, got {max_events_per_second!r}")
    return max_events_per_second / max(1, min(partitions, parallelism))


class TokenBucket:
    """Pace a loop at ``rate`` events per second, with bursts of up to ``burst`` events."""

    def __init__(
        self,
        rate: float,
        burst: Optional[float] = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.rate = float(rate)
        # A tenth of a second's worth, at least one batch: smooth, without a sleep per event.
        self.burst = float(burst) if burst is not None else max(10.0, self.rate / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    def take(self, n: float = 1.0) -> None:
        """Wait until ``n`` tokens are available and take them."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < n:
            self._sleep((n - self._tokens) / self.rate)
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        self._tokens -= n


# -- the per-process client and sender -------------------------------------------------------


class _ProcessSender:
    """The client and bulk sender a worker process shares between its partitions."""

    def __init__(self, credentials: PusherCredentials, options: dict[str, Any]) -> None:
        self.client: Pusher = credentials.client()
        self.sender: BulkSender = self.client.bulk(**options)

    def close(self) -> None:
        try:
            self.sender.close()
        finally:
            close_client(self.client)


_cache_lock = threading.Lock()
_cache: dict[tuple[Any, ...], _ProcessSender] = {}


def _process_sender(credentials: PusherCredentials, options: dict[str, Any]) -> _ProcessSender:
    key = (credentials.cache_key(), tuple(sorted(options.items())))
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None:
            entry = _cache[key] = _ProcessSender(credentials, options)
        return entry


def _evict(entry: _ProcessSender) -> None:
    with _cache_lock:
        for key, value in list(_cache.items()):
            if value is entry:
                del _cache[key]


@atexit.register
def _close_all() -> None:
    """Close every cached sender and client.  PySpark's forked workers end with ``os._exit``,
    which skips this: nothing depends on it, since each partition waits for its own rows."""
    with _cache_lock:
        entries = list(_cache.values())
        _cache.clear()
    for entry in entries:
        try:
            entry.close()
        except Exception:
            _log.exception("pusher_fast: closing a Spark worker's sender failed")


# -- the task side ---------------------------------------------------------------------------

_DeadRow = tuple[str, str, str, Optional[str], str, Optional[int], int]


def _event_id_into(data: Any, raw: bool, field: str, event_id: str) -> Any:
    """``data`` with ``field: event_id`` added (a JSON object text, or a dict)."""
    if raw:
        text = data.lstrip() if isinstance(data, str) else data
        if not isinstance(text, str) or not text.startswith("{"):
            raise ValueError(
                f"event_id needs JSON object data to hold the {field!r} field, got {data!r:.80}"
            )
        head = "{" + orjson.dumps(field).decode() + ":" + orjson.dumps(event_id).decode()
        rest = text[1:].lstrip()
        return head + ("}" if rest.startswith("}") else "," + rest)
    if not isinstance(data, dict):
        raise ValueError(
            f"event_id needs object data to hold the {field!r} field, got {type(data).__name__}"
        )
    return {**data, field: event_id}


def _as_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return repr(data)


class _PartitionSender:
    """What every task runs (pickled to the executors): send the partition's rows, wait for
    them, count them in the accumulators, yield the rows that failed."""

    def __init__(
        self,
        credentials: PusherCredentials,
        sender_options: dict[str, Any],
        accumulators: tuple[Any, Any, Any, Any],
        *,
        raw_data: bool,
        has_socket_id: bool,
        event_id: str,
        event_id_field: str,
        batch_id: Optional[int],
        rate: Optional[float],
        flush_timeout: float,
    ) -> None:
        self.credentials = credentials
        self.sender_options = sender_options
        self.accumulators = accumulators
        self.raw_data = raw_data
        self.has_socket_id = has_socket_id
        self.event_id = event_id  # "" none, "column" the 5th column, "auto" derived
        self.event_id_field = event_id_field
        self.batch_id = batch_id
        self.rate = rate
        self.flush_timeout = flush_timeout

    def __call__(self, rows: Iterable[Any]) -> Iterator[_DeadRow]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        entry = _process_sender(self.credentials, self.sender_options)
        sender = entry.sender
        report = sender.report
        base_submitted = report.submitted
        base_delivered = report.delivered
        base_failed = len(report.failed)
        base_retries = report.retries
        rejected: list[_DeadRow] = []
        bucket = TokenBucket(self.rate) if self.rate else None
        raw, field, mode = self.raw_data, self.event_id_field, self.event_id
        prefix = f"{self.batch_id}-{partition}-" if self.batch_id is not None else f"{partition}-"
        socket_index = 3 if self.has_socket_id else -1
        try:
            for index, row in enumerate(rows):
                channel, name, data = row[0], row[1], row[2]
                socket_id = row[socket_index] if socket_index > 0 else None
                try:
                    if mode:
                        ident = row[-1] if mode == "column" else prefix + str(index)
                        data = _event_id_into(data, raw, field, str(ident))
                    if bucket is not None:
                        bucket.take()
                    sender.add(channel, name, data, socket_id)
                except (ValueError, TypeError) as exc:
                    # Bad input is the row's fault, not the job's: it goes to the dead letter.
                    reason = f"rejected: {exc}"
                    rejected.append(
                        (str(channel), str(name), _as_text(data), socket_id, reason, None, 0)
                    )
        except BaseException:
            # The task fails (Spark re-runs it); let what it added settle first, so that the
            # next partition this process runs starts from a quiet sender.
            added = report.submitted - base_submitted
            self._wait(entry, base_submitted, base_delivered, base_failed, added)
            raise
        added = report.submitted - base_submitted
        report = self._wait(entry, base_submitted, base_delivered, base_failed, added)
        failures: list[FailedEvent] = report.failed[base_failed:]
        delivered = report.delivered - base_delivered
        submitted_acc, delivered_acc, failed_acc, retries_acc = self.accumulators
        submitted_acc.add(added + len(rejected))
        delivered_acc.add(delivered)
        failed_acc.add(len(failures) + len(rejected))
        retries_acc.add(report.retries - base_retries)
        for row in rejected:
            yield row
        for failure in failures:
            event = failure.event
            yield (
                event["channel"],
                event["name"],
                event["data"],
                event.get("socket_id"),
                failure.reason,
                failure.status,
                failure.attempts,
            )

    def _wait(
        self,
        entry: _ProcessSender,
        base_submitted: int,
        base_delivered: int,
        base_failed: int,
        added: int,
    ) -> Any:
        """Wait until the ``added`` events are delivered or failed; return the report.

        Past ``flush_timeout`` the sender is closed (its account is then final: whatever was
        left is reported failed) and dropped from the cache."""
        sender = entry.sender
        report = sender.report
        deadline = time.monotonic() + self.flush_timeout
        delay = 0.0005
        while report.delivered - base_delivered + len(report.failed) - base_failed < added:
            if time.monotonic() > deadline:
                _evict(entry)
                report = sender.close(timeout=0)
                close_client(entry.client)
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        return report


def _consume(rows: Iterable[Any]) -> None:
    for _ in rows:
        pass


# -- the driver side -------------------------------------------------------------------------


def _column(df: DataFrame, value: ColumnLike, what: str) -> Column:
    from pyspark.sql import Column
    from pyspark.sql import functions as F

    if isinstance(value, str):
        return df[value] if value in df.columns else F.col(value)
    if isinstance(value, Column):
        return value
    raise TypeError(
        f"{what} must be a column name or a pyspark Column (F.lit(...) for a constant), "
        f"got {type(value).__name__}"
    )


def _prepare(
    df: DataFrame,
    channel: ColumnLike,
    event: ColumnLike,
    data: ColumnLike,
    socket_id: Optional[ColumnLike],
    event_id: Union[ColumnLike, bool, None],
) -> tuple[DataFrame, bool, bool, str]:
    """The DataFrame of (channel, name, data[, socket_id][, event_id]) to send."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    data_col = _column(df, data, "data")
    data_type = df.select(data_col).schema.fields[0].dataType
    raw = True
    if isinstance(data_type, (StructType, MapType, ArrayType)):
        data_col = F.to_json(data_col)  # encoded in the JVM: cheaper than Rows in Python
    elif not isinstance(data_type, StringType):
        raw = False  # numbers, booleans: the client encodes them
    columns = [
        _column(df, channel, "channel").cast("string").alias("channel"),
        _column(df, event, "event").cast("string").alias("name"),
        data_col.alias("data"),
    ]
    if socket_id is not None:
        columns.append(_column(df, socket_id, "socket_id").cast("string").alias("socket_id"))
    mode = ""
    if event_id is True:
        mode = "auto"
    elif event_id is not None and event_id is not False:
        mode = "column"
        columns.append(_column(df, event_id, "event_id").cast("string").alias("event_id"))
    return df.select(*columns), raw, socket_id is not None, mode


def _credentials_of(credentials: Union[PusherCredentials, str]) -> PusherCredentials:
    if isinstance(credentials, str):
        credentials = PusherCredentials(credentials)
    if not isinstance(credentials, PusherCredentials):
        raise TypeError(
            "credentials must be a PusherCredentials or a PUSHER_URL string, got "
            f"{type(credentials).__name__}"
        )
    return credentials


def _run(spark: SparkSession, failed_rows: Any, dead_letter: Optional[str], mode: str) -> None:
    """Run the job: the failed rows go to ``dead_letter`` (Spark's writer) or are dropped."""
    if dead_letter is not None:
        spark.createDataFrame(failed_rows, DEAD_LETTER_SCHEMA_DDL).write.mode(mode).json(
            dead_letter
        )
    else:
        failed_rows.foreachPartition(_consume)


def send_dataframe(
    df: DataFrame,
    *,
    credentials: Union[PusherCredentials, str],
    channel: ColumnLike,
    event: ColumnLike,
    data: ColumnLike,
    socket_id: Optional[ColumnLike] = None,
    event_id: Union[ColumnLike, bool, None] = None,
    event_id_field: str = "event_id",
    dead_letter: Optional[str] = None,
    dead_letter_mode: str = "errorifexists",
    max_events_per_second: Optional[float] = None,
    batch_size: int = 10,
    concurrency: int = 4,
    retries: int = 5,
    flush_timeout: float = 300.0,
    batch_id: Optional[int] = None,
) -> SparkReport:
    """Send every row of ``df`` as an event and return the account.

    ``channel``, ``event``, ``data``, ``socket_id``: column names or Columns (``F.lit("x")``
    for a constant).  A string ``data`` column is sent as the JSON text it holds; a struct,
    map or array is turned into JSON by Spark; other types are encoded by the client.
    ``event_id``: a column whose value goes into each event's data as ``event_id_field``, or
    ``True`` for an id derived from the partition and the row's index in it (and the batch id
    when streaming), deterministic as long as the input's partitioning is; data must then be a
    JSON object.  ``dead_letter``: where Spark writes the failed rows (JSON lines, any path
    ``DataFrame.write.json`` takes), with ``dead_letter_mode`` (``errorifexists``,
    ``overwrite``, ``append``).  ``batch_size``, ``concurrency``, ``retries``: each worker
    process's :class:`~pusher_fast.bulk.BulkSender`.
    """
    credentials = _credentials_of(credentials)
    if flush_timeout <= 0:
        raise ValueError(f"flush_timeout must be > 0, got {flush_timeout!r}")
    spark = df.sparkSession
    sc = spark.sparkContext
    started = time.monotonic()
    selected, raw, has_socket_id, mode = _prepare(df, channel, event, data, socket_id, event_id)
    rate = None
    if max_events_per_second is not None:
        rate = partition_rate(
            max_events_per_second, selected.rdd.getNumPartitions(), sc.defaultParallelism
        )
    accumulators = (sc.accumulator(0), sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))
    task = _PartitionSender(
        credentials,
        {"batch_size": batch_size, "concurrency": concurrency, "retries": retries},
        accumulators,
        raw_data=raw,
        has_socket_id=has_socket_id,
        event_id=mode,
        event_id_field=event_id_field,
        batch_id=batch_id,
        rate=rate,
        flush_timeout=flush_timeout,
    )
    _run(spark, selected.rdd.mapPartitions(task), dead_letter, dead_letter_mode)
    submitted, delivered, failed, retried = (acc.value for acc in accumulators)
    report = SparkReport(
        submitted=submitted,
        delivered=delivered,
        failed=failed,
        retries=retried,
        elapsed=time.monotonic() - started,
        batch_id=batch_id,
        dead_letter=dead_letter,
    )
    _log.info("pusher_fast: Spark sink %s", report.as_dict())
    return report


def read_dead_letter(spark: SparkSession, path: str) -> DataFrame:
    """The failed rows at ``path`` as a DataFrame (columns of ``DEAD_LETTER_SCHEMA_DDL``)."""
    return spark.read.schema(DEAD_LETTER_SCHEMA_DDL).json(path)


def resend_dead_letter(
    spark: SparkSession,
    path: str,
    *,
    credentials: Union[PusherCredentials, str],
    **options: Any,
) -> SparkReport:
    """Send the rows of a dead-letter location again (``options`` as for
    :func:`send_dataframe`; give a new ``dead_letter`` for what fails this time)."""
    df = read_dead_letter(spark, path)
    return send_dataframe(
        df,
        credentials=credentials,
        channel="channel",
        event="name",
        data="data",
        socket_id="socket_id",
        **options,
    )


# -- Structured Streaming --------------------------------------------------------------------


class ForeachBatchWriter:
    """A ``writeStream.foreachBatch`` function that sends each micro-batch (see
    :func:`foreach_batch_writer`); ``reports`` holds one :class:`SparkReport` per batch run."""

    def __init__(
        self,
        credentials: Union[PusherCredentials, str],
        options: dict[str, Any],
        dead_letter: Optional[str],
        on_report: Optional[Callable[[SparkReport], None]],
    ) -> None:
        self.credentials = credentials
        self.options = options
        self.dead_letter = dead_letter.rstrip("/") if dead_letter else None
        self.on_report = on_report
        self.reports: list[SparkReport] = []

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        dead_letter = None
        options = dict(self.options)
        if self.dead_letter is not None:
            dead_letter = f"{self.dead_letter}/batch_id={batch_id}"
            # A batch re-run after a failure replaces the failed run's dead letter.
            options.setdefault("dead_letter_mode", "overwrite")
        report = send_dataframe(
            df,
            credentials=self.credentials,
            dead_letter=dead_letter,
            batch_id=batch_id,
            **options,
        )
        self.reports.append(report)
        if self.on_report is not None:
            self.on_report(report)


def foreach_batch_writer(
    *,
    credentials: Union[PusherCredentials, str],
    channel: ColumnLike,
    event: ColumnLike,
    data: ColumnLike,
    dead_letter: Optional[str] = None,
    on_report: Optional[Callable[[SparkReport], None]] = None,
    **options: Any,
) -> ForeachBatchWriter:
    """A function for ``df.writeStream.foreachBatch(...)`` sending each micro-batch with
    :func:`send_dataframe` (same options; ``event_id=True`` derives ids from the batch id,
    the partition and the row's index).

    Delivery is at least once: Spark commits a batch (in the checkpoint) after this function
    returns, so a batch that failed or was interrupted is run again on restart, and rows its
    first run delivered are delivered again (with the same event ids); a committed batch is
    never run again.  Failed rows of batch N go to ``{dead_letter}/batch_id=N``.
    """
    options.update(channel=channel, event=event, data=data)
    return ForeachBatchWriter(credentials, options, dead_letter, on_report)

"""Events/s through the Spark sink (``local[2]``) against one BulkSender in a plain process.

    python benchmarks/bench_engines.py [--events 50000] [--rounds 2] [--server embedded|null]

Both send the same number of events to the same server, which runs in a process of its own
(``pusher-fast serve``, the embedded Pusher API; or ``benchmarks/null_server.js``, Node
answering 200 to everything): a server sharing the sender's process and GIL would make the
in-process sender look slower than it is.  The Spark figure is the ``send_dataframe`` call
(planning, tasks, Python workers, the senders, the accumulators), after a warm-up job that
starts the Python workers; session start-up is not counted.  Rounds alternate the order.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pusher_fast  # noqa: E402
from pusher_fast.integrations.spark import PusherCredentials, send_dataframe  # noqa: E402

KEY, SECRET, APP_ID = "bench-key", "bench-secret", "123456"


def start_server(kind: str) -> tuple[subprocess.Popen[str], str]:
    if kind == "null":
        proc = subprocess.Popen(
            ["node", str(HERE / "null_server.js"), "0", "--exit-on-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        return proc, f"http://{KEY}:{SECRET}@127.0.0.1:{port}/apps/{APP_ID}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pusher_fast", "serve", "--key", KEY, "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("PUSHER_URL="):
            return proc, line.strip().split("=", 1)[1]
    raise RuntimeError("pusher-fast serve did not print its PUSHER_URL")


def bulk_rate(url: str, events: int) -> float:
    client = pusher_fast.Pusher.from_url(url)
    started = time.perf_counter()
    with client.bulk(batch_size=10, concurrency=4) as sender:
        for i in range(events):
            sender.add(f"bench-{i % 4}", "tick", {"i": i})
    elapsed = time.perf_counter() - started
    report = sender.report
    assert report.delivered == events, report.as_dict()
    return events / elapsed


def spark_rate(spark, url: str, events: int) -> float:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    df = spark.range(events, numPartitions=4)
    report = send_dataframe(
        df,
        credentials=PusherCredentials(url),
        channel=F.concat(F.lit("bench-"), (F.col("id") % 4).cast("string")),
        event=F.lit("tick"),
        data=F.struct(F.col("id").alias("i")),
    )
    assert report.delivered == events, report.as_dict()
    return events / report.elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", choices=("embedded", "null"), default="embedded")
    args = parser.parse_args()

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p
    )
    from pyspark.sql import SparkSession

    proc, url = start_server(args.server)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark_rate(spark, url, 2000)  # warm-up: Python workers, senders, connections
        bulk, engine = [], []
        for round_ in range(args.rounds):
            order = [("bulk", bulk), ("spark", engine)]
            if round_ % 2:
                order.reverse()
            for name, results in order:
                rate = (
                    bulk_rate(url, args.events)
                    if name == "bulk"
                    else spark_rate(spark, url, args.events)
                )
                results.append(rate)
                print(f"round {round_ + 1}: {name:5s} {rate:10,.0f} events/s", flush=True)
        b, s = statistics.median(bulk), statistics.median(engine)
        print(
            f"\nserver={args.server} events={args.events} rounds={args.rounds} "
            f"(medians)\n  one BulkSender, plain process: {b:10,.0f} events/s\n"
            f"  Spark local[2] send_dataframe: {s:10,.0f} events/s\n"
            f"  Spark / BulkSender: {s / b:.0%}"
        )
    finally:
        spark.stop()
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()

"""The Celery app the Celery tests start a real worker on (``celery -A tests.celery_app``).

Configured from the environment the test sets: ``PF_CELERY_BROKER`` (a redis URL, also the
result backend), ``PF_CELERY_QUEUE``, ``PUSHER_URL`` (read by each worker process at start).
Every run of ``pusher_fast.trigger`` is recorded in the redis list ``pf:runs`` (task id,
whether the broker redelivered the message, process id), so a test can explain duplicates,
then works ``PF_CELERY_TASK_WORK`` seconds before triggering.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import task_prerun

from pusher_fast.integrations.celery import install

BROKER = os.environ.get("PF_CELERY_BROKER", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("PF_CELERY_QUEUE", "pusher_fast_test")
VISIBILITY_TIMEOUT = int(os.environ.get("PF_CELERY_VISIBILITY_TIMEOUT", "10"))
#: Seconds of "work" each trigger task does before it triggers, so that a kill mostly finds
#: the pool processes inside tasks that have not sent their event yet.
TASK_WORK = float(os.environ.get("PF_CELERY_TASK_WORK", "0.01"))

app = Celery("pusher_fast_tests", broker=BROKER, backend=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    # celery-batches groups what the worker has prefetched (16 messages here); a message must
    # not wait in that buffer longer than the visibility timeout, or it is delivered again.
    worker_prefetch_multiplier=8,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        # An unacknowledged message goes back to the queue after this many seconds: how the
        # messages of a killed worker come back (small here so the test sees it happen).
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    result_expires=600,
    worker_hijack_root_logger=False,
)

tasks = install(app, retry_backoff_max=2, max_retries=6, group_flush_every=16)

_runs = redis.Redis.from_url(BROKER)


@task_prerun.connect
def _record_run(task_id: str, task: Any, **_: Any) -> None:
    if task.name != "pusher_fast.trigger":
        return
    info = task.request.delivery_info or {}
    _runs.rpush(
        "pf:runs",
        json.dumps(
            {
                "id": task_id,
                "redelivered": bool(info.get("redelivered")),
                "retries": task.request.retries,
                "pid": os.getpid(),
            }
        ),
    )
    time.sleep(TASK_WORK)

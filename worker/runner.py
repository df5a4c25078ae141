"""Run one RQ worker process on one newswatch queue, tuned so that a crashed worker's job comes back fast.

One queue per worker process: RQ then pops with BLMOVE into an intermediate list, so a job caught by a
kill between pop and start is found again instead of vanishing (see DESIGN.md, "Facts that shape the
design"). The intervals below make RQ notice a dead worker within about a minute instead of ~13 minutes.

The same worker, with plain rq (what `newswatch worker` runs, for operators who prefer the rq CLI):

    rq worker --url "$REDIS_URL" --serializer rq.serializers.JSONSerializer \\
        --worker-class rq.worker.SimpleWorker --with-scheduler \\
        --maintenance-interval 10 --job-monitoring-interval 5 --worker-ttl 30 newswatch:articles
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import redis
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from newswatch.logs import get_logger
from newswatch.queues import ARTICLES_QUEUE, DELIVERIES_QUEUE

log = get_logger(__name__)

#: Seconds between RQ's maintenance passes (registry clean-up: abandoned and stuck jobs are found here).
MAINTENANCE_INTERVAL = 10
#: Seconds between heartbeats while a job runs (the worker key's TTL is extended on each).
JOB_MONITORING_INTERVAL = 5
#: A worker that missed heartbeats for this long is dead; its started jobs are then abandoned/retried.
WORKER_TTL = 30

QUEUES = {"articles": ARTICLES_QUEUE, "deliveries": DELIVERIES_QUEUE}


class ArticleWorker(SimpleWorker):
    """Runs jobs in its own process: the compiled watchlist stays warm and a job costs no fork.

    Measured choice (see the report / README): with batches of articles the fork of rq's default
    Worker is paid per batch, but the horse also loses every per-process cache (the compiled
    watchlist, the alert script), so each job pays the watchlist compilation again unless the parent
    compiled it first; SimpleWorker avoids both. The price: a crash of the job takes the worker
    process with it, which the supervisor (compose `restart`, `newswatch run`) restarts.
    """


class ForkingArticleWorker(Worker):
    """rq's forking worker; the parent compiles the watchlist before each fork, so horses share it."""

    def execute_job(self, job: Any, queue: Any) -> Any:
        if queue.name == ARTICLES_QUEUE:
            from worker.jobs import warm_up

            warm_up()
        return super().execute_job(job, queue)


WORKER_CLASSES: dict[str, type[Any]] = {"simple": ArticleWorker, "fork": ForkingArticleWorker}


def worker_name(queue_name: str) -> str:
    short = queue_name.rsplit(":", 1)[-1]
    return f"{short}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"


def build_worker(
    connection: redis.Redis, queue_name: str = ARTICLES_QUEUE, *, worker_class: str = "simple"
) -> Worker:
    """An RQ worker on ONE queue with the JSON serializer and the tuned intervals."""
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    return WORKER_CLASSES[worker_class](
        [queue],
        name=worker_name(queue_name),
        connection=connection,
        serializer=JSONSerializer,
        maintenance_interval=MAINTENANCE_INTERVAL,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        worker_ttl=WORKER_TTL,
    )


def run_worker(
    connection: redis.Redis,
    queue_name: str = ARTICLES_QUEUE,
    *,
    burst: bool = False,
    worker_class: str = "simple",
    with_scheduler: bool = True,
    max_jobs: int | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Work until stopped (SIGTERM: warm shutdown, the current job finishes) or, with burst, until empty.

    True when at least one job was run.
    """
    worker = build_worker(connection, queue_name, worker_class=worker_class)
    if queue_name == ARTICLES_QUEUE:
        from worker.jobs import check_configuration

        check_configuration()  # a broken watchlist or sink stops the worker here, before it takes a job
    else:
        from worker.delivery import use_settings
        from worker.jobs import worker_state

        use_settings(worker_state().settings)
    log.info("worker starting", worker=worker.name, queue=queue_name, worker_class=worker_class, burst=burst)
    return bool(
        worker.work(
            burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs, logging_level=logging_level
        )
    )

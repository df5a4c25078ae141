"""Run one RQ worker process on one newswatch queue, tuned so that a crashed worker's job comes back fast.

One queue per worker process: RQ then pops with BLMOVE into an intermediate list, so a job caught by a
kill between pop and start is found again instead of vanishing (see DESIGN.md, "Facts that shape the
design"). The intervals below make RQ notice a dead worker within about a minute instead of ~13 minutes.

The same worker with plain rq, for operators who prefer the rq CLI (run it in the project directory or
with the package installed, so that `worker.runner` imports; `rq.worker.SimpleWorker` works too but lacks
the heartbeats during a job, see ArticleWorker). Unlike `newswatch worker`, it does not check the
watchlist and sinks before taking the first job:

    rq worker --url "$REDIS_URL" --serializer rq.serializers.JSONSerializer \\
        --worker-class worker.runner.ArticleWorker --with-scheduler \\
        --maintenance-interval 10 --job-monitoring-interval 5 --worker-ttl 30 newswatch:articles
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import uuid
from typing import Any

import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from newswatch.logs import get_logger
from newswatch.queues import ARTICLES_QUEUE, DELIVERIES_QUEUE

log = get_logger(__name__)

#: Seconds between RQ's maintenance passes (registry clean-up: abandoned and stuck jobs are found here).
MAINTENANCE_INTERVAL = 10
#: Seconds between heartbeats while a job runs (the worker key's TTL is extended on each).
JOB_MONITORING_INTERVAL = 5
#: A worker that missed heartbeats for this long is dead; its started jobs are then abandoned/retried.
WORKER_TTL = 30
#: A running job's registry entry lives this long past each heartbeat (rq's own margin is a fixed 60 s):
#: three missed beats and the job counts as abandoned at the next maintenance pass, so a killed worker's
#: job comes back in ~15-25 s. A beat thread starved that long (a C call holding the GIL) at worst makes
#: RQ re-run a job still running: harmless, every article is idempotent.
HEARTBEAT_MARGIN = 3 * JOB_MONITORING_INTERVAL

QUEUES = {"articles": ARTICLES_QUEUE, "deliveries": DELIVERIES_QUEUE}


class StoredPayloadJob(Job):
    """rq's Job, except that saving it again writes back the payload as it was read, not recompressed.

    rq saves the whole job hash when a job ends, compressing its payload (zlib) again each time: for a
    batch of 50 articles (~200 KB) that cost ~18 ms, more than a third of a millisecond per article.
    """

    _stored: tuple[Any, bytes] | None = None

    def restore(self, raw_data: Any) -> Any:
        result = super().restore(raw_data)
        compressed = raw_data.get(b"data", raw_data.get("data")) if isinstance(raw_data, dict) else None
        if isinstance(compressed, bytes) and compressed is not self._data:
            self._stored = (self._data, compressed)
        return result

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        stored = self._stored
        if stored is None or stored[0] is not self._data:
            return super().to_dict(include_meta=include_meta, include_result=include_result)
        data = self._data
        self._data = b""  # the payload is unchanged since it was read: skip compressing it again
        try:
            mapping = super().to_dict(include_meta=include_meta, include_result=include_result)
        finally:
            self._data = data
        mapping["data"] = stored[1]
        return mapping


class ArticleWorker(SimpleWorker):
    """Runs jobs in its own process, with heartbeats during the job like the forking worker's.

    Why not rq's forking Worker (measured, 3,000 plain-text articles of ~3.7 KB in batches of 50, one
    process, this 2-core machine): 37 articles/s with SimpleWorker against 20 with the forking Worker,
    because every forked horse loses the per-process warm state (language model, lazily imported
    extraction code, connections) and rebuilds it per job. The price: a crash inside a job takes this
    process down too; its supervisor (compose `restart`, `newswatch run`) starts it again, and the job
    comes back through RQ's abandoned-job handling.

    rq's SimpleWorker sets one heartbeat of job timeout + 60 s when a job starts and none while it runs,
    so a killed SimpleWorker's job would be noticed only after that (3 minutes with a 120 s timeout).
    This class heartbeats every job_monitoring_interval from a thread with a TTL of interval +
    HEARTBEAT_MARGIN, so a killed worker's job comes back within about half a minute.
    """

    job_class = StoredPayloadJob

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        if job.timeout and job.timeout > 0:
            return int(min(job.timeout - working_time, self.job_monitoring_interval)) + HEARTBEAT_MARGIN
        return int(self.job_monitoring_interval) + HEARTBEAT_MARGIN

    def execute_job(self, job: Any, queue: Any) -> None:
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, execution, stop), daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)

    def _beat(self, job: Any, execution: Any, stop: threading.Event) -> None:
        # Registry updates use ZADD XX / HSET on keys with a TTL, so a beat that races the end of the
        # job cannot bring a finished job back (rq's own monitor loop relies on the same).
        while not stop.wait(self.job_monitoring_interval):
            try:
                self.maintain_heartbeats(job, execution)
            except redis.exceptions.RedisError as error:
                log.warning("heartbeat failed", job_id=job.id, error=str(error))


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
        from worker.jobs import check_configuration, warm_up

        check_configuration()  # a broken watchlist or sink stops the worker here, before it takes a job
        warm_up()  # models and extraction code loaded now: the first article waits for none of it
        # Everything loaded so far lives as long as the process: out of the cyclic GC's sight, or every
        # full collection while matching walks it again (~10 µs per article measured).
        gc.freeze()
    else:
        from worker.delivery import use_settings
        from worker.jobs import worker_state

        use_settings(worker_state().settings)
    log.info("worker starting", worker=worker.name, queue=queue_name, worker_class=worker_class, burst=burst)
    return bool(
        worker.work(
            burst=burst,
            with_scheduler=with_scheduler,
            max_jobs=max_jobs,
            logging_level=rq_level(logging_level),
        )
    )


def rq_level(level: str) -> str:
    """rq's own logger level for a newswatch log level: at INFO, rq writes four lines per job (started,
    completed, OK, result kept) that bury the alerts; newswatch's "batch done" line says the same in one.
    DEBUG shows them again."""
    return "WARNING" if level.upper() == "INFO" else level.upper()

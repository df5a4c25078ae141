"""`newswatch worker` and the documented plain `rq worker` line, as real processes on a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, Retry, Worker
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.alert_log import AlertLog
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB

ROOT = Path(__file__).resolve().parents[3]
RQ = str(Path(sys.executable).with_name("rq"))
Newswatch = Any  # the `newswatch` fixture of tests/conftest.py: the command, on the session's Redis

KURSK = (
    "Kursk front quiet for North Korean units\n\n"
    "Ukrainian officers said the North Korean soldiers deployed in the Kursk region were pulled back."
)


def enqueue_kursk(client: redis.Redis, name: str = "kursk.txt") -> Document:
    doc = Document(url=f"file:///seeds/{name}", format="text", body=KURSK, source=Source(kind="file"))
    client.hset(keys.PENDING, doc.article_id, json.dumps(doc.to_json()))
    Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer).enqueue(
        PROCESS_BATCH_JOB, [doc.to_json()]
    )
    return doc


def failed_jobs(client: redis.Redis) -> list[str]:
    """The errors of failed RQ jobs, for assertion messages."""
    queue = Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer)
    jobs = (queue.fetch_job(job_id) for job_id in queue.failed_job_registry.get_job_ids())
    return [str(job.latest_result().exc_string) for job in jobs if job and job.latest_result()]  # type: ignore[union-attr]


def test_burst_worker_processes_the_queue_and_logs_json_with_context(
    newswatch: Newswatch, redis_client: redis.Redis
) -> None:
    doc = enqueue_kursk(redis_client)
    result = newswatch("worker", "--burst")
    assert result.returncode == 0, result.stderr
    assert len(AlertLog(redis_client)) == 1, failed_jobs(redis_client) or result.stderr
    [entry] = AlertLog(redis_client).latest()
    assert entry.alert["article"]["id"] == doc.article_id
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [alert_line] = [line for line in lines if line["event"] == "alert"]
    assert alert_line["article_id"] == doc.article_id
    assert alert_line["topic"] == "nk-troops-kursk"
    assert alert_line["job_id"]
    assert redis_client.hlen(keys.PENDING) == 0


def test_the_documented_plain_rq_worker_line_works(newswatch: Newswatch, redis_client: redis.Redis) -> None:
    enqueue_kursk(redis_client)
    result = subprocess.run(
        [RQ, "worker", "--burst", "--url", newswatch.env["REDIS_URL"],
         "--serializer", "rq.serializers.JSONSerializer",
         "--worker-class", "worker.runner.ArticleWorker", "--with-scheduler", "--maintenance-interval", "10",
         "--job-monitoring-interval", "5", "--worker-ttl", "30", ARTICLES_QUEUE],
        cwd=ROOT, env=newswatch.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(AlertLog(redis_client)) == 1
    assert redis_client.hget(keys.STATS, "processed") == b"1"


def test_forking_worker_class_gives_the_same_result(newswatch: Newswatch, redis_client: redis.Redis) -> None:
    enqueue_kursk(redis_client)
    result = newswatch("worker", "--burst", "--worker-class", "fork")
    assert result.returncode == 0, result.stderr
    assert len(AlertLog(redis_client)) == 1


def test_an_invalid_watchlist_stops_the_worker_with_one_line(
    newswatch: Newswatch, redis_client: redis.Redis
) -> None:
    Path(newswatch.env["NEWSWATCH_WATCHLIST"]).write_text(
        "[[topic]]\nid = 'x'\nquery = '(unclosed'\n", encoding="utf-8"
    )
    enqueue_kursk(redis_client)
    result = newswatch("worker", "--burst")
    assert result.returncode == 2
    message = result.stderr[result.stderr.index("newswatch worker: watchlist: ") :]
    assert f"{newswatch.env['NEWSWATCH_WATCHLIST']}:3:19: topic 'x'" in message  # file, line and column
    assert "Traceback" not in result.stderr
    assert redis_client.hlen(keys.PENDING) == 1  # nothing was taken


def test_sigterm_is_a_warm_shutdown(newswatch: Newswatch, redis_client: redis.Redis) -> None:
    # rq's own lines (the shutdown request among them) show at DEBUG only
    process = newswatch.start(
        "worker", "--log-level", "DEBUG", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not Worker.all(connection=redis_client) and time.monotonic() < deadline:
            time.sleep(0.1)
        [worker] = Worker.all(connection=redis_client)
        assert worker.queue_names() == [ARTICLES_QUEUE]
        enqueue_kursk(redis_client)
        deadline = time.monotonic() + 30
        while not len(AlertLog(redis_client)) and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "warm shut down requested" in err
    assert Worker.all(connection=redis_client) == []  # it left the registry on its way out


@pytest.mark.slow
def test_a_killed_workers_job_comes_back_within_about_a_minute(
    newswatch: Newswatch, redis_client: redis.Redis
) -> None:
    """kill -9 of a worker (and its process group) mid-job: RQ sees the job abandoned and retries it."""
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    job = queue.enqueue("time.sleep", 40, job_timeout=120, retry=Retry(max=1))
    command = ("worker", "--log-level", "WARNING")
    victim = newswatch.start(*command, start_new_session=True, stderr=subprocess.DEVNULL)
    rescuer = None
    try:
        deadline = time.monotonic() + 30
        while job.get_status(refresh=True) != JobStatus.STARTED and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        rescuer = newswatch.start(*command, stderr=subprocess.DEVNULL)
        while time.monotonic() - killed_at < 150:
            job.refresh()
            if job.retries_left == 0:  # RQ found the job abandoned and enqueued its retry
                break
            time.sleep(0.5)
        came_back = time.monotonic() - killed_at
    finally:
        for process in (victim, rescuer):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    print(f"job came back {came_back:.0f} s after the kill")
    assert job.retries_left == 0
    assert came_back < 90

"""`newswatch status`: queue depths, live workers, counts, pending ledger and failed articles with errors."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB

Newswatch = Any  # the `newswatch` fixture of tests/conftest.py: the command, on the session's Redis

KURSK = "Kursk update\n\nNorth Korean soldiers left the Kursk region, Ukrainian officers said."


def enqueue(client: redis.Redis, docs: list[Document]) -> None:
    client.hset(keys.PENDING, mapping={d.article_id: json.dumps(d.to_json()) for d in docs})
    Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer).enqueue(
        PROCESS_BATCH_JOB, [d.to_json() for d in docs]
    )


def test_status_after_a_run_with_one_bad_article(newswatch: Newswatch, redis_client: redis.Redis) -> None:
    good = Document(url="file:///seeds/kursk.txt", format="text", body=KURSK, source=Source(kind="file"))
    bad = Document(url="file:///seeds/blank.txt", format="text", body=" ", source=Source(kind="file"))
    enqueue(redis_client, [good, bad])
    assert newswatch("worker", "--burst").returncode == 0
    enqueue(redis_client, [Document(url="file:///seeds/later.txt", format="text", body=KURSK + " Later.")])

    result = newswatch("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["queues"][ARTICLES_QUEUE]["queued"] == 1
    assert status["counts"]["processed"] == 1
    assert status["counts"]["failed"] == 1
    assert status["counts"]["alerts"] == 1
    assert status["pending"] == 1  # the article enqueued after the worker left
    assert status["alert_log"] == 1
    [failure] = status["failed"]
    assert failure["url"] == "file:///seeds/blank.txt"
    assert "no article text" in failure["error"]
    assert failure["final"] is True

    human = newswatch("status")
    assert human.returncode == 0
    assert "Failed articles: 1" in human.stdout
    assert "file:///seeds/blank.txt" in human.stdout and "no article text" in human.stdout
    assert "processed 1" in human.stdout and "alerts 1" in human.stdout
    assert "Workers alive: 0" in human.stdout


def test_status_lists_live_workers(newswatch: Newswatch, redis_client: redis.Redis) -> None:
    worker = newswatch.start("worker", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not Worker.all(connection=redis_client) and time.monotonic() < deadline:
            time.sleep(0.1)
        status = json.loads(newswatch("status", "--json").stdout)
        [alive] = status["workers"]
        assert alive["queues"] == [ARTICLES_QUEUE]
        assert alive["pid"] == worker.pid
        human = newswatch("status").stdout
        assert "Workers alive: 1" in human
    finally:
        worker.terminate()
        worker.wait(timeout=30)

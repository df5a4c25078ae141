"""`newswatch status`: queue depths, live workers, counts, pending ledger and failed articles with errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB

ROOT = Path(__file__).resolve().parents[3]

WATCHLIST = """
[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '("North Korean" OR Pyongyang) NEAR/12 Kursk'
"""
KURSK = "Kursk update\n\nNorth Korean soldiers left the Kursk region, Ukrainian officers said."


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "NEWSWATCH_WATCHLIST": str(watchlist),
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
    }


def newswatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newswatch", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def enqueue(client: redis.Redis, docs: list[Document]) -> None:
    client.hset(keys.PENDING, mapping={d.article_id: json.dumps(d.to_json()) for d in docs})
    Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer).enqueue(
        PROCESS_BATCH_JOB, [d.to_json() for d in docs]
    )


def test_status_after_a_run_with_one_bad_article(env: dict[str, str], redis_client: redis.Redis) -> None:
    good = Document(url="file:///seeds/kursk.txt", format="text", body=KURSK, source=Source(kind="file"))
    bad = Document(url="file:///seeds/blank.txt", format="text", body=" ", source=Source(kind="file"))
    enqueue(redis_client, [good, bad])
    assert newswatch(env, "worker", "--burst").returncode == 0
    enqueue(redis_client, [Document(url="file:///seeds/later.txt", format="text", body=KURSK + " Later.")])

    result = newswatch(env, "status", "--json")
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

    human = newswatch(env, "status")
    assert human.returncode == 0
    assert "Failed articles: 1" in human.stdout
    assert "file:///seeds/blank.txt" in human.stdout and "no article text" in human.stdout
    assert "processed 1" in human.stdout and "alerts 1" in human.stdout
    assert "Workers alive: 0" in human.stdout


def test_status_lists_live_workers(env: dict[str, str], redis_client: redis.Redis) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "newswatch", "worker"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not Worker.all(connection=redis_client) and time.monotonic() < deadline:
            time.sleep(0.1)
        status = json.loads(newswatch(env, "status", "--json").stdout)
        [alive] = status["workers"]
        assert alive["queues"] == [ARTICLES_QUEUE]
        assert alive["pid"] == worker.pid
        human = newswatch(env, "status").stdout
        assert "Workers alive: 1" in human
    finally:
        worker.terminate()
        worker.wait(timeout=30)

"""Prometheus metrics scraped over real HTTP: counts made by two worker processes, read from Redis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.metrics import serve_metrics
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB

ROOT = Path(__file__).resolve().parents[2]
WATCHLIST = """
[[topic]]
id = "kursk"
name = "Kursk"
query = 'Kursk'

[[topic]]
id = "grain"
name = "Grain"
query = 'grain'
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_the_work_of_every_worker_process(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    bodies = ["Kursk report", "Grain and Kursk", "Grain ships", "Snow in the Alps", "Kursk again"]
    for start in (0, 3):  # two jobs, one per worker process
        documents = [
            Document(url=f"file:///s/{n}.txt", format="text", body=f"{bodies[n]}\n\n{bodies[n]} today.",
                     source=Source(kind="file"))
            for n in range(start, min(start + 3, len(bodies)))
        ]  # fmt: skip
        redis_client.hset(keys.PENDING, mapping={d.article_id: json.dumps(d.to_json()) for d in documents})
        queue.enqueue(PROCESS_BATCH_JOB, [d.to_json() for d in documents])
    env = {**os.environ, "REDIS_URL": redis_url, "NEWSWATCH_WATCHLIST": str(watchlist),
           "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"), "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [sys.executable, "-m", "newswatch", "worker", "--burst", "--max-jobs", "1"]
    for _ in range(2):
        subprocess.run(command, env=env, cwd=ROOT, check=True, timeout=60)
    port = free_port()
    server = serve_metrics(redis_client, port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        server.shutdown()
    assert answer.status_code == 200
    got = samples(answer.text)
    assert got[("newswatch_articles_processed_total", ())] == 5
    assert got[("newswatch_matches_total", (("topic", "kursk"),))] == 3
    assert got[("newswatch_matches_total", (("topic", "grain"),))] == 2
    assert got[("newswatch_alerts_total", ())] == 5
    assert got[("newswatch_processing_seconds_count", ())] == 5
    assert got[("newswatch_processing_seconds_bucket", (("le", "+Inf"),))] == 5
    assert got[("newswatch_articles_pending", ())] == 0
    assert got[("newswatch_queue_jobs", (("queue", ARTICLES_QUEUE), ("state", "queued")))] == 0
    assert ("newswatch_deliveries_dead_lettered", ()) in got


def test_fetch_errors_are_counted_per_feed(redis_client: redis.Redis) -> None:
    from producer.feeds.health import record_failure, record_success

    feeds = [f"https://{name}.example.org/feed.rss" for name in ("zulu", "alpha", "mike", "bravo")]
    for number, url in enumerate(feeds):  # zulu fails once, alpha twice, ...; each then polled fine once
        for attempt in range(number + 1):
            record_failure(
                redis_client, url, at=1_700_000_000 + attempt, status=None, reason="cannot connect",
                consecutive_errors=attempt + 1, next_poll=1_700_000_600, next_reason="backoff",
            )  # fmt: skip
        if url != feeds[-1]:
            record_success(redis_client, url, at=1_700_000_100, status=200, next_poll=0, next_reason="")
    port = free_port()
    server = serve_metrics(redis_client, port)
    try:
        got = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    finally:
        server.shutdown()
    for number, url in enumerate(feeds):
        label = (("feed", url),)
        assert got[("newswatch_feed_fetch_errors_total", label)] == number + 1
        assert got[("newswatch_feed_polls_total", label)] == number + 1 + (url != feeds[-1])
        assert got[("newswatch_feed_consecutive_errors", label)] == (number + 1 if url == feeds[-1] else 0)

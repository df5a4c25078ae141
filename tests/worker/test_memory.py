"""A worker's memory stays flat: RSS of a real `newswatch worker` process over 3,000 distinct articles."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.settings import load_settings
from producer.enqueue import enqueue_documents

Newswatch = Any  # the `newswatch` fixture of tests/conftest.py: the command, on the session's Redis
ARTICLES = 3000
BASELINE = 500
MB = 1024 * 1024
#: Allowed growth from the baseline to the last article. Measured growth is 1.6-1.7 MB (mostly the stem cache
#: learning each article's new number); a leak of 3 KB per article (7.5 MB over 2,500 articles) fails.
MARGIN = 6 * MB

SENTENCES = [
    "Dock workers at the northern terminal unloaded a cargo of fertiliser late on Tuesday evening.",
    "The regional council postponed its vote on the new tram line until after the summer recess.",
    "Analysts at two banks lowered their forecasts for industrial output in the coming quarter.",
    "A spokesman for the transport ministry declined to say when the bridge would reopen to lorries.",
    "Farmers in the valley reported that the late frost had damaged about a third of the orchards.",
    "The grain ship left the port at dawn, escorted by two coast guard vessels and a tug.",
    "Residents queued outside the town hall to register for the heating subsidy before the deadline.",
    "The museum reopened its east wing after a restoration that took almost four years to finish.",
    "Officials said the power cut affected roughly twelve thousand homes on the edge of the city.",
    "Teachers' unions called a one-day strike over pay and the number of pupils in each class.",
    "The court adjourned the hearing after the defence asked for more time to study new evidence.",
    "Local radio reported heavy traffic on the ring road as the first snow of the season fell.",
]
KURSK = "Officials in Kyiv said North Korean troops had been moved away from the front near Kursk."


def article(number: int, rng: random.Random) -> Document:
    """A distinct article of a few kilobytes; every tenth one matches the topic."""
    body = [rng.choice(SENTENCES) for _ in range(rng.randint(15, 45))]
    if number % 10 == 0:
        body.insert(rng.randrange(len(body)), KURSK)
    paragraphs = [" ".join(body[i : i + 5]) for i in range(0, len(body), 5)]
    text = "\n\n".join([f"Morning report {number}", *paragraphs, f"Filed as item {number}."])
    return Document(
        url=f"https://memory.example.org/{number}", format="text", body=text, source=Source(kind="feed")
    )


@pytest.fixture
def worker_process(newswatch: Newswatch, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with (tmp_path / "worker.log").open("wb") as log:
        process = newswatch.start("worker", "--log-level", "WARNING", "--no-scheduler", stderr=log)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_worker_rss_stays_flat_over_3000_articles(
    newswatch: Newswatch,
    redis_client: redis.Redis,
    worker_process: subprocess.Popen[str],
    tmp_path: Path,
) -> None:
    settings = load_settings(newswatch.env)
    rng = random.Random(11)
    result = enqueue_documents(
        redis_client, (article(n, rng) for n in range(ARTICLES)), settings, source="test"
    )
    assert len(result.accepted) == ARTICLES

    def done() -> int:
        return sum(
            int(v or 0) for v in redis_client.hmget(keys.STATS, [keys.STAT_PROCESSED, keys.STAT_FAILED])
        )

    memory = psutil.Process(worker_process.pid)
    baseline: int | None = None
    deadline = time.monotonic() + 75
    while (count := done()) < ARTICLES:
        if worker_process.poll() is not None:
            log = (tmp_path / "worker.log").read_text(errors="replace")
            pytest.fail(f"the worker exited with status {worker_process.returncode}: {log[-2000:]}")
        assert time.monotonic() < deadline, f"only {count} of {ARTICLES} articles processed in time"
        if baseline is None and count >= BASELINE:
            baseline = memory.memory_info().rss
        time.sleep(0.02)
    end = memory.memory_info().rss

    assert baseline is not None
    assert int(redis_client.hget(keys.STATS, keys.STAT_FAILED) or 0) == 0
    assert redis_client.xlen(keys.ALERTS_STREAM) == ARTICLES // 10  # the alert path ran too
    assert end - baseline <= MARGIN, (
        f"worker RSS grew {(end - baseline) / MB:.1f} MB from {baseline / MB:.1f} MB after {BASELINE} "
        f"articles to {end / MB:.1f} MB after {ARTICLES}"
    )

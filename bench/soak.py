"""Worker memory soak: RSS of one real `newswatch worker` process over 20,000 distinct articles (issue 7, 5).

    .venv/bin/python bench/soak.py [--articles 20000] [--chunk 1000] [--lead 4000] [--every 2000]

On a fresh embedded valkey-server, one `newswatch worker` process (articles queue, simple worker class, as a
user starts it) drains plain-text articles that this script enqueues with the producer's enqueue_documents
in chunks of --chunk, keeping at most --lead articles pending ahead of the worker (so Redis holds a bounded
backlog). The worker process's RSS is sampled after the first 1,000 articles (the baseline: watchlist
compiled, language model loaded, caches warm), every --every articles, and after the last one; the table
and the growth from the baseline to the end are printed. Exit status 1 if the end is more than --limit-mb
above the baseline.

Article bodies come from ../shared/corpora/articles/aeb/ground-truth.json when present (each used many
times with a distinct last line, so none is a duplicate); else generated text of similar sizes. The last
line carries the copy's number, a word no article had before, as real news brings new names and numbers;
with --spelled it spells the digits out instead, so no article brings a new word (the stem cache stays put
and any growth left is something else).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.common import article_texts  # noqa: E402

MB = 1024 * 1024
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    return int(psutil.Process(pid).memory_info().rss)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1000, help="articles per enqueue_documents call")
    parser.add_argument("--lead", type=int, default=4000, help="most articles pending ahead of the worker")
    parser.add_argument("--every", type=int, default=2000, help="a table row every N articles")
    parser.add_argument("--baseline", type=int, default=1000, help="articles done before the baseline RSS")
    parser.add_argument(
        "--spelled",
        action="store_true",
        help="spell the copy number's digits out (no new word per article: leaves the stem cache out)",
    )
    parser.add_argument("--limit-mb", type=float, default=25.0, help="growth that makes the exit status 1")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="nw-soak-"))
    os.environ.update(
        {
            "NEWSWATCH_DATA_DIR": str(workdir / "data"),
            "NEWSWATCH_WATCHLIST": str(ROOT / "watchlist.toml"),
            "NEWSWATCH_CONFIG": str(workdir / "none.toml"),
        }
    )
    for name in ("REDIS_URL", "NEWSWATCH_WEBHOOK_URL", "NEWSWATCH_METRICS_PORT"):
        os.environ.pop(name, None)

    from newswatch import keys
    from newswatch.connection import connect
    from newswatch.logs import configure_logging
    from newswatch.messages import Document, Source
    from newswatch.redis_server import embedded_server
    from newswatch.settings import load_settings
    from producer.enqueue import enqueue_documents

    configure_logging("WARNING", json=True)
    settings = load_settings()
    connection = connect(settings)
    texts, origin = article_texts()

    def documents(start: int, stop: int) -> Iterator[Document]:
        for i in range(start, stop):
            label = " ".join(DIGITS[int(digit)] for digit in str(i)) if args.spelled else str(i)
            body = f"{texts[i % len(texts)]}\n\nSoak copy {label}.\n"
            yield Document(
                url=f"https://soak.example.org/{i}", format="text", body=body, source=Source(kind="feed")
            )

    def done() -> int:
        stats = connection.hmget(keys.STATS, [keys.STAT_PROCESSED, keys.STAT_FAILED])
        return sum(int(value or 0) for value in stats)

    enqueued = 0

    def feed() -> None:
        """Enqueue the next chunks while fewer than --lead articles wait for the worker."""
        nonlocal enqueued
        while enqueued < args.articles and enqueued - done() < args.lead:
            stop = min(enqueued + args.chunk, args.articles)
            result = enqueue_documents(connection, documents(enqueued, stop), settings, source="soak")
            if len(result.accepted) != stop - enqueued:
                raise SystemExit(
                    f"soak: {stop - enqueued - len(result.accepted)} articles seen as duplicates"
                )
            enqueued = stop

    command = [sys.executable, "-m", "newswatch", "worker", "--log-level", "WARNING"]
    print(f"articles: {args.articles:,} plain-text copies of {origin}", file=sys.stderr)
    print(f"worker: {' '.join(command[1:])} (articles queue, one process)", file=sys.stderr)
    feed()
    worker = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    samples: list[tuple[int, float, float]] = []  # (articles done, RSS MB, seconds since start)
    checkpoints = [args.baseline, *range(args.every, args.articles, args.every), args.articles]
    started = time.monotonic()
    try:
        while checkpoints:
            if worker.poll() is not None:
                raise SystemExit(f"soak: the worker exited with status {worker.returncode}")
            count = done()
            if count >= checkpoints[0]:
                samples.append((count, rss_bytes(worker.pid) / MB, time.monotonic() - started))
                while checkpoints and count >= checkpoints[0]:
                    checkpoints.pop(0)
            feed()
            time.sleep(0.02)
        failed = int(connection.hget(keys.STATS, keys.STAT_FAILED) or 0)
        pending = connection.hlen(keys.PENDING)
        redis_memory = int(connection.info("memory")["used_memory"]) / MB
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the queue is empty, so it exits at once
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        connection.close()
        embedded_server(workdir / "data").stop()
        shutil.rmtree(workdir, ignore_errors=True)

    base_count, base, _ = samples[0]
    end_count, end, elapsed = samples[-1]
    peak = max(rss for _, rss, _ in samples)
    print("articles done | worker RSS MB | since baseline MB")
    print("--------------|---------------|------------------")
    for count, rss, _ in samples:
        print(f"{count:>13,} | {rss:>13.1f} | {rss - base:>+17.1f}")
    growth = end - base
    per_article = growth * MB / 1024 / max(end_count - base_count, 1)
    print(
        f"growth: {base:.1f} MB after {base_count:,} articles -> {end:.1f} MB after {end_count:,} "
        f"({growth:+.1f} MB, {growth / base:+.1%}, {per_article:+.2f} KB per article); peak {peak:.1f} MB"
    )
    print(
        f"{end_count:,} articles in {elapsed:.0f} s ({end_count / elapsed:,.0f}/s), {failed} failed, "
        f"{pending} left pending; Redis used_memory at the end {redis_memory:.1f} MB"
    )
    return 1 if growth > args.limit_mb or pending else 0


if __name__ == "__main__":
    sys.exit(main())

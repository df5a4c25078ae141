"""Pipeline drain rate against RQ's floor: 3,000 plain-text articles through one worker, by batch size.

    .venv/bin/python bench/pipeline.py [--articles 3000] [--runs 3] [--sizes 1,10,25,50,100,200]
        [--scaling 1,2,4] [--profile] [--watchlist watchlist.toml] [--open-gate]

On a fresh embedded valkey-server: (1) RQ's floor, 3,000 no-op jobs (one per article) drained by one
worker of the class `newswatch worker` uses; (2) the backlog of 3,000 real-sized articles enqueued by
the producer (dedup, batches, pending ledger) and drained by that worker (extract, match against the
watchlist, alert log, ledger). Prints the ratio of the drain rates at Settings.batch_size, how many
articles the watchlist's gate admitted to full analysis, and a table of batch sizes that justifies the
default. Medians of --runs runs; enqueueing is not timed. --open-gate adds a topic of one-letter words,
which the gate cannot look for: every article is then prepared and matched in full (a stream where
every article is on the beat).

Article bodies come from ../shared/corpora/articles/aeb/ground-truth.json when present (each used
several times with a distinct last line, so none is a duplicate); else generated text of similar sizes.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import article_texts  # noqa: E402


def noop(_index: int) -> None:
    """The floor's job: does nothing, so its cost is RQ's own."""


def article_bodies(count: int) -> tuple[list[str], str]:
    """`count` distinct plain-text bodies and where they came from."""
    texts, origin = article_texts()
    bodies = [f"{texts[i % len(texts)]}\n\nBench copy {i}.\n" for i in range(count)]
    return bodies, origin


OPEN_GATE_TOPIC = """

[[topic]]
id = "bench-open-gate"
name = "Admits every article to full analysis (bench/pipeline.py --open-gate)"
query = '"q j"'
"""


def gate_admissions(documents: list[Any]) -> int:
    """How many of these articles the watchlist's gate admits (the others skip preparation and matching)."""
    from newswatch.settings import load_settings
    from worker.core.extract import extract
    from worker.core.matcher import Matcher
    from worker.core.watchlist import load_watchlist

    matcher = Matcher(load_watchlist(load_settings().watchlist))
    articles = (extract(document, detect=False) for document in documents)
    return sum(matcher.gate.admits(article.title or "", article.text or "") for article in articles)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,10,25,50,100,200", help="batch sizes for the table")
    parser.add_argument("--scaling", default="1,2,4", help="worker counts to time ('' skips)")
    parser.add_argument("--profile", action="store_true", help="cProfile of one worker")
    parser.add_argument("--watchlist", type=Path, default=ROOT / "watchlist.toml", help="the topics to match")
    parser.add_argument("--open-gate", action="store_true", help="analyse every article in full")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="nw-bench-"))
    watchlist = args.watchlist.resolve()
    if args.open_gate:
        opened = workdir / "watchlist.toml"
        opened.write_text(watchlist.read_text(encoding="utf-8") + OPEN_GATE_TOPIC, encoding="utf-8")
        watchlist = opened
    os.environ.update(
        {
            "NEWSWATCH_DATA_DIR": str(workdir / "data"),
            "NEWSWATCH_WATCHLIST": str(watchlist),
            "NEWSWATCH_CONFIG": str(workdir / "none.toml"),
        }
    )
    os.environ.pop("REDIS_URL", None)

    from rq import Queue
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from newswatch.connection import connect
    from newswatch.logs import configure_logging
    from newswatch.messages import Document, Source
    from newswatch.queues import ARTICLES_QUEUE
    from newswatch.redis_server import embedded_server
    from newswatch.settings import load_settings
    from producer.enqueue import enqueue_documents
    from worker.jobs import warm_up
    from worker.runner import build_worker

    configure_logging("WARNING", json=True)
    settings = load_settings()
    connection = connect(settings)
    bodies, origin = article_bodies(args.articles)
    documents = [
        Document(url=f"https://bench.example.org/{i}", format="text", body=body, source=Source(kind="feed"))
        for i, body in enumerate(bodies)
    ]
    admitted = gate_admissions(documents)
    warm_up()  # the watchlist is compiled once per worker process, not per job: keep it out of the timing
    gc.freeze()  # as `newswatch worker` does after its warm-up

    def drain() -> float:
        worker = build_worker(connection, ARTICLES_QUEUE)
        started = time.perf_counter()
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        elapsed = time.perf_counter() - started
        if connection.hlen("newswatch:pending"):
            raise SystemExit("bench: articles left pending; the pipeline is broken")
        return elapsed

    def floor_run() -> float:
        connection.flushall()
        queue = Queue(ARTICLES_QUEUE, connection=connection, serializer=JSONSerializer)
        for start in range(0, args.articles, 500):
            stop = min(start + 500, args.articles)
            queue.enqueue_many(
                [Queue.prepare_data(f"{__name__}.noop", (i,), result_ttl=600) for i in range(start, stop)]
            )
        return args.articles / drain()

    def pipeline_run(batch_size: int) -> float:
        connection.flushall()
        result = enqueue_documents(connection, documents, settings, source="bench", batch_size=batch_size)
        assert len(result.accepted) == args.articles
        return args.articles / drain()

    def scaling_run(workers: int) -> float:
        """Drain rate of a backlog with `workers` `newswatch worker` processes, all warm when it starts.

        rq's suspension holds the workers while they start (imports, watchlist, models) and the backlog is
        enqueued; then all start together. Timed from the first job's start to the last job's end (rq's
        own records), so neither start-up nor enqueueing counts as drain time.
        """
        import signal
        import subprocess

        from rq import Worker
        from rq.registry import FinishedJobRegistry, StartedJobRegistry
        from rq.suspension import resume, suspend

        connection.flushall()
        suspend(connection)
        queue = Queue(ARTICLES_QUEUE, connection=connection, serializer=JSONSerializer)
        command = [sys.executable, "-m", "newswatch", "worker", "--log-level", "WARNING"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        processes = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(workers)]
        try:
            deadline = time.monotonic() + 120
            while Worker.count(connection=connection, queue=queue) < workers:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: workers did not start")
                time.sleep(0.2)
            enqueue_documents(connection, documents, settings, source="bench")
            resume(connection)
            while connection.hlen("newswatch:pending") or len(queue) or StartedJobRegistry(queue=queue).count:
                if time.monotonic() > deadline + 600:
                    raise SystemExit("bench: articles left pending; the pipeline is broken")
                time.sleep(0.1)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait()
        ids = FinishedJobRegistry(queue=queue).get_job_ids()
        jobs = [job for job in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer) if job]
        first = min(job.started_at for job in jobs if job.started_at)
        last = max(job.ended_at for job in jobs if job.ended_at)
        return args.articles / (last - first).total_seconds()

    def profile_run() -> None:
        import cProfile
        import pstats

        connection.flushall()
        enqueue_documents(connection, documents, settings, source="bench")
        profiler = cProfile.Profile()
        profiler.enable()
        drain()
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)

    try:
        print(f"articles: {args.articles} plain-text bodies from {origin}", file=sys.stderr)
        print(
            f"watchlist: {watchlist}; worker: {build_worker(connection).__class__.__name__}", file=sys.stderr
        )
        default = settings.batch_size
        sizes = sorted({*sizes, default})
        # Floor and pipeline runs alternate, so that a change of load on the machine (other processes)
        # during the benchmark weighs on both sides of the ratio alike.
        floors: list[float] = []
        samples: dict[int, list[float]] = {size: [] for size in sizes}
        for run in range(1, args.runs + 1):
            floors.append(floor_run())
            for size in sizes:
                samples[size].append(pipeline_run(size))
            rates_now = ", ".join(f"{size}: {samples[size][-1]:,.0f}" for size in sizes)
            print(f"  run {run}: floor {floors[-1]:,.0f} jobs/s; by batch size {rates_now}", file=sys.stderr)
        floor = statistics.median(floors)
        rates = {size: statistics.median(values) for size, values in samples.items()}
        counts = [int(n) for n in args.scaling.split(",") if n.strip()]
        scaling = {n: scaling_run(n) for n in counts}
        if args.profile:
            profile_run()
    finally:
        connection.close()
        embedded_server(workdir / "data").stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"RQ floor (no-op job per article, same worker class): {floor:,.0f} jobs/s")
    print(f"pipeline at batch size {default} (Settings.batch_size): {rates[default]:,.0f} articles/s")
    print(f"ratio: {rates[default] / floor:.1f}x the floor (target >= 10x)")
    print(
        f"gate: {admitted:,} of {len(documents):,} articles admitted to full analysis "
        f"({admitted / len(documents):.0%}); the rest matched no topic on their folded text alone"
    )
    print()
    print("batch size | articles/s | x floor")
    print("-----------|------------|--------")
    for size in sorted(rates):
        print(f"{size:>10} | {rates[size]:>10,.0f} | {rates[size] / floor:>6.1f}")
    print(f"(medians of {args.runs} runs, {args.articles} articles each, one worker)")
    if scaling:
        print()
        print("worker processes | articles/s (all warm; first job start to last job end)")
        for count, rate in scaling.items():
            print(f"{count:>16} | {rate:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Feed poller benchmark: the producer's cost per feed against feedparser's parse alone, and peak RSS.

    .venv/bin/python bench/feeds.py [--rounds 5] [--feeds 200] [--concurrency 8]

Real parts only: the real feeds of ../shared/corpora/feeds/real served by a threaded HTTP server on
127.0.0.1, an embedded valkey-server. For each feed and round, in one run and interleaved:

- parse alone: `feedparser.parse(bytes)` with its defaults (what any feedparser user pays);
- producer: `poll_due_feeds` on that one feed (lease, conditional fetch over HTTP, encoding check and
  parse, entries to Documents with HTML-to-text and canonical links, dedup and enqueue with the pending
  ledger, health write). The database is emptied before each producer run (not timed), so every entry is
  new and really enqueued.

Medians per feed over the rounds; the ratio is the sum of the producer medians over the sum of the
parse medians (and the median of per-feed ratios). Then, in a fresh process, --feeds feeds (the real
ones served under several URLs) are polled in one call, and the peak RSS of that process is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import QuietHandler, serve_locally  # noqa: E402

CORPUS = ROOT / ".." / "shared" / "corpora" / "feeds" / "real"
NOT_FEEDS = {".html", ".opml"}


def real_feeds() -> list[tuple[str, bytes]]:
    """(name, bytes) of every real capture that is a feed with at least one usable entry."""
    from datetime import UTC, datetime

    from producer.feeds.entries import feed_documents
    from producer.feeds.feedlist import FeedSpec
    from producer.feeds.parse import FeedParseError, parse_feed

    found = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.suffix in NOT_FEEDS or "output" in path.parts or path.name == "LICENSE":
            continue
        data = path.read_bytes()
        try:
            parsed = parse_feed(data, "http://127.0.0.1/")
            if feed_documents(parsed, FeedSpec("http://127.0.0.1/"), datetime.now(UTC)):
                found.append((path.relative_to(CORPUS).as_posix(), data))
        except FeedParseError:
            continue
    return found


class Server:
    """Serves each feed at /feed/<index> (any query string), as a feed server would."""

    def __init__(self, feeds: list[tuple[str, bytes]]) -> None:
        documents = feeds

        class Handler(QuietHandler):
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to some responses (a test-server artefact, not the producer's).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                index = int(self.path.split("?")[0].rsplit("/", 1)[1])
                name, body = documents[index]
                kind = "application/feed+json" if name.endswith(".json") else "application/xml"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd, self.base = serve_locally(Handler)

    def url(self, index: int, copy: int = 0) -> str:
        return f"{self.base}/feed/{index}" + (f"?copy={copy}" if copy else "")


def per_feed_costs(
    feeds: list[tuple[str, bytes]], server: Server, redis_url: str, rounds: int
) -> list[tuple[str, float, float]]:
    import feedparser
    import redis

    from newswatch.http import Fetcher
    from newswatch.settings import Settings
    from producer.feeds.feedlist import FeedSpec
    from producer.feeds.poller import poll_due_feeds

    client = redis.Redis.from_url(redis_url)
    settings = Settings(redis_url=redis_url, allowed_hosts=("127.0.0.1",))
    fetcher = Fetcher.from_settings(settings)
    results = []
    for index, (name, data) in enumerate(feeds):
        spec = [FeedSpec(server.url(index))]
        parse_times, producer_times = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            feedparser.parse(data)
            parse_times.append(time.perf_counter() - started)
            client.flushdb()
            started = time.perf_counter()
            report = poll_due_feeds(client, settings, spec, time.time(), force=True, fetcher=fetcher)
            producer_times.append(time.perf_counter() - started)
            if report.failed or not report.enqueued.accepted:
                raise SystemExit(f"{name}: the producer did not enqueue anything ({report.feeds})")
        results.append((name, statistics.median(parse_times), statistics.median(producer_times)))
    fetcher.close()
    return results


def rss_child(args: argparse.Namespace) -> None:
    """In a fresh process: poll `--feeds` feeds in one call and print the peak RSS as JSON."""
    import redis

    from newswatch.settings import Settings
    from producer.feeds.feedlist import FeedSpec
    from producer.feeds.poller import poll_due_feeds

    urls = json.loads(Path(args.rss_child).read_text())
    client = redis.Redis.from_url(args.redis_url)
    settings = Settings(redis_url=args.redis_url, allowed_hosts=("127.0.0.1",))
    import psutil

    baseline = psutil.Process().memory_info().rss // 1024
    started = time.perf_counter()
    report = poll_due_feeds(
        client, settings, [FeedSpec(url) for url in urls], time.time(), force=True,
        max_concurrency=args.concurrency, per_host=args.concurrency,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "feeds": len(urls), "polled": report.polled, "failed": report.failed,
        "accepted": len(report.enqueued.accepted), "duplicates": len(report.enqueued.duplicates),
        "baseline_kb": baseline, "peak_kb": peak, "seconds": elapsed,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--feeds", type=int, default=200, help="feeds polled at once for the RSS figure")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent fetches in the RSS run")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from newswatch.logs import configure_logging

    configure_logging("WARNING")
    if args.rss_child:
        rss_child(args)
        return
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} is absent: the benchmark needs the real feeds corpus")

    from newswatch.redis_server import ensure_embedded

    feeds = real_feeds()
    server = Server(feeds)
    total_bytes = sum(len(data) for _, data in feeds)
    print(
        f"feeds benchmark: {len(feeds)} real feeds ({total_bytes / 1e6:.1f} MB), "
        f"{args.rounds} rounds, medians"
    )
    with tempfile.TemporaryDirectory(prefix="nw-bench-feeds-") as data_dir:
        redis_server = ensure_embedded(Path(data_dir))
        try:
            costs = per_feed_costs(feeds, server, redis_server.url, args.rounds)
            parse_total = sum(parse for _, parse, _ in costs)
            producer_total = sum(producer for _, _, producer in costs)
            ratios = sorted(producer / parse for _, parse, producer in costs)
            mean_parse, mean_producer = 1000 * parse_total / len(costs), 1000 * producer_total / len(costs)
            print(
                f"  per feed, summed medians: feedparser.parse alone {mean_parse:.2f} ms, "
                f"producer (fetch, parse, canonicalise, dedup, enqueue) {mean_producer:.2f} ms"
            )
            print(
                f"  producer / parse-only: {producer_total / parse_total:.2f}x overall (target <= 1.3x); "
                f"per feed median {statistics.median(ratios):.2f}x, "
                f"range {ratios[0]:.2f}x .. {ratios[-1]:.2f}x"
            )
            worst = sorted(costs, key=lambda c: c[2] / c[1], reverse=True)[:3]
            print(
                "  highest ratios: " + ", ".join(f"{n} {p * 1000:.1f}/{q * 1000:.1f} ms" for n, p, q in worst)
            )
            redis_server.client().flushdb()
            urls = [server.url(i % len(feeds), copy=i // len(feeds)) for i in range(args.feeds)]
            url_file = Path(data_dir) / "urls.json"
            url_file.write_text(json.dumps(urls))
            child = subprocess.run(
                [sys.executable, __file__, "--rss-child", str(url_file), "--redis-url", redis_server.url,
                 "--concurrency", str(args.concurrency)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            memory = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"  {memory['feeds']} feeds polled in one call ({args.concurrency} concurrent fetches): "
                f"peak RSS {memory['peak_kb'] / 1024:.0f} MB "
                f"(after imports {memory['baseline_kb'] / 1024:.0f} MB), {memory['seconds']:.1f} s, "
                f"{memory['accepted']} accepted, {memory['duplicates']} duplicates, {memory['failed']} failed"
            )
        finally:
            redis_server.stop()
            server.httpd.shutdown()


if __name__ == "__main__":
    main()

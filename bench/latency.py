"""Seeds-to-webhook latency: files written into the seeds folder at a steady rate, each alert timed from the
moment its file was complete to its arrival at a local webhook receiver (target: p50 <= 100 ms, p99 <= 500 ms
at 50 articles/s).

    .venv/bin/python bench/latency.py [--articles 1000] [--rate 50] [--modes rename,inplace] [--warmup 20]

Real parts only, as `newswatch run` starts them: an embedded valkey-server, `newswatch producer` (watching
the folder), one `newswatch worker --queue articles` and one `newswatch worker --queue deliveries`, the
default webhook sink posting to a plain HTTP receiver on 127.0.0.1 in this process (it verifies nothing and
notes when each article's alert arrived). The watchlist has one topic that every article matches. Modes:
`rename` writes each file under a hidden temporary name and renames it into place (the time is taken
after the rename); `inplace` writes it under its final name (the time is taken after the close). Each mode
starts with --warmup files that are not counted (first-job imports, connections). Every alert must arrive
exactly once. The breakdown splits each latency at the producer's enqueue, the job's start and the alert's
matched_at (the RQ job records and the alert body; one clock, one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import QuietHandler, serve_locally, stop_processes  # noqa: E402
from newswatch.redis_server import ensure_embedded  # noqa: E402
from worker.sinks.signing import generate_secret  # noqa: E402

NAMES = ("articles-worker", "delivery-worker", "producer")
TARGET_P50_MS = 100.0
TARGET_P99_MS = 500.0

WATCHLIST = """
[[topic]]
id = "kursk"
name = "Kursk region"
query = "kursk"
"""

PARAGRAPH = (
    "Officials in Kyiv said on Monday that units moved into the Kursk region overnight, and that talks with "
    "regional leaders would resume after a week of strikes on ports, power plants and rail lines. "
)


class Receiver:
    """Notes when each article's alert arrived, and how many times each alert id was posted."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # article url -> first arrival (time.time())
        self.matched: dict[str, float] = {}  # article url -> the alert's matched_at
        self.posts: Counter[str] = Counter()  # alert id -> POSTs
        self.lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                now = time.time()
                alert = json.loads(body)["data"]
                url = alert["article"]["url"]
                with receiver.lock:
                    receiver.posts[self.headers.get("webhook-id", alert["id"])] += 1
                    receiver.arrived.setdefault(url, now)
                    receiver.matched.setdefault(url, _timestamp(alert["matched_at"]))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server, base = serve_locally(Handler)
        self.url = f"{base}/hook"

    def count(self, urls: list[str]) -> int:
        with self.lock:
            return sum(url in self.arrived for url in urls)


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    command = [sys.executable, "-m", "newswatch", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def write_files(seeds: Path, mode: str, label: str, count: int, rate: float) -> dict[str, float]:
    """Write `count` distinct articles at `rate` per second; file url -> when it was complete."""
    written: dict[str, float] = {}
    interval = 1.0 / rate
    next_at = time.time()
    for n in range(count):
        time.sleep(max(0.0, next_at - time.time()))
        path = seeds / f"{label}-{n:05d}.txt"
        text = f"Dispatch {label} {n}\n\n" + PARAGRAPH * 12 + f"\nFiled as {label}/{n}.\n"
        if mode == "rename":
            temporary = seeds / f".{path.name}.tmp"
            temporary.write_text(text, encoding="utf-8")
            os.rename(temporary, path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        written[path.resolve().as_uri()] = time.time()
        next_at += interval
    return written


def wait_for(
    receiver: Receiver, urls: list[str], processes: list[subprocess.Popen[bytes]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while receiver.count(urls) < len(urls) and time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("bench: a newswatch process exited; see its log above")
        time.sleep(0.02)


def job_times(client: Any) -> tuple[dict[str, tuple[float, float]], list[tuple[float, float, int]]]:
    """Article id -> (enqueued_at, started_at) of its articles job, and each job's (start, end, articles),
    from RQ's records."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FinishedJobRegistry
    from rq.serializers import JSONSerializer

    from newswatch.queues import ARTICLES_QUEUE

    queue = Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer)
    ids = FinishedJobRegistry(queue=queue).get_job_ids()
    times: dict[str, tuple[float, float]] = {}
    runs: list[tuple[float, float, int]] = []
    for job in Job.fetch_many(ids, connection=client, serializer=JSONSerializer):
        if job is None or job.enqueued_at is None or job.started_at is None or job.ended_at is None:
            continue
        enqueued, started = _utc(job.enqueued_at), _utc(job.started_at)
        articles = job.meta.get("articles", [])
        for article_id in articles:
            times[article_id] = (enqueued, started)
        runs.append((started, _utc(job.ended_at), len(articles)))
    return times, runs


def _utc(moment: datetime) -> float:
    from datetime import UTC

    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass
class ModeResult:
    mode: str
    latencies: list[float]  # seconds, file complete -> alert at the receiver
    arrived: int
    expected: int
    stages: list[tuple[float, float, float, float]]  # complete->enqueued, queue wait, job->match, delivery
    runs: list[tuple[float, float, int]]  # article jobs: start, end, articles


def measure(
    mode: str,
    written: dict[str, float],
    arrived: dict[str, float],
    matched: dict[str, float],
    jobs: dict[str, tuple[float, float]],
    runs: list[tuple[float, float, int]],
) -> ModeResult:
    from newswatch.messages import Document

    latencies, stages = [], []
    for url, at in written.items():
        if url not in arrived:
            continue
        latencies.append(arrived[url] - at)
        article_id = Document(url=url, format="text", body="").article_id
        if article_id in jobs:
            enqueued, started = jobs[article_id]
            stages.append(
                (enqueued - at, started - enqueued, matched[url] - started, arrived[url] - matched[url])
            )
    return ModeResult(mode, latencies, len(arrived), len(written), stages, runs)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far, from /proc (Linux; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def ms(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value >= 0.0095 else f"{value * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000, help="files per mode (default 1000)")
    parser.add_argument("--rate", type=float, default=50.0, help="files per second (default 50)")
    parser.add_argument("--modes", default="rename,inplace", help="rename, inplace, or both (default)")
    parser.add_argument("--warmup", type=int, default=20, help="files written first, not counted")
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not set(modes) <= {"rename", "inplace"} or not modes:
        parser.error("--modes: rename, inplace or both")

    import redis

    receiver = Receiver()
    results: list[ModeResult] = []
    cpu: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nw-bench-latency-") as work:
        workdir = Path(work)
        seeds, logs = workdir / "seeds", workdir / "logs"
        seeds.mkdir()
        logs.mkdir()
        (workdir / "watchlist.toml").write_text(WATCHLIST, encoding="utf-8")
        server = ensure_embedded(workdir / "data")
        processes: list[subprocess.Popen[bytes]] = []
        try:
            client = redis.Redis.from_url(server.url)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": server.url,
                "NEWSWATCH_CONFIG": os.devnull,
                "NEWSWATCH_DATA_DIR": str(workdir / "data"),
                "NEWSWATCH_SEEDS_DIR": str(seeds),
                "NEWSWATCH_WATCHLIST": str(workdir / "watchlist.toml"),
                "NEWSWATCH_WEBHOOK_URL": receiver.url,
                "NEWSWATCH_WEBHOOK_SECRET": generate_secret(),
                "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
            }
            env.pop("NEWSWATCH_METRICS_PORT", None)
            processes = [
                start(
                    "articles-worker", ["worker", "--queue", "articles", "--log-level", "WARNING"], env, logs
                ),
                start(
                    "delivery-worker",
                    ["worker", "--queue", "deliveries", "--log-level", "WARNING"],
                    env,
                    logs,
                ),
                start("producer", ["producer"], env, logs),
            ]
            print(
                f"seeds -> webhook latency: {args.articles} files per mode at {args.rate:g}/s; newswatch "
                f"producer, 1 article worker, 1 delivery worker, valkey; {os.cpu_count()} cores",
                file=sys.stderr,
            )
            pids = {name: process.pid for name, process in zip(NAMES, processes, strict=True)}
            pids["valkey"] = int(server.pid_file.read_text().strip())
            for mode in modes:
                warm = write_files(seeds, mode, f"warm-{mode}", args.warmup, args.rate)
                wait_for(receiver, list(warm), processes, timeout=120)
                cpu_before, began = cpu_seconds(pids), time.monotonic()
                written = write_files(seeds, mode, mode, args.articles, args.rate)
                wait_for(receiver, list(written), processes, timeout=60 + args.articles / args.rate)
                elapsed, cpu_after = time.monotonic() - began, cpu_seconds(pids)
                cpu[mode] = {name: (cpu_after[name] - cpu_before[name]) / elapsed for name in cpu_after}
                with receiver.lock:
                    arrived = {url: receiver.arrived[url] for url in written if url in receiver.arrived}
                    matched = dict(receiver.matched)
                jobs, runs = job_times(client)
                first_write = min(written.values())
                results.append(
                    measure(mode, written, arrived, matched, jobs, [r for r in runs if r[0] >= first_write])
                )
            with receiver.lock:
                repeated = sum(count - 1 for count in receiver.posts.values() if count > 1)
        finally:
            stop_processes(processes)
            server.stop()
        for process, name in zip(processes, NAMES, strict=True):
            if process.returncode not in (0, -signal.SIGTERM):
                tail = (logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")[-2000:]
                print(f"--- {name} exited {process.returncode}:\n{tail}", file=sys.stderr)

    command = " ".join(["bench/latency.py", *sys.argv[1:]])
    print(f"seeds -> webhook latency, {args.rate:g} files/s, {args.articles} files per mode after "
          f"{args.warmup} warm-up files ({command})")  # fmt: skip
    print()
    print("mode    | p50      | p90      | p99      | max      | alerts arrived")
    print("--------|----------|----------|----------|----------|---------------")
    ok = True
    for result in results:
        if not result.latencies:
            print(f"{result.mode:<7} | none arrived of {result.expected}")
            ok = False
            continue
        p50, p90, p99 = (percentile(result.latencies, q) for q in (0.5, 0.9, 0.99))
        worst = max(result.latencies)
        print(f"{result.mode:<7} | {ms(p50):>8} | {ms(p90):>8} | {ms(p99):>8} | {ms(worst):>8} | "
              f"{result.arrived} of {result.expected}")  # fmt: skip
        ok = ok and result.arrived == result.expected
        ok = ok and p50 * 1000 <= TARGET_P50_MS and p99 * 1000 <= TARGET_P99_MS
    print()
    print("where the time goes, p50 / p99:")
    print("  mode    | complete -> enqueued | queue wait    | job to match  | match -> receiver")
    for result in results:
        if result.stages:
            columns = list(zip(*result.stages, strict=True))
            parts = " | ".join(
                f"{ms(percentile(list(c), 0.5)):>6} / {ms(percentile(list(c), 0.99)):>6}".ljust(13)
                for c in columns
            )
            print(f"  {result.mode:<7} | {parts}")
    for result in results:
        if result.runs:
            durations = [end - begin for begin, end, _n in result.runs]
            per_job = sum(n for _b, _e, n in result.runs) / len(result.runs)
            print(f"  {result.mode} article jobs: {len(result.runs)}, {per_job:.1f} articles each, run time "
                  f"{ms(percentile(durations, 0.5))} / {ms(percentile(durations, 0.99))}")  # fmt: skip
    for mode, shares in cpu.items():
        used = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
        print(f"  {mode} CPU per process (share of one core): {used}")
    print()
    print(f"alerts posted more than once: {repeated} (must be 0)")
    ok = ok and repeated == 0
    print(f"target p50 <= {TARGET_P50_MS:.0f} ms, p99 <= {TARGET_P99_MS:.0f} ms, every alert exactly once: "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

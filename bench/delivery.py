"""Delivery benchmark: alerts per second to a local webhook receiver with 1 and 4 delivery workers, and the
latency an alert adds from `enqueue_deliveries` to the receiver (median, p99) at a steady rate.

    .venv/bin/python bench/delivery.py [--alerts 2000] [--topics 8] [--rate 50] [--seconds 10]

Real parts only: an embedded valkey-server, `rq worker` processes (SimpleWorker, with the scheduler) on
the deliveries queue, signed POSTs through the SSRF-guarded client to a keep-alive HTTP receiver in this
process. Channels are (sink, topic) pairs and are sent in order, one worker each: workers add throughput
across topics, not within one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import QuietHandler, serve_locally, stop_processes  # noqa: E402
from newswatch.redis_server import ensure_embedded  # noqa: E402
from newswatch.settings import Settings  # noqa: E402
from worker.delivery import enqueue_deliveries, now_iso, use_settings  # noqa: E402
from worker.delivery_admin import deliveries_settled  # noqa: E402
from worker.sinks.signing import generate_secret  # noqa: E402


class Receiver:
    """Counts POSTs and notes when each webhook id arrived (no verification: it measures the sender)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.arrived.setdefault(self.headers["webhook-id"], time.time())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server, base = serve_locally(Handler)
        self.url = f"{base}/hook"


def start_workers(count: int, redis_url: str, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    command = [
        sys.executable, "-m", "rq.cli", "worker", "--url", redis_url, "--with-scheduler",
        "--worker-class", "rq.worker.SimpleWorker", "--serializer", "rq.serializers.JSONSerializer",
        "--logging_level", "WARNING", "newswatch:deliveries",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    time.sleep(1.5)  # let them register and block on the queue
    return workers


def alert(run: str, topic: int, n: int) -> dict[str, Any]:
    return {
        "id": f"al_{run}_{topic}_{n}",
        "topic": {"id": f"topic-{topic}", "name": f"Topic {topic}"},
        "article": {
            "id": f"a{n}",
            "url": f"https://news.example.org/{n}",
            "title": f"Article {n}",
            "source": {},
        },
        "score": 1.0,
        "evidence": [{"term": "kursk", "offsets": [[10, 15]]}],
        "snippet": "North Korean troops were reported in the Kursk region. " * 3,
        "matched_at": now_iso(),
    }


def wait_for(receiver: Receiver, ids: list[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver.lock:
            if all(ident in receiver.arrived for ident in ids):
                return
        time.sleep(0.01)
    raise SystemExit(f"timed out: {sum(i in receiver.arrived for i in ids)} of {len(ids)} arrived")


def throughput(client: Any, settings: Settings, receiver: Receiver, workers: int, args: argparse.Namespace,
               env: dict[str, str], redis_url: str) -> float:  # fmt: skip
    """A backlog (as after an outage) drained by `workers` processes: alerts/s, first to last arrival."""
    run = f"tp{workers}"
    alerts = [alert(run, n % args.topics, n) for n in range(args.alerts)]
    for item in alerts:
        enqueue_deliveries(client, item, settings, None)
    processes = start_workers(workers, redis_url, env)
    try:
        wait_for(receiver, [a["id"] for a in alerts])
    finally:
        stop_processes(processes)
    times = sorted(receiver.arrived[a["id"]] for a in alerts)
    assert deliveries_settled(client)
    return (len(alerts) - 1) / (times[-1] - times[0])


def latency(client: Any, settings: Settings, receiver: Receiver, args: argparse.Namespace,
            env: dict[str, str], redis_url: str) -> list[float]:  # fmt: skip
    processes = start_workers(1, redis_url, env)
    sent: dict[str, float] = {}
    try:
        interval = 1.0 / args.rate
        next_at = time.time()
        for n in range(int(args.rate * args.seconds)):
            time.sleep(max(0.0, next_at - time.time()))
            item = alert("lat", n % args.topics, n)
            sent[item["id"]] = time.time()
            enqueue_deliveries(client, item, settings, None)
            next_at += interval
        wait_for(receiver, list(sent))
    finally:
        stop_processes(processes)
    return sorted(receiver.arrived[ident] - at for ident, at in sent.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--topics", type=int, default=8)
    parser.add_argument("--rate", type=float, default=50.0, help="alerts per second for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    receiver = Receiver()
    secret = generate_secret()
    with tempfile.TemporaryDirectory(prefix="nw-bench-delivery-") as data_dir:
        server = ensure_embedded(Path(data_dir))
        try:
            import redis

            client = redis.Redis.from_url(server.url)
            settings = Settings(
                redis_url=server.url,
                webhook_url=receiver.url,
                webhook_secret=secret,
                allowed_hosts=("127.0.0.1",),
            )
            use_settings(settings)
            env = {
                **os.environ,
                "REDIS_URL": server.url,
                "NEWSWATCH_CONFIG": os.devnull,
                "NEWSWATCH_WEBHOOK_URL": receiver.url,
                "NEWSWATCH_WEBHOOK_SECRET": secret,
                "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
                "PYTHONPATH": str(ROOT),
            }
            print(
                f"delivery benchmark: {args.alerts} alerts over {args.topics} topics, {os.cpu_count()} cores"
            )
            for workers in (1, 4):
                rate = throughput(client, settings, receiver, workers, args, env, server.url)
                print(f"  backlog throughput, {workers} delivery worker(s): {rate:,.0f} alerts/s")
            delays = latency(client, settings, receiver, args, env, server.url)
            p50 = statistics.median(delays) * 1000
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000
            print(f"  added latency at {args.rate:g} alerts/s, 1 worker: median {p50:.1f} ms, "
                  f"p99 {p99:.1f} ms (enqueue_deliveries -> receiver, {len(delays)} alerts)")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()

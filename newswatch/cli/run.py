"""`newswatch run [--once] [--json] [--workers N]`: Redis, the producer and article workers on one machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from newswatch.cli.common import (
    CommandError,
    file_progress,
    load_configuration,
    open_connection,
    reports_errors,
    start_metrics,
    stop_on_signals,
)

if TYPE_CHECKING:
    import redis

    from newswatch.settings import Settings

#: Seconds between two looks at the alert log, the ledger and the workers.
POLL = 0.25
#: With --once: nothing queued, running or scheduled for this long while articles are still pending means
#: their jobs are gone and the reconciler did not bring them back; the run reports them instead of waiting
#: forever. Longer than the reconciler's grace plus two of its intervals.
STUCK_AFTER = 60.0
#: A worker that exits on its own is started again, at most this often (seconds).
RESTART_DELAY = 2.0
#: A worker that dies within QUICK_DEATH seconds of its start, more than MAX_QUICK_DEATHS times in a row,
#: is crash-looping: the run stops with an error instead of restarting it forever.
QUICK_DEATH = 15.0
MAX_QUICK_DEATHS = 3

# Started as `python -c LAUNCHER <parent pid> worker ...`: on Linux the worker gets SIGTERM when this
# process dies, even by SIGKILL, so a killed `newswatch run` leaves no orphan worker behind.
LAUNCHER = """
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent died before prctl took effect
from newswatch.cli import main
sys.exit(main(sys.argv[2:]))
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="everything on one machine: Redis, producer and workers",
        description="Run newswatch on one machine: Redis (embedded unless REDIS_URL is set), the producer "
        "(seeds folder) and article workers, printing each new alert as one line. With --once: ingest what "
        "the seeds folder holds now, wait until every article is processed, print a summary and exit.",
    )
    parser.add_argument("--once", action="store_true", help="ingest, wait until processed, summarise, exit")
    parser.add_argument("--json", action="store_true", help="one JSON object per new alert on stdout")
    parser.add_argument(
        "--workers", type=_positive, default=1, metavar="N", help="article worker processes (default 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --once: give up waiting after this long (default: no limit)",
    )
    parser.set_defaults(handler=run_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class WorkerPool:
    """Worker subprocesses (`newswatch worker`): `count` on the articles queue and one on the deliveries
    queue (one queue per process); started, restarted when they die, stopped warmly."""

    def __init__(self, count: int, settings: Settings) -> None:
        self.queues = ["articles"] * count + ["deliveries"]
        self.settings = settings
        self.processes: list[subprocess.Popen[bytes]] = []
        self._last_start = 0.0
        self._started_at: dict[int, float] = {}
        self._quick_deaths = 0

    def command(self, queue: str) -> list[str]:
        # Warnings and errors only: our console prints each alert, and a worker's INFO line for the same
        # alert would show it twice. `newswatch worker` on its own logs at INFO.
        return [
            sys.executable, "-c", LAUNCHER, str(os.getpid()), "worker", "--queue", queue,
            "--log-level", "WARNING",
        ]  # fmt: skip

    def _spawn(self, queue: str) -> subprocess.Popen[bytes]:
        self._last_start = time.monotonic()
        # Own session: a Ctrl-C in the terminal reaches only us, and we stop the workers in order.
        # Their stdout goes to our stderr, so that stdout carries only alerts (--json); the delivery
        # worker's is dropped: its console sink (used when no webhook is set) would print each alert a
        # second time beside our console, which prints every alert of the log already.
        stdout = subprocess.DEVNULL if queue == "deliveries" else sys.stderr.fileno()
        process = subprocess.Popen(
            self.command(queue), stdin=subprocess.DEVNULL, stdout=stdout, start_new_session=True
        )
        self._started_at[process.pid] = self._last_start
        return process

    def start(self) -> None:
        self.processes = [self._spawn(queue) for queue in self.queues]

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def supervise(self) -> None:
        """Start again any worker that exited (crash, OOM kill), at most one every RESTART_DELAY.

        CommandError when restarting cannot help: a configuration error (exit 2), or workers that keep
        dying right after they start.
        """
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is None or time.monotonic() - self._last_start < RESTART_DELAY:
                continue
            if code == 2:  # the worker refused its configuration (watchlist, settings)
                raise CommandError("a worker stopped on a configuration error (see its message above)")
            lived = time.monotonic() - self._started_at.pop(process.pid, 0.0)
            self._quick_deaths = self._quick_deaths + 1 if lived < QUICK_DEATH else 0
            if self._quick_deaths > MAX_QUICK_DEATHS:
                raise CommandError(f"workers keep exiting right after start (last status {code}); see above")
            print(f"newswatch run: worker {process.pid} exited ({code}); restarting", file=sys.stderr)
            self.processes[index] = self._spawn(self.queues[index])

    def stop(self) -> None:
        """SIGTERM (warm shutdown: the current job finishes), then SIGKILL after the job timeout."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.job_timeout + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"newswatch run: worker {process.pid} did not stop; killing it", file=sys.stderr)
                _kill_group(process)
                process.wait()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def deliveries_pending(connection: redis.Redis, settings: Settings) -> bool:
    """True while some alert is neither delivered nor dead-lettered; also closes open digest windows and
    restarts delivery channels whose job was lost (`run --once` does not wait for a digest period)."""
    from worker.delivery_admin import settle_step

    return not settle_step(connection, settings)


def reconcile(connection: redis.Redis, settings: Settings) -> None:
    """Re-enqueue pending articles whose job was lost in a crash (one pass per interval, see
    producer.reconcile)."""
    from producer.reconcile import reconcile as reconcile_pending

    reconcile_pending(connection, settings)


@reports_errors
def run_command(args: argparse.Namespace) -> int:
    settings = load_configuration()
    connection = open_connection(settings)
    start_metrics(connection, settings)
    pool = WorkerPool(args.workers, settings)
    with stop_on_signals() as stop:
        pool.start()
        try:
            if args.once:
                return run_once(connection, settings, pool, stop, args)
            return run_forever(connection, settings, pool, stop, args)
        finally:
            stop.set()
            pool.stop()


def run_forever(
    connection: redis.Redis,
    settings: Settings,
    pool: WorkerPool,
    stop: threading.Event,
    args: argparse.Namespace,
) -> int:
    from newswatch.alert_log import AlertLog
    from newswatch.cli.enqueue import last_alert_id
    from newswatch.connection import redis_target
    from producer.service import run_producer

    after = last_alert_id(connection)
    producer = threading.Thread(
        target=run_producer,
        kwargs={"connection": connection, "settings": settings, "stop": stop},
        daemon=True,
    )
    producer.start()
    print(
        f"newswatch: {args.workers} article worker(s) and a delivery worker on {redis_target(settings)}; "
        f"watching {settings.seeds_dir}/ "
        f"with {settings.watchlist}. Ctrl-C stops.",
        file=sys.stderr,
    )
    alert_log = AlertLog(connection)
    while not stop.wait(POLL):
        for entry in alert_log.since(after, count=1000):
            _print_alert(entry.alert, args.json)
            after = entry.entry_id
        pool.supervise()
    producer.join(timeout=10)
    return 0


def _print_alert(alert: dict[str, Any], as_json: bool) -> None:
    from newswatch.alert_log import format_alert_line

    print(json.dumps(alert, ensure_ascii=False) if as_json else format_alert_line(alert), flush=True)


def run_once(
    connection: redis.Redis,
    settings: Settings,
    pool: WorkerPool,
    stop: threading.Event,
    args: argparse.Namespace,
) -> int:
    from newswatch.cli.enqueue import alerts_since, last_alert_id
    from producer.service import produce_once

    after = last_alert_id(connection)
    with file_progress("scanning seeds") as progress:
        result = produce_once(connection, settings, once=True, progress=progress)
    accepted = [document.article_id for document in result.enqueued.accepted]
    stuck = _wait_until_processed(connection, settings, pool, stop, args.timeout)
    if stop.is_set():
        print("newswatch run: interrupted", file=sys.stderr)
        return 130
    alerts = alerts_since(connection, after)
    for alert in alerts:
        _print_alert(alert, args.json)
    failures = _final_failures(connection, accepted)
    summary = (
        f"{len(accepted)} articles, {len(result.enqueued.duplicates)} duplicates, {len(alerts)} alerts, "
        f"{len(failures) + len(result.bad)} failures"
    )
    out = sys.stderr if args.json else sys.stdout
    print(f"newswatch run --once: {summary}", file=out)
    for bad in result.bad:
        print(f"  refused {bad.path}: {bad.reason}", file=out)
    for article_id, error in failures.items():
        print(f"  failed {article_id}: {error}", file=out)
    if stuck:
        print(f"newswatch run: {stuck}", file=sys.stderr)
        return 1
    return 0


def _wait_until_processed(
    connection: redis.Redis,
    settings: Settings,
    pool: WorkerPool,
    stop: threading.Event,
    timeout: float | None,
) -> str | None:
    """Wait until the pending ledger is empty and the queue drained (then the delivery hook); None, or
    why the wait ended without that (stuck jobs, workers gone, timeout)."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from newswatch import keys
    from newswatch.queues import ARTICLES_QUEUE

    queue = Queue(ARTICLES_QUEUE, connection=connection, serializer=JSONSerializer)
    deadline = None if timeout is None else time.monotonic() + timeout
    idle_since: float | None = None
    while not stop.wait(POLL):
        reconcile(connection, settings)
        pending = int(connection.hlen(keys.PENDING))
        busy = queue.count + queue.started_job_registry.count + queue.scheduled_job_registry.count
        if pending == 0 and busy == 0 and not deliveries_pending(connection, settings):
            return None
        if pending and not busy:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > STUCK_AFTER:
                return f"{pending} articles pending but no job queued or running (see `newswatch status`)"
        else:
            idle_since = None
        pool.supervise()
        if deadline is not None and time.monotonic() > deadline:
            return f"gave up after {timeout:.0f} s with {pending} articles pending"
    return None


def _final_failures(connection: redis.Redis, article_ids: list[str]) -> dict[str, str]:
    from newswatch import keys

    if not article_ids:
        return {}
    failures = {}
    for article_id, raw in zip(article_ids, connection.hmget(keys.FAILED, article_ids), strict=True):
        if raw is not None:
            record = json.loads(raw)
            if record.get("final", True):
                failures[article_id] = str(record.get("error", ""))
    return failures

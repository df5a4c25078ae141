"""`newswatch status [--json]`: queues, workers, counts, the pending ledger and failed articles."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from newswatch.cli.common import load_configuration, open_connection, reports_errors

#: Failed articles listed in the human view (all of them with --json).
SHOWN_FAILURES = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="queues, workers, counts and failed articles",
        description="Show queue depths, live workers, article and alert counts, the pending ledger and "
        "failed articles with their errors, read from Redis (REDIS_URL or the embedded server).",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(handler=run)


def collect(connection: Any) -> dict[str, Any]:
    """Everything `status` shows, as JSON-ready data (other parts may add sections to the dict)."""
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from newswatch import keys
    from newswatch.queues import ARTICLES_QUEUE, DELIVERIES_QUEUE

    queues = {}
    for name in (ARTICLES_QUEUE, DELIVERIES_QUEUE):
        queue = Queue(name, connection=connection, serializer=JSONSerializer)
        queues[name] = {
            "queued": queue.count,
            "started": queue.started_job_registry.get_job_count(cleanup=False),
            "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
            "failed_jobs": queue.failed_job_registry.get_job_count(cleanup=False),
        }
    workers = []
    for worker in Worker.all(connection=connection, serializer=JSONSerializer):
        heartbeat = worker.last_heartbeat
        workers.append(
            {
                "name": worker.name,
                "queues": worker.queue_names(),
                "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                "pid": worker.pid,
                "current_job": worker.get_current_job_id(),
                "last_heartbeat": heartbeat.replace(tzinfo=UTC).isoformat() if heartbeat else None,
            }
        )
    stats = {k.decode(): int(v) for k, v in connection.hgetall(keys.STATS).items()}
    failed = []
    for article_id, raw in sorted(connection.hgetall(keys.FAILED).items()):
        try:
            record = json.loads(raw)
        except ValueError:
            record = {"error": raw.decode(errors="replace")}
        article = record.get("article") or {}
        failed.append(
            {
                "article_id": article_id.decode(),
                "url": article.get("url", ""),
                "title": article.get("title", ""),
                "error": record.get("error", ""),
                "attempts": record.get("attempts"),
                "final": record.get("final", False),
                "last_at": record.get("last_at"),
            }
        )
    failed.sort(key=lambda item: item.get("last_at") or "", reverse=True)
    counts = {
        name: stats.get(name, 0)
        for name in (
            keys.STAT_ACCEPTED,
            keys.STAT_DUPLICATES,
            keys.STAT_PROCESSED,
            keys.STAT_FAILED,
            keys.STAT_RETRIED,
            keys.STAT_ALERTS,
        )
    }
    counts.update({k: v for k, v in stats.items() if k not in counts})
    from newswatch.metrics import redis_events
    from worker.delivery_admin import delivery_counts

    return {
        "redis": redis_events(connection),
        "queues": queues,
        "workers": workers,
        "counts": counts,
        "pending": int(connection.hlen(keys.PENDING)),
        "alert_log": int(connection.xlen(keys.ALERTS_STREAM)),
        "failed": failed,
        "deliveries": delivery_counts(connection),
    }


def render(status: dict[str, Any]) -> None:
    """The human view: small rich tables (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "queued", "started", "scheduled", "failed jobs"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for name, q in status["queues"].items():
        queues.add_row(name, *(str(q[k]) for k in ("queued", "started", "scheduled", "failed_jobs")))
    console.print(queues)

    counts = status["counts"]
    summary = ", ".join(f"{name} {value}" for name, value in counts.items())
    console.print(f"Articles and alerts: {summary}")
    console.print(f"Pending (accepted, not processed yet): {status['pending']}")
    console.print(f"Alert log entries: {status['alert_log']}")
    events = status.get("redis") or {}
    if events.get("last_reconnect_at"):
        at = datetime.fromtimestamp(float(events["last_reconnect_at"]), UTC).isoformat(timespec="seconds")
        console.print(
            f"Redis connection lost and regained {events.get('reconnects', 1)} times; last at {at} "
            f"({events.get('last_reconnect_by', '?')})",
            highlight=False,
        )
    if "deliveries" in status:
        from worker.delivery_cli import status_lines

        for line in status_lines(status["deliveries"]):
            console.print(line, highlight=False)

    workers = Table(title=f"Workers alive: {len(status['workers'])}", title_justify="left")
    for column in ("name", "queues", "state", "current job", "last heartbeat"):
        workers.add_column(column)
    now = datetime.now(UTC)
    for w in status["workers"]:
        beat = w["last_heartbeat"]
        ago = f"{(now - datetime.fromisoformat(beat)).total_seconds():.0f} s ago" if beat else "-"
        workers.add_row(w["name"], ", ".join(w["queues"]), w["state"], w["current_job"] or "-", ago)
    if status["workers"]:
        console.print(workers)
    else:
        console.print("Workers alive: 0 (start one with `newswatch worker`)")

    failed = status["failed"]
    if failed:
        table = Table(title=f"Failed articles: {len(failed)}", title_justify="left")
        for column in ("article", "attempts", "state", "error"):
            table.add_column(column, overflow="fold")
        for item in failed[:SHOWN_FAILURES]:
            state = "failed" if item["final"] else "retrying"
            table.add_row(item["url"] or item["article_id"], str(item["attempts"]), state, item["error"])
        console.print(table)
        if len(failed) > SHOWN_FAILURES:
            console.print(f"... and {len(failed) - SHOWN_FAILURES} more (newswatch status --json lists all)")
    else:
        console.print("Failed articles: 0")


@reports_errors
def run(args: argparse.Namespace) -> int:
    connection = open_connection(load_configuration("WARNING"), wait=5)
    status = collect(connection)
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        render(status)
    return 0

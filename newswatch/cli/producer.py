"""`newswatch producer [--once]`: poll the seeds folder (and feeds) and enqueue new articles."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from newswatch.cli.common import (
    file_progress,
    load_configuration,
    open_connection,
    reports_errors,
    start_metrics,
    stop_on_signals,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "producer",
        help="poll the seeds folder and feeds, enqueue new articles",
        description="Watch the seeds folder (NEWSWATCH_SEEDS_DIR, seeds/ by default) and enqueue new and "
        "changed files for the workers. What was taken is remembered in Redis, so a restart does "
        "not enqueue it again.",
    )
    parser.add_argument("--once", action="store_true", help="one pass over every source, then exit")
    parser.add_argument(
        "--interval", type=float, default=None, metavar="SECONDS", help="seconds between scans (default 2)"
    )
    parser.set_defaults(handler=run_producer_command)


@reports_errors
def run_producer_command(args: argparse.Namespace) -> int:
    from producer.service import SCAN_INTERVAL, produce_once, run_producer

    settings = load_configuration()
    connection = open_connection(settings)
    if not args.once:
        start_metrics(connection, settings)
    if args.once:
        with file_progress("scanning seeds") as progress:
            result = produce_once(connection, settings, once=True, progress=progress)
        print(
            f"enqueued {len(result.enqueued.accepted)} articles in {len(result.enqueued.job_ids)} jobs; "
            f"{len(result.enqueued.duplicates)} duplicates skipped; {len(result.bad)} files refused"
        )
        for bad in result.bad:
            print(f"refused {bad.path}: {bad.reason}", file=sys.stderr)
        return 0
    with stop_on_signals() as stop:
        run_producer(connection, settings, stop=stop, interval=args.interval or SCAN_INTERVAL)
    return 0

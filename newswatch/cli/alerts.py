"""`newswatch alerts [--follow] [--json] [--limit N]`: read the alert log (a Redis Stream)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from newswatch.cli.common import CommandError, load_configuration, open_connection, reports_errors

DEFAULT_LIMIT = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="show the alert log (--follow to watch new alerts)",
        description="Show the latest alerts from the alert log, oldest first; with --follow, keep "
        "printing new alerts as workers write them (Ctrl-C to stop).",
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new alerts")
    parser.add_argument("--json", action="store_true", help="one JSON object (the alert) per line")
    parser.add_argument(
        "--limit",
        "-n",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show the last N alerts first (default {DEFAULT_LIMIT}; 0 with --follow: only new ones)",
    )
    parser.set_defaults(handler=run)
    from worker.delivery_cli import add_delivery_arguments  # light: imports only argparse and json

    add_delivery_arguments(parser)  # `alerts --failed` and `alerts redeliver ...` (delivery issue)


@reports_errors
def run(args: argparse.Namespace) -> int:
    from newswatch.alert_log import AlertEntry, AlertLog, format_alert_line

    if args.failed:
        from worker.delivery_cli import show_failed

        return show_failed(args)
    if args.limit < 0:
        raise CommandError("--limit must be 0 or more")
    log = AlertLog(open_connection(load_configuration("WARNING"), wait=5))

    def show(entry: AlertEntry) -> None:
        line = json.dumps(entry.alert, ensure_ascii=False) if args.json else format_alert_line(entry.alert)
        print(line, flush=args.follow)

    try:
        shown = log.latest(args.limit)
        for entry in shown:
            show(entry)
        if args.follow:
            if not shown:
                latest = log.latest(1)
                after = latest[0].entry_id if latest else "0-0"
            else:
                after = shown[-1].entry_id
            for entry in log.follow(after=after):
                show(entry)
        elif not shown and not args.json and sys.stdout.isatty():
            print("No alerts yet.", file=sys.stderr)
    except BrokenPipeError:  # `newswatch alerts | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0

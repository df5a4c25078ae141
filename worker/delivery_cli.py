"""Command-line pieces for delivery, wired into `newswatch alerts` and `newswatch status` (light imports).

In newswatch/cli/alerts.py:  `add_delivery_arguments(parser)` in add_parser (adds `--failed` and the
`redeliver` action), and at the top of its run(): `if args.failed: return show_failed(args)`.
In newswatch/cli/status.py:  `data["deliveries"] = delivery_counts(connection)` in collect(), and
`status_lines(data["deliveries"])` in the human view.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_delivery_arguments(parser: argparse.ArgumentParser) -> None:
    """`alerts --failed` and `alerts redeliver (ID... | --failed | --since TIME) [--json]`."""
    parser.add_argument(
        "--failed", action="store_true", help="list dead-lettered deliveries with every attempt and error"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    redeliver = actions.add_parser(
        "redeliver",
        help="send alerts again, with the same webhook ids",
        description="Send alerts again to their sinks with the same webhook-id (receivers deduplicate on "
        "it): the given alert (al_...) or digest (dg_...) ids, every dead letter (--failed), or every alert "
        "logged since TIME (--since 2h, --since 2025-01-31T08:00). A sink disabled by 410 Gone is enabled "
        "again. A delivery worker sends them.",
    )
    redeliver.add_argument("ids", nargs="*", metavar="ID", help="alert or digest ids")
    redeliver.add_argument(
        "--failed", action="store_true", dest="all_failed", help="every dead-lettered delivery"
    )
    redeliver.add_argument(
        "--since", metavar="TIME", help="every alert logged since TIME (ISO-8601 or 2h, 1d)"
    )
    redeliver.add_argument("--json", action="store_true", help="print what was queued as one JSON object")
    redeliver.set_defaults(handler=run_redeliver, failed=False)


def _connect(command: str) -> tuple[Any, Any] | int:
    from newswatch.connection import RedisUnavailable, connect
    from newswatch.logs import configure_logging
    from newswatch.settings import SettingsError, load_settings

    configure_logging("WARNING")
    try:
        settings = load_settings()
        return settings, connect(settings, wait=5)
    except SettingsError as error:
        print(f"newswatch {command}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # RedisUnavailable and friends
        if isinstance(error, RedisUnavailable):
            print(f"newswatch {command}: {error}", file=sys.stderr)
            return 1
        raise


def show_failed(args: argparse.Namespace) -> int:
    """`newswatch alerts --failed [--json]`: dead letters, oldest first; exit 1 when there are none."""
    from worker.delivery_admin import failed_deliveries, format_failed

    connected = _connect("alerts --failed")
    if isinstance(connected, int):
        return connected
    _settings, connection = connected
    records = failed_deliveries(connection)
    if getattr(args, "json", False):
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
    else:
        for line in format_failed(records):
            print(line)
        if not records and sys.stdout.isatty():
            print("No failed deliveries.", file=sys.stderr)
    return 0 if records else 1


def run_redeliver(args: argparse.Namespace) -> int:
    from worker.delivery_admin import RedeliverError, parse_since, redeliver
    from worker.sinks.config import SinkConfigError

    if not (args.ids or args.all_failed or args.since):
        print("newswatch alerts redeliver: give alert ids, --failed or --since TIME", file=sys.stderr)
        return 2
    if args.since:
        try:
            parse_since(args.since)
        except RedeliverError as error:
            print(f"newswatch alerts redeliver: {error}", file=sys.stderr)
            return 2
    connected = _connect("alerts redeliver")
    if isinstance(connected, int):
        return connected
    settings, connection = connected
    try:
        report = redeliver(connection, args.ids, failed=args.all_failed, since=args.since, settings=settings)
    except SinkConfigError as error:
        print(f"newswatch alerts redeliver: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"requeued": report.requeued, "not_found": report.not_found,
                          "enabled_sinks": report.enabled_sinks}))  # fmt: skip
    else:
        for sink, ident in report.requeued:
            print(f"queued {ident} -> {sink}")
        for sink in report.enabled_sinks:
            print(f"sink {sink} enabled again", file=sys.stderr)
        for ident in report.not_found:
            print(f"newswatch alerts redeliver: {ident}: no such alert or dead letter", file=sys.stderr)
    if report.not_found and not report.requeued:
        return 2
    return 0 if report.requeued else 1


def status_lines(counts: dict[str, Any]) -> list[str]:
    """The deliveries section of the human `status` view."""
    lines = [
        f"deliveries: {counts['delivered']} delivered ({counts['delivered_alerts']} alerts), "
        f"{counts['queued']} queued, {counts['retrying']} retrying, {counts['dead_lettered']} dead-lettered",
        f"  flood control: {counts['suppressed_cap']} suppressed by max_per_hour "
        f"({counts['suppressed_held']} held for redelivery), {counts['digested']} alerts in digests "
        f"({counts['waiting_in_digest']} waiting for their window)",
    ]
    for sink, info in counts.get("disabled_sinks", {}).items():
        lines.append(f"  sink {sink} DISABLED since {info.get('at')}: {info.get('error')}")
    if counts["dead_lettered"]:
        lines.append("  see: newswatch alerts --failed; resend: newswatch alerts redeliver --failed")
    return lines

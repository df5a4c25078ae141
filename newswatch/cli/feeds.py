"""`newswatch feeds check [FILE]` (validate the feeds file) and `newswatch feeds list [--json]` (health)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "feeds",
        help="check the feeds file, list each feed's health",
        description="The feeds newswatch polls (NEWSWATCH_FEEDS: a TOML file of [[feed]] tables or an OPML "
        "export).",
    )
    commands = parser.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check",
        help="validate a feeds file; errors name the line",
        description="Validate a feeds file (TOML or OPML). Exit 0 when it is usable, 2 with every problem "
        "listed as FILE:LINE: message.",
    )
    check.add_argument("file", nargs="?", type=Path, help="the feeds file (default: NEWSWATCH_FEEDS)")
    check.set_defaults(handler=check_command)
    listing = commands.add_parser(
        "list",
        help="each feed's health: last fetch, status, next poll, entries, errors",
        description="Each feed's health as recorded in Redis by the producer.",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per feed, one per line")
    listing.set_defaults(handler=list_command)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _feeds_path(given: Path | None) -> Path:
    from newswatch.cli.common import CommandError
    from newswatch.settings import SettingsError, load_settings

    if given is not None:
        return given
    try:
        configured = load_settings().feeds
    except SettingsError as error:
        raise CommandError(f"configuration: {error}") from None
    if configured is None:
        raise CommandError("no feeds file: give FILE or set NEWSWATCH_FEEDS")
    return Path(configured)


def check_command(args: argparse.Namespace) -> int:
    from newswatch.cli.common import CommandError
    from producer.feeds.feedlist import FeedListError, load_feeds

    try:
        path = _feeds_path(args.file)
        feeds = load_feeds(path)
    except CommandError as error:
        print(f"newswatch feeds check: {error}", file=sys.stderr)
        return 2
    except FeedListError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"newswatch feeds check: {len(error.problems)} problem(s) in {error.path}", file=sys.stderr)
        return 2
    full_text = sum(1 for feed in feeds if feed.full_text)
    print(f"{path}: {len(feeds)} feeds ok" + (f" ({full_text} with full_text)" if full_text else ""))
    return 0


def list_command(args: argparse.Namespace) -> int:
    from newswatch.cli.common import CommandError, load_configuration, open_connection
    from producer.feeds.feedlist import FeedListError, load_feeds
    from producer.feeds.health import known_feeds, read_health

    try:
        settings = load_configuration()
        urls: list[str] = []
        if settings.feeds is not None:
            try:
                urls = [feed.url for feed in load_feeds(Path(settings.feeds))]
            except FeedListError as error:
                print(
                    f"newswatch feeds list: {error.problems[0]} (see `newswatch feeds check`)",
                    file=sys.stderr,
                )
        connection = open_connection(settings)
        urls += [url for url in known_feeds(connection) if url not in urls]
        health = read_health(connection, urls)
    except CommandError as error:
        print(f"newswatch feeds list: {error}", file=sys.stderr)
        return 2
    if args.json:
        for state in health:
            print(json.dumps(state.to_json(), ensure_ascii=False))
        return 0
    _print_table(health, time.time())
    return 0


def _print_table(health: list[Any], now: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(health)} feeds", title_justify="left")
    for column in ("feed", "last fetch", "status", "next poll", "entries", "errors", "last error"):
        table.add_column(column, overflow="fold")
    for state in health:
        errors = str(state.consecutive_errors) if state.consecutive_errors else ""
        table.add_row(
            f"{state.title}\n{state.url}" if state.title else state.url,
            _ago(state.last_fetch, now),
            state.last_status or "never polled",
            _until(state.next_poll, now),
            str(state.entries_seen),
            f"[red]{errors}[/red]" if errors else "",
            state.last_error if state.consecutive_errors else "",
        )
    Console().print(table)


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _ago(moment: float | None, now: float) -> str:
    return "" if moment is None else f"{_span(now - moment)} ago"


def _until(moment: float | None, now: float) -> str:
    if moment is None:
        return "now"
    return "due now" if moment <= now else f"in {_span(moment - now)}"

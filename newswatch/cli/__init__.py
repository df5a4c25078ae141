"""The `newswatch` command line: one module per command, each adding its own sub-parser."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

# Each module defines add_parser(subparsers); heavy imports stay inside the handlers so that
# `newswatch --help` and `newswatch match` start fast.
COMMAND_MODULES = (
    "run",
    "producer",
    "worker",
    "enqueue",
    "match",
    "watchlist",
    "status",
    "alerts",
    "feeds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswatch",
        description="Monitor news feeds and folders against a watchlist of topics; alert on every match.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"newswatch.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"newswatch.cli.{name}":
                raise
            continue  # a command not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    # A SIGTERM (docker stop, kill) exits like Ctrl-C would, so atexit hooks run: the last process using
    # the embedded server stops it. RQ workers install their own handler for a warm shutdown.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

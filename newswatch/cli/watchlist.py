"""`newswatch watchlist check [FILE]`: validate a watchlist, compile it and run its topics' examples."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "watchlist",
        help="work with the watchlist (check)",
        description="Work with the watchlist of topics.",
    )
    commands = parser.add_subparsers(dest="watchlist_command", metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check",
        help="validate a watchlist and run its examples",
        description="Load, compile and check a watchlist: syntax, aliases, ids, and every topic's examples "
        "(texts that must match and must not). Each problem names the topic, line and column. Exit 0 when "
        "all is well, 2 on any problem.",
    )
    check.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="the watchlist (default: NEWSWATCH_WATCHLIST, else ./watchlist.toml)",
    )
    check.set_defaults(handler=check_command)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def check_command(args: argparse.Namespace) -> int:
    from newswatch.settings import SettingsError, load_settings

    path: Path | None = args.file
    if path is None:
        try:
            path = load_settings().watchlist
        except SettingsError as error:
            print(f"newswatch watchlist check: configuration: {error}", file=sys.stderr)
            return 2
    problems, topics, notes = check_watchlist(path)
    for note in notes:
        print(note, file=sys.stderr)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 2
    print(f"{topics} topic{'s' if topics != 1 else ''} OK")
    return 0


def check_watchlist(path: Path) -> tuple[list[str], int, list[str]]:
    """(problems, number of topics, notes): each problem starts with `file:line:column:` and names its
    topic; a note names a topic that is valid but costly (it keeps the gate open: see gate.py)."""
    from worker.core.matcher import Matcher, check_examples
    from worker.core.watchlist import WatchlistError, load_watchlist

    if not path.is_file():
        return [f"{path}: no such watchlist file"], 0, []
    try:
        watchlist = load_watchlist(path)
    except WatchlistError as error:
        return [str(problem) for problem in error.problems], 0, []
    matcher = Matcher(watchlist)
    failures = check_examples(watchlist, matcher)
    lines = path.read_text(encoding="utf-8").splitlines()
    problems = []
    for failure in failures:
        topic = watchlist.topic(failure.topic_id)
        line, column = _locate_example(lines, failure.example.text, after=topic.line)
        detail = "".join(f"\n    {row}" for row in failure.explanation.splitlines())
        problems.append(f"{path}:{line}:{column}: {failure}{detail}")
    from worker.core.gate import MIN_START, MIN_WORD, open_topics

    notes = []
    for index in open_topics(topic.tree for topic in watchlist.topics):
        topic = watchlist.topics[index]
        notes.append(
            f"{path}:{topic.line}: note: topic {topic.id!r} gives the gate no word of {MIN_START} or more"
            " letters to look for (short stemmed words such as UN or EU), so every article is prepared and"
            f' matched in full; an exact form of {MIN_WORD} or more letters ("UN") or a longer word lets'
            " the gate skip the articles that cannot match"
        )
    return problems, len(watchlist.topics), notes


def _locate_example(lines: list[str], text: str, after: int) -> tuple[int, int]:
    """Line and column (1-based) of an example's text in the file, searched from its topic's query on.

    The loader keeps no positions for examples; the text is found by its start, which TOML escapes
    rarely touch. Falls back to the topic's query line.
    """
    start = text[:40]
    for number in range(max(after, 1), len(lines) + 1):
        column = lines[number - 1].find(start)
        if column >= 0:
            return number, column + 1
    return max(after, 1), 1

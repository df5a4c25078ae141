"""`newswatch match PATH...`: extract and match files against the watchlist now, with no Redis (like grep)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newswatch.messages import Document
    from newswatch.settings import Settings
    from worker.core.extract import Extraction


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "match",
        help="match files against the watchlist now (no Redis)",
        description="Extract each file (text, Markdown, HTML, JSON; a folder means all its files, - reads "
        "standard input) and match it against the watchlist. Like grep, the exit status is 0 if anything "
        "matched, 1 if nothing did, 2 if the watchlist is invalid or an input could not be read (the "
        "other inputs are still matched).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a file, a folder, or - for standard input")
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per input on its own line: {"path", "article", "matches"}',
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show which clauses fired with which words, and for near misses which part was absent",
    )
    parser.add_argument(
        "--watchlist",
        type=Path,
        metavar="FILE",
        help="the watchlist to use (default: NEWSWATCH_WATCHLIST, else ./watchlist.toml)",
    )
    parser.set_defaults(handler=match_command)


class _Failure(Exception):
    """The command cannot run at all (configuration, watchlist): one line, exit 2."""


def match_command(args: argparse.Namespace) -> int:
    try:
        settings = _settings()
        matcher = load_matcher(args.watchlist or settings.watchlist)
    except _Failure as error:
        for line in str(error).splitlines():
            print(f"newswatch match: {line}", file=sys.stderr)
        return 2
    from newswatch.documents import InputError
    from worker.core.extract import ExtractionError, extract_with_report

    output = _Output(json_lines=args.json)
    matched = failed = False
    for name, read in _inputs(args.paths, settings):
        try:
            report = extract_with_report(read())
        except InputError as error:
            output.error(str(error))
            failed = True
            continue
        except ExtractionError as error:
            output.error(f"{name}: {error}")
            failed = True
            continue
        matches = matcher.match(report.article)
        matched = matched or bool(matches)
        explanations = matcher.explain(report.article) if args.explain else None
        output.result(name, report, matches, explanations)
    return 2 if failed else 0 if matched else 1


def load_matcher(path: Path) -> Any:
    """The compiled watchlist at `path`; _Failure naming the file and its problems when it is unusable."""
    from worker.core.matcher import Matcher
    from worker.core.watchlist import WatchlistError, load_watchlist

    if not path.is_file():
        hint = "" if path.exists() else " (pass --watchlist FILE or set NEWSWATCH_WATCHLIST)"
        raise _Failure(f"{path}: no such watchlist file{hint}")
    try:
        return Matcher(load_watchlist(path))
    except WatchlistError as error:  # one line per problem, each naming file, line, column and topic
        raise _Failure("\n".join(str(problem) for problem in error.problems)) from None


def _settings() -> Settings:
    from newswatch.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as error:
        raise _Failure(f"configuration: {error}") from None


def _inputs(paths: list[str], settings: Settings) -> Iterator[tuple[str, Any]]:
    """(name, read) for every input; `read()` gives its Document or raises InputError naming it."""
    from newswatch.documents import iter_paths, read_path, read_stdin

    for given in paths:
        if given == "-":

            def read_standard_input() -> Document:
                data = sys.stdin.buffer.read(settings.max_article_bytes + 1)
                return read_stdin(data, settings.max_article_bytes)

            yield "-", read_standard_input
            continue
        for path in iter_paths([given]):
            yield str(path), lambda path=path: read_path(path, settings.max_article_bytes)


class _Output:
    """Results as JSON lines, or for a human: rich styles on a terminal, plain text otherwise."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.console: Any = None
        if not json_lines and sys.stdout.isatty():
            from rich.console import Console

            self.console = Console(highlight=False, soft_wrap=True)

    def error(self, message: str) -> None:
        sys.stdout.flush()
        print(f"newswatch match: {message}", file=sys.stderr, flush=True)

    def result(
        self, name: str, report: Extraction, matches: list[Any], explanations: list[Any] | None
    ) -> None:
        if self.json_lines:
            self._json(name, report, matches, explanations)
            return
        if not matches and not explanations:
            return
        article = report.article
        self._line(f"{name} — {article.title or '(no title)'}", style="bold")
        for match in matches:
            self._line(f"  {match.topic_id}  {match.topic_name}  score {match.score:.2f}", style="cyan")
            if match.snippet:
                self._line(f"    “{match.snippet}”", style="italic")
        if explanations is not None:
            if report.note:
                self._line(f"  extraction: {report.method}: {report.note}", style="dim")
            for explanation in explanations:
                for line in explanation.render().splitlines():
                    self._line(f"  {line}", style="dim" if not matches else "")
        self._line("")

    def _line(self, text: str, style: str = "") -> None:
        if self.console is None:
            print(text)
        else:
            from rich.markup import escape

            self.console.print(f"[{style}]{escape(text)}[/]" if style else escape(text))

    def _json(
        self, name: str, report: Extraction, matches: list[Any], explanations: list[Any] | None
    ) -> None:
        article = report.article
        record: dict[str, Any] = {
            "path": name,
            "article": {
                "id": article.id,
                "title": article.title,
                "url": article.url,
                "published": article.published,
                "language": article.language,
                "source": article.source,
            },
            "matches": [match.to_json() for match in matches],
        }
        if explanations is not None:
            record["explain"] = [explanation.to_json() for explanation in explanations]
        print(json.dumps(record, ensure_ascii=False), flush=True)

"""The feeds file (NEWSWATCH_FEEDS): TOML [[feed]] tables or an OPML export; errors name the line."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Keys a [[feed]] table may have (anything else is a typo worth reporting).
FEED_KEYS = ("url", "interval", "full_text", "tags", "title")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")
_FEED_HEADER = re.compile(r"^\s*\[\[\s*feed\s*\]\]\s*(#.*)?$")


class FeedListError(ValueError):
    """The feeds file cannot be used; each problem reads `path:line: message`."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class FeedSpec:
    """One feed to poll, as the feeds file describes it."""

    url: str
    interval: int | None = None
    full_text: bool = False
    tags: tuple[str, ...] = ()
    title: str = ""
    line: int = 0


def load_feeds(path: Path) -> list[FeedSpec]:
    """The feeds of a TOML or OPML file; FeedListError lists every problem found, each with its line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FeedListError(path, [f"{path}: cannot read ({error.strerror or error})"]) from None
    if _looks_like_xml(path, data):
        return _load_opml(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FeedListError(
            path, [f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"]
        ) from None
    return parse_toml_feeds(text, path)


def parse_toml_feeds(text: str, path: Path = Path("<feeds>")) -> list[FeedSpec]:
    """The [[feed]] tables of a TOML text; see DESIGN.md for the keys."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = _TOML_LINE.search(message)
        where = found.group(1) if found else str(max(1, len(text.splitlines())))  # "at end of document"
        message = _TOML_LINE.sub("", message).replace("(at end of document)", "at end of file").strip()
        raise FeedListError(path, [f"{path}:{where}: {message}"]) from None
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines, 1) if _FEED_HEADER.match(line)]
    problems: list[str] = []
    for key in table:
        if key != "feed":
            problems.append(
                f"{path}:{_key_line(lines, key, 1, len(lines))}: unknown key {key!r} (expected [[feed]])"
            )
    raw_feeds = table.get("feed", [])
    if not isinstance(raw_feeds, list):
        problems.append(
            f"{path}:{_key_line(lines, 'feed', 1, len(lines))}: 'feed' must be a list of [[feed]] tables"
        )
        raw_feeds = []
    feeds: list[FeedSpec] = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(raw_feeds):
        start = headers[index] if index < len(headers) else 0
        end = headers[index + 1] - 1 if index + 1 < len(headers) else len(lines)
        feed, feed_problems = _feed_from_table(raw, lines, start, end)
        problems += [f"{path}:{line}: {message}" for line, message in feed_problems]
        if feed is None:
            continue
        if feed.url in first_line:
            problems.append(
                f"{path}:{feed.line}: duplicate feed {feed.url} (first at line {first_line[feed.url]})"
            )
            continue
        first_line[feed.url] = feed.line
        feeds.append(feed)
    if problems:
        raise FeedListError(path, problems)
    return feeds


def _feed_from_table(
    raw: Any, lines: list[str], start: int, end: int
) -> tuple[FeedSpec | None, list[tuple[int, str]]]:
    if not isinstance(raw, dict):
        return None, [(start, "a feed must be a table with a url")]
    problems: list[tuple[int, str]] = []

    def line_of(key: str) -> int:
        return _key_line(lines, key, start, end) or start

    for key in raw:
        if key not in FEED_KEYS:
            problems.append(
                (line_of(key), f"unknown key {key!r} in [[feed]] (known: {', '.join(FEED_KEYS)})")
            )
    url = raw.get("url")
    if url is None:
        problems.append((start, "[[feed]] has no url"))
    elif not isinstance(url, str) or (reason := url_problem(url)):
        problems.append(
            (line_of("url"), f"url {url!r}: {reason if isinstance(url, str) else 'must be a string'}")
        )
    interval = raw.get("interval")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
        problems.append(
            (line_of("interval"), f"interval must be a whole number of seconds ≥ 1, not {interval!r}")
        )
    full_text = raw.get("full_text", False)
    if not isinstance(full_text, bool):
        problems.append((line_of("full_text"), f"full_text must be true or false, not {full_text!r}"))
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag.strip() for tag in tags):
        problems.append((line_of("tags"), f"tags must be a list of non-empty strings, not {tags!r}"))
    title = raw.get("title", "")
    if not isinstance(title, str):
        problems.append((line_of("title"), f"title must be a string, not {title!r}"))
    if problems:
        return None, problems
    feed = FeedSpec(
        url=str(url).strip(),
        interval=interval,
        full_text=full_text,
        tags=tuple(tag.strip() for tag in tags),
        title=title,
        line=line_of("url"),
    )
    return feed, []


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a feed URL, or None."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


def _key_line(lines: list[str], key: str, start: int, end: int) -> int:
    pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
    for number in range(max(start, 1), min(end, len(lines)) + 1):
        if pattern.match(lines[number - 1]):
            return number
    return 0


def _looks_like_xml(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in (".opml", ".xml"):
        return True
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _load_opml(path: Path, data: bytes) -> list[FeedSpec]:
    """Feeds of an OPML subscription list, read with listparser; lines are found by the feed's URL."""
    import listparser

    from producer.feeds.parse import declares_entities

    if declares_entities(data):
        raise FeedListError(path, [f"{path}:1: refused: the document declares entities in a DOCTYPE"])
    result = listparser.parse(data)
    if not result.version:
        raise FeedListError(path, [f"{path}:1: not an OPML subscription list"])
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    problems: list[str] = []
    feeds: list[FeedSpec] = []
    seen: set[str] = set()
    for entry in result.feeds:
        url = str(entry.get("url", "")).strip()
        line = _line_containing(lines, url)
        reason = url_problem(url)
        if reason:
            problems.append(f"{path}:{line or '?'}: xmlUrl {url!r}: {reason}")
            continue
        if url in seen:
            continue  # the same subscription in two folders of the export
        seen.add(url)
        tags = tuple(dict.fromkeys(str(tag).strip() for tag in entry.get("tags", []) if str(tag).strip()))
        feeds.append(FeedSpec(url=url, tags=tags, title=str(entry.get("title", "")), line=line))
    if problems:
        raise FeedListError(path, problems)
    return feeds


def _line_containing(lines: list[str], url: str) -> int:
    escaped = url.replace("&", "&amp;")
    for number, line in enumerate(lines, 1):
        if url in line or escaped in line:
            return number
    return 0

"""Load and validate watchlist.toml: aliases and topics, every problem reported with its line and column.

The file:

    [aliases]
    nk = ["North Korean", "DPRK", "KPA", "Pyongyang's troops", "N. Korean"]
    kursk = ["Kursk", "Koursk", "Kurskaya", "Курск*"]

    [[topic]]
    id = "nk-troops-kursk"                      # required, unique
    name = "North Korean troops in Kursk"       # required
    query = '@nk NEAR/12 (@kursk) -"battle of kursk"'   # required, see worker/core/query/parser.py
    sinks = ["webhook"]                         # optional: where its alerts go (default: all sinks)
    min_score = 0.5                             # optional, 0..1: weaker matches are dropped (default 0)
    [topic.examples]                            # optional; checked by `newswatch watchlist check`
    match = ["North Korean troops fought in the Kursk region.",
             {title = "Pyongyang's soldiers", text = "They were seen near Sudzha in Kursk."}]
    no_match = ["The Battle of Kursk began in July 1943."]

An example is a body text, or a table with `text` and an optional `title`. Alias terms: one word is
stemmed, several words are an exact phrase, a trailing * makes a prefix, double quotes make it exact.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.core.bulk import paused_gc

try:  # a Rust TOML parser: 6x faster than tomllib (2.5 s saved on 100,000 topics); tomllib without it
    import rtoml
except ImportError:  # pragma: no cover
    rtoml = None  # type: ignore[assignment]
from worker.core.query import Node, QueryError, parse_alias_term, parse_query

TOPIC_KEYS = ("id", "name", "query", "sinks", "min_score", "examples")
EXAMPLE_KEYS = ("match", "no_match")
_ALIAS_NAME = re.compile(r"[^\s()\"~:@*]+")


@dataclass(frozen=True, slots=True)
class Example:
    """A text a topic must (or must not) match."""

    text: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    name: str
    query: str
    tree: Node
    sinks: tuple[str, ...] = ()
    min_score: float = 0.0
    examples_match: tuple[Example, ...] = ()
    examples_no_match: tuple[Example, ...] = ()
    line: int = 0  # line of the query in the watchlist file (0 if unknown)


@dataclass(frozen=True, slots=True)
class Watchlist:
    topics: tuple[Topic, ...]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    path: str = "<string>"

    def __len__(self) -> int:
        return len(self.topics)

    def __iter__(self) -> Iterator[Topic]:
        return iter(self.topics)

    def topic(self, topic_id: str) -> Topic:
        for topic in self.topics:
            if topic.id == topic_id:
                return topic
        raise KeyError(topic_id)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a watchlist file."""

    path: str
    line: int
    column: int
    message: str
    topic: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        about = f"topic {self.topic!r}: " if self.topic else ""
        return f"{where}: {about}{self.message}"


class WatchlistError(ValueError):
    """All problems of a watchlist file, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the watchlist"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


def load_watchlist(path: str | Path) -> Watchlist:
    """Read and validate a watchlist file. Raises WatchlistError (also when the file cannot be read)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise WatchlistError(
            [Problem(name, 0, 0, f"cannot read the file: {error.strerror or error}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise WatchlistError([Problem(name, line, 0, "the file is not valid UTF-8")]) from None
    return parse_watchlist(text, name)


def parse_watchlist(text: str, path: str = "<string>") -> Watchlist:
    """Validate a watchlist given as TOML text. Raises WatchlistError listing every problem."""
    with paused_gc():
        return _parse_watchlist(text, path)


def _loads(text: str) -> dict[str, Any]:
    """The TOML document as Python values. A document rtoml refuses is read again by tomllib: its
    errors are the ones reported (the same words and positions whether rtoml is installed or not)."""
    if rtoml is not None:
        try:
            return rtoml.loads(text)
        except rtoml.TomlParsingError:
            pass
    return tomllib.loads(text)


def _parse_watchlist(text: str, path: str) -> Watchlist:
    try:
        data = _loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        at = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line, column = (int(at.group(1)), int(at.group(2))) if at else (0, 0)
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        raise WatchlistError([Problem(path, line, column, f"TOML syntax: {message}")]) from None
    return _Validator(text, path).validate(data)


@dataclass
class _Table:
    line: int
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (line, column of the value)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=\s*""")


def _locate(text: str) -> tuple[list[_Table], _Table]:
    """Where each [[topic]] table and each key in it (and in [aliases]) sits in the raw text."""
    topics: list[_Table] = []
    aliases = _Table(0)
    current: _Table | None = None
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        stripped = line.lstrip()
        if not stripped or stripped[0] == "#":
            continue
        if stripped[0] == "[":
            header = _HEADER.match(line)
            name = header.group(1).strip() if header else ""
            if stripped.startswith("[[") and name == "topic":
                current = _Table(number)
                topics.append(current)
            elif name == "aliases":
                current = aliases
                aliases.line = number
            else:
                current = None  # another table, or a sub-table of a topic (examples): not topic keys
            continue
        key = _KEY.match(line)
        if key:
            rest = line[key.end() :]
            if current is not None:
                name = key.group(1).strip("\"'")
                if name not in current.keys:
                    current.keys[name] = (number, key.end() + 1)
            if rest[:3] in ('"""', "'''") and rest.count(rest[:3]) == 1:
                in_multiline = rest[:3]
    return topics, aliases


def _query_position(text: str, value_at: tuple[int, int], offset: int) -> tuple[int, int]:
    """File line and column of character `offset` of the query string whose value starts at `value_at`."""
    line, column = value_at
    lines = text.splitlines()
    raw = lines[line - 1][column - 1 :] if 0 < line <= len(lines) else ""
    for quote in ('"""', "'''"):
        if raw.startswith(quote):
            after = raw[3:]
            if not after.strip():  # a newline right after the opening quotes is not part of the string
                line, start_column, body_lines = line + 1, 1, lines[line:]
            else:
                start_column, body_lines = column + 3, [after, *lines[line:]]
            # Walk the string's text line by line (escapes are rare in queries and not undone).
            remaining = offset
            for i, body in enumerate(body_lines):
                width = len(body)
                if remaining <= width:
                    return line + i, (start_column if i == 0 else 1) + remaining
                remaining -= width + 1
            return line, start_column
    return line, column + 1 + offset


class _Validator:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.problems: list[Problem] = []
        self.topic_tables, self.alias_table = _locate(text)
        self.trees: dict[str, Node] = {}  # each distinct query string is parsed once
        self.shared: dict[Any, Any] = {}  # equal terms and words of different queries: one object

    def problem(self, line: int, column: int, message: str, topic: str | None = None) -> None:
        self.problems.append(Problem(self.path, line, column, message, topic))

    def validate(self, data: dict[str, Any]) -> Watchlist:
        for key in data:
            if key not in ("aliases", "topic"):
                self.problem(
                    1, 1, f"unknown top-level key or table {key!r} (expected [aliases] and [[topic]])"
                )
        aliases = self.aliases(data.get("aliases", {}))
        raw_topics = data.get("topic", [])
        if not isinstance(raw_topics, list):
            self.problem(1, 1, "topic must be an array of tables: write [[topic]]")
            raw_topics = []
        topics: list[Topic] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_topics):
            table = self.topic_tables[index] if index < len(self.topic_tables) else _Table(0)
            topic = self.topic(index, raw, table, aliases, seen)
            if topic is not None:
                topics.append(topic)
        if self.problems:
            raise WatchlistError(self.problems)
        return Watchlist(tuple(topics), aliases, self.path)

    def aliases(self, raw: Any) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        table = self.alias_table
        if not isinstance(raw, dict):
            self.problem(table.line, 1, "[aliases] must be a table of name = [terms]")
            return out
        for name, terms in raw.items():
            line, column = table.keys.get(name, (table.line, 1))
            if not _ALIAS_NAME.fullmatch(name):
                self.problem(line, 1, f'alias name {name!r} must not contain spaces or ( ) " ~ : @ *')
                continue
            if isinstance(terms, str):
                terms = [terms]
            if not isinstance(terms, list) or not terms or not all(isinstance(t, str) for t in terms):
                self.problem(line, column, f"alias {name!r} must be a non-empty list of strings")
                continue
            for term in terms:
                try:
                    parse_alias_term(term, name)
                except QueryError as error:
                    self.problem(line, column, error.message)
            out[name] = tuple(terms)
        return out

    def topic(
        self,
        index: int,
        raw: Any,
        table: _Table,
        aliases: Mapping[str, tuple[str, ...]],
        seen: dict[str, int],
    ) -> Topic | None:
        def at(key: str) -> tuple[int, int]:
            return table.keys.get(key, (table.line, 1))

        if not isinstance(raw, dict):
            self.problem(table.line, 1, f"topic #{index + 1} must be a table")
            return None
        topic_id = raw.get("id")
        label = topic_id if isinstance(topic_id, str) and topic_id else f"#{index + 1}"
        ok = True
        for key in raw:
            if key not in TOPIC_KEYS:
                self.problem(
                    *at(key), f"unknown key {key!r} (expected one of {', '.join(TOPIC_KEYS)})", label
                )
        if not isinstance(topic_id, str) or not topic_id.strip():
            self.problem(
                *at("id"),
                "missing id (a non-empty string)" if topic_id is None else "id must be a non-empty string",
                label,
            )
            ok = False
        elif topic_id in seen:
            self.problem(
                *at("id"), f"duplicate id {topic_id!r} (first defined at line {seen[topic_id]})", label
            )
            ok = False
        else:
            seen[topic_id] = at("id")[0]
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(
                *at("name"),
                "missing name (a non-empty string)" if name is None else "name must be a non-empty string",
                label,
            )
            ok = False
        query = raw.get("query")
        tree: Node | None = None
        if not isinstance(query, str):
            self.problem(
                *at("query"), "missing query (a string)" if query is None else "query must be a string", label
            )
            ok = False
        else:
            try:
                tree = self.trees.get(query)
                if tree is None:
                    tree = self.trees[query] = parse_query(query, aliases, self.shared)
            except QueryError as error:
                if "query" in table.keys:
                    line, column = _query_position(self.text, table.keys["query"], error.offset)
                else:
                    line, column = table.line, 1
                self.problem(line, column, error.message, label)
                ok = False
        sinks = raw.get("sinks", [])
        if not isinstance(sinks, list) or not all(isinstance(s, str) and s for s in sinks):
            self.problem(*at("sinks"), "sinks must be a list of sink names (strings)", label)
            ok = False
        min_score = raw.get("min_score", 0.0)
        if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 <= min_score <= 1:
            self.problem(*at("min_score"), "min_score must be a number from 0 to 1", label)
            ok = False
        examples = self.examples(raw.get("examples", {}), at("examples"), label)
        if not ok or tree is None or examples is None:
            return None
        assert isinstance(topic_id, str) and isinstance(name, str) and isinstance(query, str)
        return Topic(
            id=topic_id,
            name=name,
            query=query,
            tree=tree,
            sinks=tuple(sinks),
            min_score=float(min_score),
            examples_match=examples[0],
            examples_no_match=examples[1],
            line=table.keys.get("query", (0, 0))[0],
        )

    def examples(
        self, raw: Any, where: tuple[int, int], label: str
    ) -> tuple[tuple[Example, ...], tuple[Example, ...]] | None:
        if not isinstance(raw, dict):
            self.problem(*where, "examples must be a table with match = [...] and no_match = [...]", label)
            return None
        for key in raw:
            if key not in EXAMPLE_KEYS:
                self.problem(*where, f"unknown key {key!r} in examples (expected match, no_match)", label)
                return None
        out: list[tuple[Example, ...]] = []
        for key in EXAMPLE_KEYS:
            items = raw.get(key, [])
            parsed: list[Example] = []
            if not isinstance(items, list):
                self.problem(*where, f"examples.{key} must be a list", label)
                return None
            for item in items:
                if isinstance(item, str):
                    parsed.append(Example(item))
                elif (
                    isinstance(item, dict)
                    and isinstance(item.get("text", ""), str)
                    and isinstance(item.get("title", ""), str)
                    and set(item) <= {"text", "title"}
                ):
                    parsed.append(Example(item.get("text", ""), item.get("title", "")))
                else:
                    self.problem(
                        *where, f"examples.{key}: each example is a string or {{title, text}}", label
                    )
                    return None
            out.append(tuple(parsed))
        return out[0], out[1]

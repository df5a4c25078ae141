"""Corpus tier: every feed of ../shared/corpora/feeds parses with no unhandled error (skipped if absent)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from producer.feeds.entries import feed_documents
from producer.feeds.feedlist import FeedSpec
from producer.feeds.parse import FeedParseError, parse_feed

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora" / "feeds"
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpora is absent"),
]
FETCHED = datetime(2025, 1, 1, tzinfo=UTC)
#: Files in the corpus that are not feeds: the web pages used for autodiscovery, subscription lists,
#: an RSS-as-JSON document and a truncated file.
NOT_FEEDS = {".html", ".opml"}


def corpus_files() -> list[Path]:
    return sorted(
        path
        for path in CORPUS.rglob("*")
        if path.is_file() and path.name != "LICENSE" and "output" not in path.relative_to(CORPUS).parts
    )


def test_every_corpus_feed_parses_without_an_unhandled_error() -> None:
    files = corpus_files()
    outcomes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    documents = 0
    real_feeds_refused = []
    started = time.monotonic()
    for path in files:
        url = "https://corpus.example.org/" + path.relative_to(CORPUS).as_posix()
        try:
            feed = parse_feed(path.read_bytes(), url)
        except FeedParseError as error:
            outcomes["refused"] += 1
            refusals[error.reason.split("(")[0].strip()] += 1
            if "real" in path.parts and path.suffix not in NOT_FEEDS:
                real_feeds_refused.append(f"{path.name}: {error.reason}")
            continue
        made = feed_documents(feed, FeedSpec(url), FETCHED)
        documents += len(made)
        outcomes["with entries" if made else "without entries"] += 1
        assert all(document.body or document.title for document in made)
    elapsed = time.monotonic() - started
    print(
        f"\nfeeds corpus: {len(files)} files in {elapsed:.1f} s; {outcomes['with entries']} gave entries "
        f"({documents} documents), {outcomes['without entries']} parsed without entries, "
        f"{outcomes['refused']} refused: {dict(refusals)}"
    )
    assert sum(outcomes.values()) == len(files)
    # Of the real captures, only these are not feeds: RSS converted to JSON, a truncated JSON Feed and
    # a "Document Moved" HTML page with an <rss> tail.
    unreadable = {"ScriptingNews.json", "allthis-partial.json", "unrecognized.rss"}
    assert {line.split(":")[0] for line in real_feeds_refused} <= unreadable, real_feeds_refused


def test_real_feeds_give_the_entries_another_library_found() -> None:
    """rss-parser's recorded output (item count and titles) for the same 31 captured feeds."""
    folder = CORPUS / "real" / "rss-parser"
    compared = 0
    for expected_file in sorted((folder / "output").glob("*.json")):
        inputs = [p for p in (folder / "input").glob(expected_file.stem + ".*")]
        raw = expected_file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")  # one recorded output was saved in Latin-1
        expected = json.loads(text).get("feed", {})
        if len(inputs) != 1 or "items" not in expected:
            continue
        try:
            feed = parse_feed(inputs[0].read_bytes(), "https://corpus.example.org/" + inputs[0].name)
        except FeedParseError:
            continue  # e.g. "unrecognized.rss", which rss-parser reads differently
        # ASCII letters and digits only: rss-parser turned some non-UTF-8 titles into U+FFFD.
        titles = [_ascii_words(entry.title) for entry in feed.entries]
        want = [_ascii_words(str(item.get("title", ""))) for item in expected["items"]]
        assert len(titles) == len(want), inputs[0].name
        assert sum(1 for a, b in zip(titles, want, strict=True) if a == b) >= 0.8 * len(want), inputs[0].name
        compared += 1
    print(f"\nrss-parser outputs compared: {compared}")
    assert compared >= 20


def _ascii_words(text: str) -> str:
    return "".join(char for char in text if char.isascii() and char.isalnum())

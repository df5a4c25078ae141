"""Feed entries to article Documents: fullest text as plain text, canonical link, UTC date, source."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from courlan import normalize_url
from lxml import etree
from lxml import html as lxml_html

from newswatch.messages import Document, Source
from producer.feeds.feedlist import FeedSpec
from producer.feeds.parse import Content, ParsedFeed, RawEntry

#: A date this far ahead of the fetch time is a feed's mistake, not a scheduled article.
FUTURE_TOLERANCE = timedelta(minutes=10)
#: Texts shorter than this many words are teasers ("Read more", "Comments"), often identical across entries;
#: the title goes in front so that two different stories never share a content hash.
TEASER_WORDS = 30

_BLOCK_TAGS = frozenset(
    (
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "main", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "figure", "figcaption", "dd", "dt", "dl",
        "hr", "aside", "nav", "address", "details", "summary", "caption",
    )
)  # fmt: skip
_SKIP_TAGS = frozenset(["script", "style", "noscript", "template", "svg", "iframe", "object", "head", "math"])
_TAGS = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(?:\n\s*)*")


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML fragment: blocks become lines, scripts and styles vanish."""
    if "<" not in markup and "&" not in markup:
        return normalise_text(markup)
    markup = _CONTROL.sub("", markup)
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return _strip_tags(markup)
    parts: list[str] = []
    # Depth-first walk with an explicit stack (deeply nested markup cannot hit the recursion limit); a str
    # on the stack is text to emit once the elements above it are done (a closing newline, a tail).
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        tag = item.tag if isinstance(item.tag, str) else None  # comments and PIs have no str tag
        if tag is None or tag in _SKIP_TAGS:
            if item.tail:
                parts.append(item.tail)
            continue
        block = tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if item.text:
            parts.append(item.text)
        if item.tail and item is not root:
            stack.append(item.tail)
        if block:
            stack.append("\n")
        stack.extend(reversed(item))
    text = normalise_text("".join(parts))
    # libxml2 gives up on absurdly nested markup (depth > 256) and returns nothing: fall back to a strip.
    return text or _strip_tags(markup)


def _strip_tags(markup: str) -> str:
    return normalise_text(html_unescape(_TAGS.sub(" ", markup)))


def normalise_text(text: str) -> str:
    """Spaces collapsed within lines, at most one blank line in a row, stripped."""
    lines = (
        _SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def canonical_url(url: str, base: str = "") -> str:
    """The absolute, canonical form of a link: fragment and tracking parameters gone, query sorted.

    Returns "" for a link that is not http(s) (mailto:, javascript:, a bare tag: id).
    """
    url = url.strip()
    if not url:
        return ""
    if base:
        try:
            url = urljoin(base, url)
        except ValueError:
            return ""
    url = urldefrag(url)[0]
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    try:
        return normalize_url(url, strict=False)
    except (ValueError, UnicodeError):
        return url


def fullest_text(entry: RawEntry) -> str:
    """The longest of the entry's contents and summary (usually content:encoded / Atom content), as text."""
    candidates: list[Content] = list(entry.contents)
    if entry.summary is not None:
        candidates.append(entry.summary)
    if not candidates:
        return ""
    best = max(candidates, key=lambda content: len(content.value))
    return html_to_text(best.value) if best.is_html else normalise_text(best.value)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_to_document(
    entry: RawEntry, feed: ParsedFeed, spec: FeedSpec, fetched_at: datetime
) -> Document | None:
    """The Document of one entry, or None when it has neither text nor title."""
    title = html_to_text(entry.title) if entry.title_is_html else normalise_text(entry.title)
    title = " ".join(title.split())
    text = fullest_text(entry)
    if not text and not title:
        return None
    if len(text.split()) < TEASER_WORDS and title and title not in text:
        text = f"{title}\n\n{text}".strip()
    link = canonical_url(entry.link, feed.base_url) or canonical_url(entry.id, feed.base_url)
    published, is_fallback = entry.published, False
    if published is None or published > fetched_at + FUTURE_TOLERANCE:
        published, is_fallback = fetched_at, True
    language = entry.language or feed.language
    return Document(
        url=link,
        format="text",
        body=text,
        source=Source(
            kind="feed",
            name=feed.title or spec.title or (urlsplit(spec.url).hostname or spec.url),
            url=spec.url,
            tags=spec.tags,
        ),
        title=title,
        published=utc_iso(published),
        published_is_fallback=is_fallback,
        author=" ".join(entry.author.split()),
        language=_primary_language(language),
        full_text=spec.full_text,
    )


def feed_documents(feed: ParsedFeed, spec: FeedSpec, fetched_at: datetime) -> list[Document]:
    """Documents of every usable entry of a parsed feed, in feed order."""
    documents = []
    for entry in feed.entries:
        document = entry_to_document(entry, feed, spec, fetched_at)
        if document is not None:
            documents.append(document)
    return documents


def _primary_language(tag: str | None) -> str | None:
    """ "en-GB" -> "en": the language part of a tag, lower case (what the worker's stemmers are keyed by)."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None

"""Parse feed bytes (RSS 0.9x/1.0/2.0, Atom 0.3/1.0 via feedparser; JSON Feed via json) into plain entries.

feedparser only ever gets bytes (given a string it would fetch URLs or open files itself), already turned
into UTF-8 so that the refusal of entity-declaring DOCTYPEs sees exactly what feedparser will parse: a
quadratic entity expansion in a 150 KB feed makes feedparser's loose parser take gigabytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.encodings import convert_to_utf8

from newswatch.http.charset import guess_legacy_encoding

_DOCTYPE = re.compile(rb"<!doctype", re.IGNORECASE)
_ENTITY = re.compile(rb"<!entity", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")
_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/")
#: feedparser's last-resort guesses when neither HTTP nor the document names an encoding and UTF-8 fails.
_FALLBACK_ENCODINGS = ("windows-1252", "iso-8859-2")


class FeedParseError(ValueError):
    """The bytes are not a feed we can read (or were refused); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Content:
    """One piece of an entry's text as the feed gives it."""

    value: str
    is_html: bool


@dataclass(frozen=True)
class RawEntry:
    """An entry as the feed states it (links already absolute where feedparser resolved them)."""

    title: str = ""
    title_is_html: bool = False
    link: str = ""
    id: str = ""
    contents: tuple[Content, ...] = ()
    summary: Content | None = None
    published: datetime | None = None
    author: str = ""
    language: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's metadata and entries. `problem` describes recovered ill-formedness (feedparser's bozo)."""

    kind: str
    base_url: str
    title: str = ""
    link: str = ""
    language: str | None = None
    ttl: int | None = None
    entries: list[RawEntry] = field(default_factory=list)
    problem: str | None = None
    encoding: str | None = None


def declares_entities(data: bytes) -> bool:
    """True when a DOCTYPE comes with ENTITY declarations (what entity-expansion bombs need)."""
    doctype = _DOCTYPE.search(data)
    return doctype is not None and _ENTITY.search(data, doctype.start()) is not None


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.endswith("json"):
        return True
    return body[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def parse_feed(
    body: bytes, base_url: str, content_type: str | None = None, content_language: str | None = None
) -> ParsedFeed:
    """Parse fetched feed bytes; `base_url` (the final URL) resolves relative links. FeedParseError."""
    if not body.strip():
        raise FeedParseError("empty document")
    if looks_like_json(body, content_type):
        return parse_json_feed(body, base_url)
    return parse_xml_feed(body, base_url, content_type, content_language)


def xml_to_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None, str | None]:
    """UTF-8 bytes of an XML feed as feedparser would decode it: (data, encoding, problem).

    Where nothing names the encoding and feedparser would fall back to windows-1252 (so that, say, a
    Windows-1251 feed served without a charset turns into mojibake), charset-normalizer's guess is used.
    """
    headers = {"content-type": content_type} if content_type else {}
    result: dict[str, Any] = {}
    data = convert_to_utf8(headers, body, result)
    encoding = result.get("encoding") or None
    problem = str(result["bozo_exception"]) if result.get("bozo") else None
    if encoding in _FALLBACK_ENCODINGS and not _declared_encoding(body, content_type):
        guessed = guess_legacy_encoding(body)
        if guessed and guessed != encoding:
            text = body.decode(guessed, "replace")
            declaration = b"<?xml version='1.0' encoding='utf-8'?>"
            utf8 = text.encode("utf-8")
            data = (
                _XML_DECLARATION.sub(declaration, utf8, count=1)
                if _XML_DECLARATION.match(utf8)
                else declaration + b"\n" + utf8
            )
            encoding, problem = guessed, f"no declared encoding; guessed {guessed}"
    return data, encoding, problem


def parse_xml_feed(
    body: bytes, base_url: str, content_type: str | None = None, content_language: str | None = None
) -> ParsedFeed:
    data, encoding, problem = xml_to_utf8(body, content_type)
    if declares_entities(data):
        raise FeedParseError("refused: the document declares entities in a DOCTYPE")
    headers = {"content-type": "application/xml; charset=utf-8", "content-location": base_url}
    if content_language:
        headers["content-language"] = content_language
    # Sanitising and rewriting links inside the HTML would be wasted: the HTML is turned into text.
    result = feedparser.parse(
        data, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if result.get("bozo"):
        problem = problem or f"{type(result.bozo_exception).__name__}: {result.bozo_exception}"
    if not result.get("version") and not result.entries:
        raise FeedParseError(f"not a feed ({problem or 'no RSS, Atom or JSON Feed root element'})")
    info = result.feed
    return ParsedFeed(
        kind=result.get("version") or "unknown",
        base_url=base_url,
        title=_clean(info.get("title", "")),
        link=info.get("link", ""),
        language=info.get("language") or content_language or None,
        ttl=_ttl_seconds(info.get("ttl")),
        entries=[_entry_from_feedparser(entry) for entry in result.entries],
        problem=problem,
        encoding=encoding,
    )


def _entry_from_feedparser(entry: Any) -> RawEntry:
    title_detail = entry.get("title_detail") or {}
    summary_detail = entry.get("summary_detail") or {}
    summary = entry.get("summary")
    contents = tuple(
        Content(value=item.get("value", ""), is_html=_is_html(item.get("type")))
        for item in entry.get("content", [])
        if item.get("value")
    )
    language = title_detail.get("language") or summary_detail.get("language")
    for item in entry.get("content", []):
        language = language or item.get("language")
    author_detail = entry.get("author_detail") or {}
    link = entry.get("link") or ""
    identifier = entry.get("id") or ""
    if not link and entry.get("guidislink") and identifier:
        link = identifier
    return RawEntry(
        title=entry.get("title", ""),
        title_is_html=_is_html(title_detail.get("type")),
        link=link,
        id=identifier,
        contents=contents,
        summary=Content(summary, _is_html(summary_detail.get("type", "text/html"))) if summary else None,
        # dict.get: FeedParserDict.get would map missing keys onto others (with a DeprecationWarning).
        published=_struct_to_datetime(
            dict.get(entry, "published_parsed")
            or dict.get(entry, "updated_parsed")
            or dict.get(entry, "created_parsed")
        ),
        author=author_detail.get("name") or entry.get("author") or "",
        language=language or None,
    )


def parse_json_feed(body: bytes, base_url: str) -> ParsedFeed:
    """A JSON Feed 1.0/1.1 document (feedparser 6 does not read JSON Feed)."""
    try:
        document = json.loads(body, strict=False)  # control characters inside strings are common
    except (ValueError, RecursionError) as error:
        raise FeedParseError(f"not valid JSON ({str(error)[:120]})") from None
    if not isinstance(document, dict):
        raise FeedParseError("not a JSON Feed (not a JSON object)")
    version = str(document.get("version", ""))
    items = document.get("items")
    if not isinstance(items, list) or not (_JSON_FEED_VERSION.match(version) or "feed_url" in document):
        raise FeedParseError("not a JSON Feed (no jsonfeed.org 'version' and 'items' list)")
    language = _string(document.get("language")) or None
    entries = [_entry_from_json(item, language) for item in items if isinstance(item, dict)]
    return ParsedFeed(
        kind="json" + (_JSON_FEED_VERSION.sub("", version) or "1"),
        base_url=base_url,
        title=_clean(_string(document.get("title"))),
        link=_string(document.get("home_page_url")),
        language=language,
        entries=entries,
        encoding="utf-8",
    )


def _entry_from_json(item: dict[str, Any], feed_language: str | None) -> RawEntry:
    contents = []
    if _string(item.get("content_html")):
        contents.append(Content(_string(item["content_html"]), True))
    if _string(item.get("content_text")):
        contents.append(Content(_string(item["content_text"]), False))
    summary = _string(item.get("summary"))
    authors: list[Any] = item["authors"] if isinstance(item.get("authors"), list) else [item.get("author")]
    names = [_string(a.get("name")) for a in authors if isinstance(a, dict) and _string(a.get("name"))]
    return RawEntry(
        title=_string(item.get("title")),
        link=_string(item.get("url")) or _string(item.get("external_url")),
        id=_string(item.get("id")),
        contents=tuple(contents),
        summary=Content(summary, False) if summary else None,
        published=_parse_date(_string(item.get("date_published")) or _string(item.get("date_modified"))),
        author=", ".join(names),
        language=_string(item.get("language")) or feed_language,
    )


def _parse_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _struct_to_datetime(feedparser_date(text))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _struct_to_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _ttl_seconds(value: Any) -> int | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60 if minutes > 0 else None


def _declared_encoding(body: bytes, content_type: str | None) -> bool:
    if content_type and "charset=" in content_type.lower():
        return True
    if (
        body[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
        or body[:3] == b"\xef\xbb\xbf"
        or body[:2]
        in (
            b"\xfe\xff",
            b"\xff\xfe",
        )
    ):
        return True
    return _XML_ENCODING.match(body[:512]) is not None


def _is_html(kind: str | None) -> bool:
    return bool(kind) and ("html" in str(kind))


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _clean(text: str) -> str:
    return " ".join(text.split())

"""Fetch an article's web page for extraction (full_text feeds, `newswatch enqueue URL`) with newswatch.http.

A thin shell: the same guard, timeouts and size cap as every outbound request; the HTML is decoded to text
here and handed to worker.core.extract. On PageFetchError the caller falls back to the feed's own text.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from newswatch.http import Fetcher, FetchError
from newswatch.http.charset import guess_legacy_encoding
from newswatch.settings import Settings

#: Whole fetch of one page, redirects included.
PAGE_DEADLINE = 30.0
ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
HTML_TYPES = ("text/html", "application/xhtml+xml", "")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


class PageFetchError(Exception):
    """The page could not be fetched or is not HTML; `reason` says why in words."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Page:
    """A fetched HTML page: the final URL (after redirects) and its decoded markup."""

    url: str
    html: str
    status: int


def fetch_page(url: str, settings: Settings, *, fetcher: Fetcher | None = None) -> Page:
    """GET `url` and return its HTML; PageFetchError for refused, failed, non-2xx or non-HTML responses."""
    own = fetcher is None
    client = fetcher or Fetcher.from_settings(settings, deadline=PAGE_DEADLINE)
    try:
        result = client.get(url, {"Accept": ACCEPT})
    except FetchError as error:
        raise PageFetchError(url, error.reason) from None
    finally:
        if own:
            client.close()
    if not 200 <= result.status < 300:
        raise PageFetchError(url, f"HTTP {result.status}")
    if result.content_type not in HTML_TYPES:
        raise PageFetchError(url, f"not an HTML page ({result.content_type})")
    return Page(url=result.url, html=decode_html(result.body, result.charset), status=result.status)


def decode_html(body: bytes, declared: str | None = None) -> str:
    """Text of an HTML body: BOM, then the HTTP charset, then <meta charset>, then UTF-8, then a guess."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if body.startswith(bom):
            return body.decode(name, "replace").lstrip("\ufeff")
    meta = _META_CHARSET.search(body[:4096])
    for candidate in (declared, meta.group(1).decode("ascii") if meta else None):
        if candidate and _known(candidate):
            return body.decode(candidate, "replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return body.decode(guess_legacy_encoding(body) or "cp1252", "replace")


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True

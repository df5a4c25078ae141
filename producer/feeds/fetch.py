"""Conditional GET of a feed: send the ETag/Last-Modified kept in Redis, so an unchanged feed costs a 304."""

from __future__ import annotations

from newswatch.http import Fetcher, FetchResult
from producer.feeds.health import FeedHealth

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


def conditional_headers(health: FeedHealth) -> dict[str, str]:
    """Request headers for a feed: Accept, and the validators of its last successful poll."""
    headers = {"Accept": ACCEPT}
    if health.etag:
        headers["If-None-Match"] = health.etag
    if health.last_modified:
        headers["If-Modified-Since"] = health.last_modified
    return headers


def fetch_feed(fetcher: Fetcher, health: FeedHealth) -> FetchResult:
    """GET the feed with its validators; a 304 comes back with an empty body (nothing to parse)."""
    return fetcher.get(health.url, conditional_headers(health))


def validators(result: FetchResult) -> dict[str, str]:
    """The validators to send next time: those of a 200, or the old ones refreshed by a 304's headers."""
    found = {}
    if result.headers.get("etag"):
        found["etag"] = result.headers["etag"]
    if result.headers.get("last-modified"):
        found["last_modified"] = result.headers["last-modified"]
    return found

"""Per-feed state in Redis: health (last fetch, status, next poll, entries, errors) and HTTP validators.

One HASH per feed, `newswatch:feed:<sha256(url)[:20]>`, so a restarted producer keeps its schedule and
its ETag/Last-Modified; the SET `newswatch:feeds` lists every feed ever polled (for `status` and
`feeds list` without the feeds file). Besides the errors in a row (reset by a poll that works), each feed
counts its polls and its failed polls since it was first polled: the Prometheus counters of fetch errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from newswatch.queues import KEY_PREFIX

FEEDS_INDEX = KEY_PREFIX + "feeds"


def feed_key(url: str) -> str:
    """HASH of one feed's health and validators."""
    return f"{KEY_PREFIX}feed:{hashlib.sha256(url.encode('utf-8')).hexdigest()[:20]}"


def lease_key(url: str) -> str:
    """STRING held (SET NX PX) by the producer polling the feed right now."""
    return feed_key(url) + ":lease"


@dataclass
class FeedHealth:
    """What Redis knows about one feed. Times are epoch seconds; None where the feed was never polled."""

    url: str
    title: str = ""
    last_fetch: float | None = None
    last_status: str = ""
    next_poll: float | None = None
    next_reason: str = ""
    entries_seen: int = 0
    last_entries: int = 0
    consecutive_errors: int = 0
    polls: int = 0  # every poll ever made, failed or not
    errors: int = 0  # every failed poll ever made (never reset)
    last_error: str = ""
    last_error_at: float | None = None
    entries_per_day: float | None = None
    etag: str = ""
    last_modified: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, b"", "") else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _health(url: str, raw: Mapping[Any, Any]) -> FeedHealth:
    fields = {_text(key): value for key, value in raw.items()}
    return FeedHealth(
        url=url,
        title=_text(fields.get("title")),
        last_fetch=_float(fields.get("last_fetch")),
        last_status=_text(fields.get("last_status")),
        next_poll=_float(fields.get("next_poll")),
        next_reason=_text(fields.get("next_reason")),
        entries_seen=int(_float(fields.get("entries_seen")) or 0),
        last_entries=int(_float(fields.get("last_entries")) or 0),
        consecutive_errors=int(_float(fields.get("consecutive_errors")) or 0),
        polls=int(_float(fields.get("polls")) or 0),
        errors=int(_float(fields.get("errors")) or 0),
        last_error=_text(fields.get("last_error")),
        last_error_at=_float(fields.get("last_error_at")),
        entries_per_day=_float(fields.get("entries_per_day")),
        etag=_text(fields.get("etag")),
        last_modified=_text(fields.get("last_modified")),
    )


def read_health(connection: redis.Redis, urls: Sequence[str]) -> list[FeedHealth]:
    """Health of each feed, in the order given (one round trip)."""
    with connection.pipeline(transaction=False) as pipe:
        for url in urls:
            pipe.hgetall(feed_key(url))
        raws = pipe.execute()
    return [_health(url, raw or {}) for url, raw in zip(urls, raws, strict=True)]


def known_feeds(connection: redis.Redis) -> list[str]:
    """Every feed URL polled so far, sorted."""
    members: Any = connection.smembers(FEEDS_INDEX)
    return sorted(_text(url) for url in members)


def all_health(connection: redis.Redis) -> list[FeedHealth]:
    """Health of every feed polled so far (what `newswatch status` shows)."""
    return read_health(connection, known_feeds(connection))


def record_success(
    connection: redis.Redis,
    url: str,
    *,
    at: float,
    status: int,
    next_poll: float,
    next_reason: str,
    new_entries: int = 0,
    entries: int | None = None,
    title: str | None = None,
    entries_per_day: float | None = None,
    validators: Mapping[str, str] | None = None,
) -> None:
    """A poll that worked (200 parsed and enqueued, or 304): errors reset, validators kept for next time."""
    key = feed_key(url)
    mapping: dict[Any, Any] = {
        "url": url,
        "last_fetch": at,
        "last_status": str(status),
        "next_poll": next_poll,
        "next_reason": next_reason,
        "consecutive_errors": 0,
    }
    if entries is not None:
        mapping["last_entries"] = entries
    if title:
        mapping["title"] = title
    if entries_per_day is not None:
        mapping["entries_per_day"] = entries_per_day
    for name, value in (validators or {}).items():
        mapping[name] = value
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=mapping)
        for name in ("etag", "last_modified"):
            if validators is not None and name not in validators:
                pipe.hdel(key, name)  # the server stopped sending it: do not send a stale one back
        if new_entries:
            pipe.hincrby(key, "entries_seen", new_entries)
        pipe.hincrby(key, "polls", 1)
        pipe.sadd(FEEDS_INDEX, url)
        pipe.execute()


def record_failure(
    connection: redis.Redis,
    url: str,
    *,
    at: float,
    status: int | None,
    reason: str,
    consecutive_errors: int,
    next_poll: float,
    next_reason: str,
) -> None:
    """A poll that failed: counted, its reason kept, the next poll pushed back (validators untouched)."""
    key = feed_key(url)
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "url": url,
                "last_fetch": at,
                "last_status": str(status) if status else "error",
                "next_poll": next_poll,
                "next_reason": next_reason,
                "consecutive_errors": consecutive_errors,
                "last_error": reason[:500],
                "last_error_at": at,
            },
        )
        pipe.hincrby(key, "polls", 1)
        pipe.hincrby(key, "errors", 1)
        pipe.sadd(FEEDS_INDEX, url)
        pipe.execute()


def next_poll_times(connection: redis.Redis, urls: Iterable[str]) -> dict[str, float | None]:
    """Each feed's next poll time (None: never polled, so due now), in one round trip."""
    urls = list(urls)
    with connection.pipeline(transaction=False) as pipe:
        for url in urls:
            pipe.hget(feed_key(url), "next_poll")
        values = pipe.execute()
    return {url: _float(value) for url, value in zip(urls, values, strict=True)}

"""Poll the feeds that are due: leased, bounded in concurrency (overall and per host), failures isolated.

`poll_due_feeds` is the entry point; `feed_source` is the same as a producer source (producer.service's
PollSource), reading the feeds file named by NEWSWATCH_FEEDS. A feed is polled by one producer at a time
(a lease in Redis, SET NX PX, released with compare-and-delete); entries become Documents and go to
`producer.enqueue.enqueue_documents`, which drops those seen lately (canonical URL or content hash) and
enqueues the rest in batches with the pending ledger. A feed's validators are stored only once its entries
are enqueued, so a crash between fetch and enqueue can never turn the next poll into a 304 that loses them.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import redis

from newswatch.http import Fetcher, FetchError
from newswatch.logs import get_logger
from newswatch.messages import Document
from newswatch.settings import Settings
from producer.enqueue import EnqueueResult, enqueue_documents
from producer.feeds import health as feed_health
from producer.feeds.entries import feed_documents
from producer.feeds.feedlist import FeedSpec, load_feeds
from producer.feeds.fetch import fetch_feed, validators
from producer.feeds.parse import FeedParseError, parse_feed
from producer.feeds.schedule import Outcome, Policy, next_poll, publishing_rate

log = get_logger(__name__)
T = TypeVar("T")

#: Fetches running at once, and at once against one host (politeness).
MAX_CONCURRENCY = 8
PER_HOST = 2
#: Overall deadline of one feed fetch (the lease outlives it by LEASE_MARGIN).
FEED_DEADLINE = 60.0
#: Largest feed accepted (decoded). Parsing costs about 7x a feed's size in memory, so with MAX_CONCURRENCY
#: fetches at once the poller stays within a few hundred MB whatever the feeds send; real feeds are < 2 MB.
FEED_MAX_BYTES = 5 * 1024 * 1024
LEASE_MARGIN = 60.0

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass
class FeedPoll:
    """What happened to one feed in a poll; `skipped` says why it was not fetched (leased elsewhere...)."""

    url: str
    status: int | None = None
    entries: int = 0
    accepted: int = 0
    duplicates: int = 0
    error: str | None = None
    next_poll: float | None = None
    skipped: str | None = None


@dataclass
class PollReport:
    """The outcome of one `poll_due_feeds` call."""

    feeds: list[FeedPoll] = field(default_factory=list)
    enqueued: EnqueueResult = field(default_factory=EnqueueResult)
    #: The documents made, when the poll was asked not to enqueue them.
    documents: list[Document] = field(default_factory=list)

    @property
    def polled(self) -> int:
        return sum(1 for feed in self.feeds if not feed.skipped)

    @property
    def failed(self) -> int:
        return sum(1 for feed in self.feeds if feed.error)

    @property
    def not_modified(self) -> int:
        return sum(1 for feed in self.feeds if feed.status == 304)


class FeedLease:
    """A per-feed lock in Redis with an expiry, so a crashed producer's lease runs out by itself."""

    def __init__(self, connection: redis.Redis, url: str, seconds: float) -> None:
        self.connection = connection
        self.key = feed_health.lease_key(url)
        self.token = secrets.token_hex(8)
        self.milliseconds = max(1, int(seconds * 1000))

    def acquire(self) -> bool:
        return bool(self.connection.set(self.key, self.token, nx=True, px=self.milliseconds))

    def release(self) -> None:
        self.connection.eval(_RELEASE, 1, self.key, self.token)


def poll_due_feeds(
    connection: redis.Redis,
    settings: Settings,
    feeds: Sequence[FeedSpec],
    now: float,
    *,
    force: bool = False,
    fetcher: Fetcher | None = None,
    enqueue: bool = True,
    max_concurrency: int = MAX_CONCURRENCY,
    per_host: int = PER_HOST,
    jitter: Callable[[], float] = random.random,
) -> PollReport:
    """Poll every feed due at `now` (every feed when `force`), enqueue new entries, record health.

    One failing feed is logged with its URL and reason, counted and backed off; the others go on.
    With `enqueue=False` nothing is enqueued (and nothing deduplicated): the Documents are returned.
    """
    report = PollReport()
    due_at = feed_health.next_poll_times(connection, [feed.url for feed in feeds])
    due = [feed for feed in feeds if force or (due_at[feed.url] or 0.0) <= now]
    if not due:
        return report
    started = time.monotonic()
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher.from_settings(
        settings, deadline=FEED_DEADLINE, max_bytes=min(settings.max_article_bytes, FEED_MAX_BYTES)
    )

    def clock() -> float:
        return now + (time.monotonic() - started)

    def work(feed: FeedSpec) -> tuple[FeedPoll, EnqueueResult, list[Document]]:
        return poll_feed(
            connection, settings, feed, fetcher, clock, force=force, enqueue=enqueue, jitter=jitter
        )

    try:
        for poll, enqueued, documents in _bounded(due, work, max_concurrency, per_host):
            report.feeds.append(poll)
            report.enqueued.merge(enqueued)
            report.documents += documents
    finally:
        if own_fetcher:
            fetcher.close()
    log.info(
        "feeds polled",
        due=len(due),
        polled=report.polled,
        failed=report.failed,
        not_modified=report.not_modified,
        accepted=len(report.enqueued.accepted),
        duplicates=len(report.enqueued.duplicates),
    )
    return report


def poll_feed(
    connection: redis.Redis,
    settings: Settings,
    feed: FeedSpec,
    fetcher: Fetcher,
    clock: Callable[[], float],
    *,
    force: bool = False,
    enqueue: bool = True,
    jitter: Callable[[], float] = random.random,
) -> tuple[FeedPoll, EnqueueResult, list[Document]]:
    """Poll one feed under its lease: fetch (conditional), parse, make Documents, enqueue, record health."""
    lease = FeedLease(connection, feed.url, fetcher.limits.deadline + LEASE_MARGIN)
    if not lease.acquire():
        return FeedPoll(feed.url, skipped="being polled by another producer"), EnqueueResult(), []
    try:
        state = feed_health.read_health(connection, [feed.url])[0]
        if not force and state.next_poll is not None and state.next_poll > clock():
            return FeedPoll(feed.url, skipped="already polled"), EnqueueResult(), []
        try:
            return _poll_leased(connection, settings, feed, fetcher, state, clock, enqueue, jitter)
        except redis.ConnectionError:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            log.exception("feed poll crashed", url=feed.url, reason=reason)
            return _failed(connection, feed, state, clock(), None, reason, jitter), EnqueueResult(), []
    finally:
        lease.release()


def _poll_leased(
    connection: redis.Redis,
    settings: Settings,
    feed: FeedSpec,
    fetcher: Fetcher,
    state: feed_health.FeedHealth,
    clock: Callable[[], float],
    enqueue: bool,
    jitter: Callable[[], float],
) -> tuple[FeedPoll, EnqueueResult, list[Document]]:
    policy = Policy.for_interval(feed.interval)
    try:
        response = fetch_feed(fetcher, state)
    except FetchError as error:
        return _failed(connection, feed, state, clock(), None, error.reason, jitter), EnqueueResult(), []
    at = clock()
    if response.status == 304:
        decision = next_poll(at, policy, _outcome(304, response.headers, state.entries_per_day), jitter())
        kept = {"etag": state.etag, "last_modified": state.last_modified}
        feed_health.record_success(
            connection, feed.url, at=at, status=304, next_poll=decision.at, next_reason=decision.reason,
            validators={k: v for k, v in {**kept, **validators(response)}.items() if v},
        )  # fmt: skip
        log.debug("feed not modified", url=feed.url)
        return FeedPoll(feed.url, status=304, next_poll=decision.at), EnqueueResult(), []
    if not 200 <= response.status < 300:
        poll = _failed(
            connection, feed, state, at, response.status, f"HTTP {response.status}", jitter, response.headers
        )
        return poll, EnqueueResult(), []
    try:
        parsed = parse_feed(
            response.body, response.url, response.headers.get("content-type"),
            response.headers.get("content-language"),
        )  # fmt: skip
    except FeedParseError as error:
        return (
            _failed(connection, feed, state, at, response.status, error.reason, jitter),
            EnqueueResult(),
            [],
        )
    if parsed.problem:
        log.debug("feed is ill-formed but readable", url=feed.url, problem=parsed.problem)
    documents = feed_documents(parsed, feed, datetime.fromtimestamp(at, UTC))
    result = (
        enqueue_documents(connection, documents, settings, source="feeds") if enqueue else EnqueueResult()
    )
    rate = publishing_rate(
        (entry.published.timestamp() for entry in parsed.entries if entry.published is not None), at
    )
    outcome = _outcome(response.status, response.headers, rate, ttl=parsed.ttl)
    decision = next_poll(at, policy, outcome, jitter())
    feed_health.record_success(
        connection, feed.url, at=at, status=response.status, next_poll=decision.at,
        next_reason=decision.reason, new_entries=len(result.accepted), entries=len(parsed.entries),
        title=parsed.title, entries_per_day=rate, validators=validators(response),
    )  # fmt: skip
    poll = FeedPoll(
        feed.url,
        status=response.status,
        entries=len(documents),
        accepted=len(result.accepted),
        duplicates=len(result.duplicates),
        next_poll=decision.at,
    )
    return poll, result, ([] if enqueue else documents)


def _outcome(
    status: int | None,
    headers: object,
    rate: float | None,
    *,
    ttl: int | None = None,
    errors: int = 0,
    error: bool = False,
) -> Outcome:
    mapping = dict(headers.items()) if hasattr(headers, "items") else {}
    return Outcome(
        status=status, error=error, consecutive_errors=errors, headers=mapping, ttl=ttl, entries_per_day=rate
    )


def _failed(
    connection: redis.Redis,
    feed: FeedSpec,
    state: feed_health.FeedHealth,
    at: float,
    status: int | None,
    reason: str,
    jitter: Callable[[], float],
    headers: object = None,
) -> FeedPoll:
    errors = state.consecutive_errors + 1
    outcome = _outcome(status, headers or {}, state.entries_per_day, errors=errors, error=True)
    decision = next_poll(at, Policy.for_interval(feed.interval), outcome, jitter())
    log.warning(
        "feed failed", url=feed.url, reason=reason, consecutive_errors=errors, retry_in=round(decision.delay)
    )
    feed_health.record_failure(
        connection, feed.url, at=at, status=status, reason=reason, consecutive_errors=errors,
        next_poll=decision.at, next_reason=decision.reason,
    )  # fmt: skip
    return FeedPoll(feed.url, status=status, error=reason, next_poll=decision.at)


def _bounded(
    feeds: Sequence[FeedSpec], work: Callable[[FeedSpec], T], max_concurrency: int, per_host: int
) -> list[T]:
    """Run `work` on every feed, at most `max_concurrency` at once and `per_host` at once per host."""
    queues: dict[str, deque[FeedSpec]] = {}
    for feed in feeds:
        queues.setdefault((urlsplit(feed.url).hostname or "").lower(), deque()).append(feed)
    active: Counter[str] = Counter()
    results: list[T] = []
    with ThreadPoolExecutor(max_workers=max(1, max_concurrency), thread_name_prefix="feed") as pool:
        running: dict[Future[T], str] = {}
        while queues or running:
            for host in list(queues):  # round robin over hosts, so one big host cannot starve the rest
                if len(running) >= max_concurrency:
                    break
                if active[host] < per_host:
                    running[pool.submit(work, queues[host].popleft())] = host
                    active[host] += 1
                    if not queues[host]:
                        del queues[host]
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                active[running.pop(future)] -= 1
                results.append(future.result())
    return results


_feeds_cache: dict[Path, tuple[float, list[FeedSpec]]] = {}


def configured_feeds(settings: Settings) -> list[FeedSpec]:
    """The feeds of NEWSWATCH_FEEDS, read again only when the file changes; [] when none is configured."""
    if settings.feeds is None:
        return []
    path = Path(settings.feeds)
    mtime = path.stat().st_mtime
    cached = _feeds_cache.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, load_feeds(path))
        _feeds_cache[path] = cached
    return cached[1]


def feed_source(connection: redis.Redis, settings: Settings, once: bool) -> EnqueueResult:
    """A producer source (producer.service.PollSource): poll the due feeds, or all of them when `once`."""
    feeds = configured_feeds(settings)
    if not feeds:
        return EnqueueResult()
    return poll_due_feeds(connection, settings, feeds, time.time(), force=once).enqueued

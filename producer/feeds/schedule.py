"""When to poll a feed next: pure functions of the last outcome, the feed's publishing rate and the time.

Like Miniflux's entry-frequency scheduler, a feed is polled about as often as it publishes, between a
minimum (the feeds file's `interval`) and a maximum interval. Servers are listened to: Retry-After on
429/503, Cache-Control max-age and RSS <ttl> never let us poll sooner than they ask (capped at a day, so a
typo cannot silence a feed for months). Failures back off exponentially with jitter, so that many feeds
failing together do not retry together. No clock here: `now` and the jitter draw are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

DEFAULT_MIN_INTERVAL = 600.0
DEFAULT_MAX_INTERVAL = 6 * 3600.0
#: Interval for a feed whose entries carry no dates (its rate is unknown).
UNKNOWN_RATE_INTERVAL = 3600.0
#: Longest wait after repeated failures.
MAX_BACKOFF = 24 * 3600.0
#: Longest wait a server hint (Retry-After, max-age, ttl) can impose.
MAX_HINT = 24 * 3600.0
#: Entries older than this do not count towards the publishing rate.
RATE_WINDOW = 30 * 86400.0
#: A rate measured over less than this span is measured over this span (one entry just now is not 1000/day).
MIN_RATE_SPAN = 3600.0
#: Success intervals vary by ±this fraction so that feeds added together drift apart.
SUCCESS_JITTER = 0.1


@dataclass(frozen=True)
class Policy:
    """The bounds of one feed's schedule."""

    min_interval: float = DEFAULT_MIN_INTERVAL
    max_interval: float = DEFAULT_MAX_INTERVAL
    max_backoff: float = MAX_BACKOFF

    @classmethod
    def for_interval(cls, interval: float | None) -> Policy:
        """The policy of a feed whose file entry says `interval` (its fastest poll), or the defaults."""
        low = float(interval) if interval else DEFAULT_MIN_INTERVAL
        return cls(
            min_interval=low, max_interval=max(low, DEFAULT_MAX_INTERVAL), max_backoff=max(low, MAX_BACKOFF)
        )


@dataclass(frozen=True)
class Outcome:
    """What the last poll gave: the HTTP status (None: no response) and what the feed said about itself."""

    status: int | None
    error: bool = False
    consecutive_errors: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    ttl: float | None = None
    entries_per_day: float | None = None


@dataclass(frozen=True)
class Decision:
    """The next poll time (epoch seconds), the delay from now, and why, in words."""

    at: float
    delay: float
    reason: str


def publishing_rate(published: Iterable[float], now: float) -> float | None:
    """Entries per day over the recent window; 0.0 when every dated entry is old; None when undated."""
    dates = list(published)
    if not dates:
        return None
    recent = [moment for moment in dates if now - RATE_WINDOW < moment <= now]
    if not recent:
        return 0.0
    span = max(now - min(recent), MIN_RATE_SPAN)
    return len(recent) * 86400.0 / span


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def cache_max_age(value: str | None) -> float | None:
    """max-age (or s-maxage) of a Cache-Control header, unless the response is not to be cached."""
    if not value:
        return None
    found: float | None = None
    for directive in value.lower().split(","):
        name, _, argument = directive.strip().partition("=")
        if name in ("no-cache", "no-store"):
            return None
        if name in ("max-age", "s-maxage"):
            try:
                found = max(found or 0.0, float(argument.strip().strip('"')))
            except ValueError:
                continue
    return found


def next_poll(now: float, policy: Policy, outcome: Outcome, jitter: float) -> Decision:
    """When to poll again after `outcome`. `jitter` is a uniform draw in [0, 1)."""
    headers = {name.lower(): value for name, value in outcome.headers.items()}
    failed = outcome.error or outcome.status is None or outcome.status >= 400
    if outcome.status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        if retry_after is not None:
            delay = max(policy.min_interval, min(retry_after, MAX_HINT))
            return Decision(now + delay, delay, f"HTTP {outcome.status}, Retry-After {retry_after:.0f}s")
    if failed:
        return _backoff(now, policy, outcome, jitter)
    return _regular(now, policy, outcome, headers, jitter)


def _backoff(now: float, policy: Policy, outcome: Outcome, jitter: float) -> Decision:
    errors = max(1, outcome.consecutive_errors)
    base = min(policy.max_backoff, policy.min_interval * 2.0 ** min(errors - 1, 30))
    # "Equal jitter": half the wait is fixed, half is random, so waits grow yet failures spread out.
    delay = max(policy.min_interval, base / 2 + jitter * base / 2)
    what = f"HTTP {outcome.status}" if outcome.status else "no response"
    return Decision(now + delay, delay, f"{what}; backoff after {errors} consecutive error(s)")


def _regular(
    now: float, policy: Policy, outcome: Outcome, headers: Mapping[str, str], jitter: float
) -> Decision:
    rate = outcome.entries_per_day
    if rate is None:
        interval, reason = UNKNOWN_RATE_INTERVAL, "publishing rate unknown"
    elif rate <= 0:
        interval, reason = policy.max_interval, "no entries in 30 days"
    else:
        interval, reason = 86400.0 / rate, f"~{rate:.1f} entries/day"
    interval = min(max(interval, policy.min_interval), policy.max_interval)
    interval *= 1 + (jitter - 0.5) * 2 * SUCCESS_JITTER
    interval = max(interval, policy.min_interval)
    for hint, name in (
        (cache_max_age(headers.get("cache-control")), "Cache-Control max-age"),
        (outcome.ttl, "RSS ttl"),
    ):
        if hint is not None and hint > interval:
            interval, reason = min(hint, max(MAX_HINT, policy.min_interval)), f"{name} {hint:.0f}s"
    return Decision(now + interval, interval, reason)

"""The scheduler: pure next-poll decisions from outcome, publishing rate, server hints and time."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from producer.feeds.schedule import (
    DEFAULT_MAX_INTERVAL,
    DEFAULT_MIN_INTERVAL,
    MAX_HINT,
    UNKNOWN_RATE_INTERVAL,
    Outcome,
    Policy,
    cache_max_age,
    next_poll,
    parse_retry_after,
    publishing_rate,
)

NOW = 1_750_000_000.0
POLICY = Policy(min_interval=600, max_interval=6 * 3600, max_backoff=24 * 3600)
MIDDLE = 0.5  # the jitter draw that leaves a success interval unchanged


def ok(rate: float | None, **kwargs: object) -> Outcome:
    return Outcome(status=200, entries_per_day=rate, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (24.0, 3600.0),  # one an hour: poll hourly
        (4.0, 6 * 3600.0),  # one every six hours: the maximum
        (1.0, 6 * 3600.0),  # rarer than the maximum: clamped to it
        (1000.0, 600.0),  # a firehose: never faster than the minimum
        (0.0, 6 * 3600.0),  # nothing in 30 days
        (None, UNKNOWN_RATE_INTERVAL),  # undated entries
    ],
)
def test_the_interval_follows_the_publishing_rate(rate: float | None, expected: float) -> None:
    decision = next_poll(NOW, POLICY, ok(rate), MIDDLE)
    assert decision.delay == pytest.approx(expected)
    assert decision.at == pytest.approx(NOW + expected)


def test_success_jitter_spreads_feeds_by_at_most_ten_percent() -> None:
    low = next_poll(NOW, POLICY, ok(24.0), 0.0).delay
    high = next_poll(NOW, POLICY, ok(24.0), 0.999).delay
    assert 3240 <= low < 3600 < high <= 3960


def test_jitter_never_goes_below_the_minimum_interval() -> None:
    assert next_poll(NOW, POLICY, ok(10_000.0), 0.0).delay == 600


def test_the_feeds_file_interval_is_the_fastest_poll() -> None:
    policy = Policy.for_interval(120)
    assert policy.min_interval == 120 and policy.max_interval == DEFAULT_MAX_INTERVAL
    assert next_poll(NOW, policy, ok(10_000.0), MIDDLE).delay == 120
    assert Policy.for_interval(None).min_interval == DEFAULT_MIN_INTERVAL
    assert Policy.for_interval(86400 * 2).max_interval == 86400 * 2  # max follows a slow minimum


@pytest.mark.parametrize("errors", [1, 2, 3, 4, 5, 8, 20, 200])
def test_failures_back_off_exponentially_within_bounds(errors: int) -> None:
    outcome = Outcome(status=None, error=True, consecutive_errors=errors)
    base = min(24 * 3600, 600 * 2 ** (errors - 1))
    shortest = next_poll(NOW, POLICY, outcome, 0.0).delay
    longest = next_poll(NOW, POLICY, outcome, 0.999).delay
    assert max(600, base / 2) == pytest.approx(shortest)
    assert longest == pytest.approx(max(600, base * 0.9995), rel=1e-3)
    assert longest <= 24 * 3600


def test_backoff_grows_with_each_consecutive_failure() -> None:
    delays = [
        next_poll(NOW, POLICY, Outcome(status=500, error=True, consecutive_errors=n), MIDDLE).delay
        for n in range(1, 10)
    ]
    assert delays == sorted(delays) and delays[-1] > 50 * delays[0]


@pytest.mark.parametrize("status", [404, 410, 500, 502])
def test_http_errors_count_as_failures(status: int) -> None:
    decision = next_poll(NOW, POLICY, Outcome(status=status, consecutive_errors=3), MIDDLE)
    assert "backoff after 3" in decision.reason and f"HTTP {status}" in decision.reason


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured_on_429_and_503(status: int) -> None:
    outcome = Outcome(status=status, error=True, consecutive_errors=1, headers={"Retry-After": "7200"})
    decision = next_poll(NOW, POLICY, outcome, MIDDLE)
    assert decision.delay == 7200 and "Retry-After" in decision.reason


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 5400, UTC), usegmt=True)
    outcome = Outcome(status=503, error=True, consecutive_errors=1, headers={"retry-after": when})
    assert next_poll(NOW, POLICY, outcome, MIDDLE).delay == pytest.approx(5400)


def test_a_short_retry_after_still_respects_the_minimum_and_a_long_one_is_capped() -> None:
    short = Outcome(status=429, error=True, consecutive_errors=1, headers={"Retry-After": "5"})
    huge = Outcome(status=429, error=True, consecutive_errors=1, headers={"Retry-After": str(10**9)})
    assert next_poll(NOW, POLICY, short, MIDDLE).delay == 600
    assert next_poll(NOW, POLICY, huge, MIDDLE).delay == MAX_HINT


def test_429_without_retry_after_backs_off() -> None:
    decision = next_poll(NOW, POLICY, Outcome(status=429, error=True, consecutive_errors=2), MIDDLE)
    assert "backoff after 2" in decision.reason


def test_cache_control_max_age_delays_the_next_poll() -> None:
    outcome = ok(96.0, headers={"Cache-Control": "public, max-age=7200"})
    decision = next_poll(NOW, POLICY, outcome, MIDDLE)
    assert decision.delay == 7200 and "max-age" in decision.reason


def test_a_max_age_shorter_than_the_interval_changes_nothing() -> None:
    assert next_poll(NOW, POLICY, ok(24.0, headers={"cache-control": "max-age=60"}), MIDDLE).delay == 3600


def test_rss_ttl_delays_the_next_poll_but_never_beyond_a_day() -> None:
    assert next_poll(NOW, POLICY, ok(96.0, ttl=10_800), MIDDLE).delay == 10_800
    assert next_poll(NOW, POLICY, ok(96.0, ttl=30 * 86400), MIDDLE).delay == MAX_HINT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=300", 300.0),
        ("public, max-age=120, s-maxage=900", 900.0),
        ('max-age="60"', 60.0),
        ("no-cache, max-age=600", None),
        ("no-store", None),
        ("private", None),
        ("max-age=soon", None),
        (None, None),
    ],
)
def test_cache_max_age(header: str | None, expected: float | None) -> None:
    assert cache_max_age(header) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 0 ", 0.0), ("", None), (None, None), ("tomorrow", None), ("-5", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_a_retry_after_date_in_the_past_means_now() -> None:
    past = format_datetime(datetime.fromtimestamp(NOW - 100, UTC), usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


def test_publishing_rate_counts_recent_dated_entries() -> None:
    hourly = [NOW - hour * 3600 for hour in range(1, 25)]
    assert publishing_rate(hourly, NOW) == pytest.approx(24.0)
    assert publishing_rate([], NOW) is None
    assert publishing_rate([NOW - 90 * 86400], NOW) == 0.0  # only old entries
    assert publishing_rate([NOW - 60], NOW) == pytest.approx(24.0)  # one entry just now is not 1440/day
    assert publishing_rate([NOW + 86400, NOW - 2 * 86400], NOW) == pytest.approx(0.5)  # future ignored

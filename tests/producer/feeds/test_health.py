"""Per-feed health in Redis: errors in a row reset by a poll that works; polls and errors counted for good."""

from __future__ import annotations

import redis

from producer.feeds.health import all_health, record_failure, record_success

URL = "https://example.org/desk.rss"


def fail(client: redis.Redis, at: float, in_a_row: int) -> None:
    record_failure(
        client, URL, at=at, status=503, reason="503 Service Unavailable", consecutive_errors=in_a_row,
        next_poll=at + 600, next_reason="backoff",
    )  # fmt: skip


def test_failed_polls_are_counted_across_a_recovery(redis_client: redis.Redis) -> None:
    fail(redis_client, 1_700_000_000, 1)
    fail(redis_client, 1_700_000_600, 2)
    record_success(
        redis_client, URL, at=1_700_001_200, status=200, next_poll=1_700_001_800, next_reason="~24/day",
        new_entries=4, entries=10,
    )  # fmt: skip
    fail(redis_client, 1_700_001_800, 1)

    [health] = all_health(redis_client)
    assert health.consecutive_errors == 1  # the streak the recovery ended is gone from here...
    assert health.errors == 3  # ...but not from the total a dashboard graphs
    assert health.polls == 4
    assert health.last_error == "503 Service Unavailable" and health.entries_seen == 4

"""`newswatch feeds check` and `newswatch feeds list`, run as a user would (a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from producer.feeds.health import record_failure, record_success

Newswatch = Any  # the `newswatch` fixture of tests/conftest.py: the command, on the session's Redis


def test_check_accepts_a_good_file(newswatch: Newswatch, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feed]]\nurl = "https://example.org/a.rss"\nfull_text = true\n', encoding="utf-8")
    result = newswatch("feeds", "check", str(feeds))
    assert result.returncode == 0 and "1 feeds ok (1 with full_text)" in result.stdout


def test_check_names_each_bad_line_and_exits_2(newswatch: Newswatch, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feed]]\nurl = "https://example.org/a.rss"\ninterval = "often"\n', encoding="utf-8")
    result = newswatch.with_env(NEWSWATCH_FEEDS=str(feeds))("feeds", "check")
    assert result.returncode == 2 and result.stdout == ""
    assert f"{feeds}:3: interval must be" in result.stderr and "Traceback" not in result.stderr


def test_check_without_a_file_is_a_usage_error(newswatch: Newswatch) -> None:
    result = newswatch("feeds", "check")
    assert result.returncode == 2 and "give FILE or set NEWSWATCH_FEEDS" in result.stderr


def test_list_shows_each_feeds_health(
    newswatch: Newswatch, tmp_path: Path, redis_client: redis.Redis
) -> None:
    good, bad = "https://example.org/good.rss", "https://example.org/bad.rss"
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(f'[[feed]]\nurl = "{good}"\n\n[[feed]]\nurl = "{bad}"\n', encoding="utf-8")
    record_success(
        redis_client, good, at=1_700_000_000, status=200, next_poll=1_700_000_600,
        next_reason="~24 entries/day", new_entries=7, entries=10, title="Good Desk",
    )  # fmt: skip
    record_failure(
        redis_client, bad, at=1_700_000_000, status=None, reason="cannot connect (refused)",
        consecutive_errors=3, next_poll=1_700_004_800, next_reason="backoff",
    )  # fmt: skip
    newswatch = newswatch.with_env(NEWSWATCH_FEEDS=str(feeds))
    result = newswatch("feeds", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["url"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert rows[good]["title"] == "Good Desk" and rows[good]["entries_seen"] == 7
    assert rows[good]["last_status"] == "200" and rows[good]["next_poll"] == 1_700_000_600
    assert rows[bad]["consecutive_errors"] == 3 and rows[bad]["last_error"] == "cannot connect (refused)"
    table = newswatch.with_env(COLUMNS="200")("feeds", "list")
    assert (
        table.returncode == 0 and "Good Desk" in table.stdout and "cannot connect (refused)" in table.stdout
    )

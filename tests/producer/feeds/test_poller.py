"""Polling served feeds into a real Redis: conditional GET, hostile feeds isolated, dedup, leases, limits."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from newswatch import keys
from newswatch.http import Fetcher, FetchLimits
from newswatch.http.ssrf import AddressGuard
from newswatch.settings import Settings
from producer.feeds.feedlist import FeedSpec
from producer.feeds.health import lease_key, read_health
from producer.feeds.poller import feed_source, poll_due_feeds

FeedServer = Any  # the `feed_server` fixture of conftest.py (a threaded server on 127.0.0.1)


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 document; each item dict gives the item's elements (title, link, description...)."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>']
    for item in items:
        parts.append("<item>" + "".join(f"<{key}>{value}</{key}>" for key, value in item.items()) + "</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def stories(prefix: str, count: int, *, hours_apart: float = 1.0) -> list[dict[str, str]]:
    now = datetime.now(UTC)
    return [
        {
            "title": f"{prefix} story {n}",
            "link": f"/news/{prefix.lower()}-{n}?utm_source=rss",
            "description": f"{prefix} report number {n}: officials described the situation at the border.",
            "pubDate": format_datetime(now - timedelta(hours=n * hours_apart)),
        }
        for n in range(1, count + 1)
    ]


def pending_titles(client: redis.Redis) -> list[str]:
    return sorted(json.loads(raw)["title"] for raw in client.hvals(keys.PENDING))


def test_new_entries_are_enqueued_and_the_feed_health_recorded(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    url = feed_server.serve("/world.rss", rss("World Desk", stories("World", 3)))
    now = time.time()
    report = poll_due_feeds(redis_client, settings, [FeedSpec(url, tags=("wire",))], now)
    assert (report.polled, report.failed, len(report.enqueued.accepted)) == (1, 0, 3)
    assert pending_titles(redis_client) == ["World story 1", "World story 2", "World story 3"]
    document = report.enqueued.accepted[0]
    assert document.url == feed_server.url("/news/world-1")  # absolute, tracking parameter gone
    assert document.source.name == "World Desk" and document.source.tags == ("wire",)
    (health,) = read_health(redis_client, [url])
    assert (health.last_status, health.entries_seen, health.consecutive_errors) == ("200", 3, 0)
    assert health.title == "World Desk" and health.next_poll is not None and health.next_poll >= now + 600


def test_an_unchanged_feed_costs_a_304_and_no_parsing_even_after_a_restart(
    feed_server: FeedServer, redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    body = rss("Desk", stories("Cond", 2))

    def conditional(headers: dict[str, str]) -> Any:
        if (
            headers.get("if-none-match") == '"v1"'
            and headers.get("if-modified-since") == "Tue, 05 Nov 2024 10:00:00 GMT"
        ):
            return feed_server.reply(304, headers={"ETag": '"v1"'})
        return feed_server.reply(
            200,
            body,
            {
                "Content-Type": "application/rss+xml",
                "ETag": '"v1"',
                "Last-Modified": "Tue, 05 Nov 2024 10:00:00 GMT",
            },
        )

    url = feed_server.route("/cond.rss", conditional)
    feed = [FeedSpec(url)]
    first = poll_due_feeds(redis_client, settings, feed, time.time())
    assert len(first.enqueued.accepted) == 2
    # A "restarted" producer: new Redis client, new HTTP client; only Redis remembers the validators.
    restarted = redis.Redis.from_url(redis_url)
    with Fetcher(guard=AddressGuard(["127.0.0.1"])) as fresh:
        second = poll_due_feeds(restarted, settings, feed, time.time(), force=True, fetcher=fresh)
    (poll,) = second.feeds
    # Nothing parsed: no entries reached dedup (which would have counted them as duplicates).
    assert (poll.status, poll.entries, poll.accepted, poll.duplicates) == (304, 0, 0, 0)
    (health,) = read_health(restarted, [url])
    assert health.last_status == "304" and health.etag == '"v1"' and health.entries_seen == 2


def test_a_feed_that_is_not_due_is_not_fetched(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    url = feed_server.serve("/due.rss", rss("Desk", stories("Due", 1)))
    now = time.time()
    poll_due_feeds(redis_client, settings, [FeedSpec(url)], now)
    assert poll_due_feeds(redis_client, settings, [FeedSpec(url)], now + 60).feeds == []
    assert feed_server.hits("/due.rss") == 1
    (health,) = read_health(redis_client, [url])
    assert health.next_poll is not None
    poll_due_feeds(redis_client, settings, [FeedSpec(url)], health.next_poll + 1)
    assert feed_server.hits("/due.rss") == 2


class Trickle:
    """A server that sends headers, then one byte every 0.1 s: a slow feed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(4096)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 9999\r\n\r\n"
                )
                for _ in range(200):
                    connection.sendall(b"<")
                    time.sleep(0.1)
            except OSError:
                pass


def test_hostile_and_broken_feeds_fail_alone_and_are_backed_off(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "'
        + b"a" * 1000
        + b'">]><rss><channel><title>&a;</title></channel></rss>'
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    slow = Trickle()
    feeds = {
        "good": feed_server.serve("/good.rss", rss("Good", stories("Good", 2))),
        "entities": feed_server.serve("/bomb.rss", bomb),
        "oversize": feed_server.serve("/big.rss", b"<rss>" + b" " * 3_000_000 + b"</rss>"),
        "gzip-bomb": feed_server.serve(
            "/gz.rss", gzip.compress(b" " * 50_000_000), headers={"Content-Encoding": "gzip"}
        ),
        "not-found": feed_server.url("/missing.rss"),
        "html": feed_server.serve("/page.html", b"<html><body>Hello</body></html>", "text/html"),
        "metadata-redirect": feed_server.serve(
            "/moved.rss", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
        ),
        "unreachable": f"http://127.0.0.1:{closed_port}/feed.rss",
        "slow": f"http://127.0.0.1:{slow.port}/feed.rss",
    }
    limits = FetchLimits(deadline=2.0, read_timeout=1.0, max_bytes=2_000_000)
    now = time.time()
    with Fetcher(guard=AddressGuard(["127.0.0.1"]), limits=limits) as fetcher:
        started = time.monotonic()
        report = poll_due_feeds(
            redis_client, settings, [FeedSpec(u) for u in feeds.values()], now, fetcher=fetcher
        )
        assert time.monotonic() - started < 10
    by_url = {poll.url: poll.error for poll in report.feeds}
    errors = {name: by_url[url] for name, url in feeds.items()}
    assert errors["good"] is None and len(report.enqueued.accepted) == 2
    expected = {
        "entities": "declares entities",
        "oversize": "larger than 2000000 bytes",
        "gzip-bomb": "(decoded)",
        "not-found": "HTTP 404",
        "html": "not a feed",
        "metadata-redirect": "link-local",
        "unreachable": "cannot connect",
        "slow": "deadline of 2s exceeded",
    }
    for name, reason in expected.items():
        assert reason in (errors[name] or ""), (name, errors[name])
    health = {state.url: state for state in read_health(redis_client, list(feeds.values()))}
    for name in expected:
        state = health[feeds[name]]
        assert state.consecutive_errors == 1 and expected[name] in state.last_error
        assert state.next_poll is not None and state.next_poll >= now + 300  # backed off, not retried at once
    # A second failure doubles the wait (within jitter bounds); a success resets the count.
    with Fetcher(guard=AddressGuard(["127.0.0.1"]), limits=limits) as fetcher:
        poll_due_feeds(
            redis_client, settings, [FeedSpec(feeds["not-found"])], now + 86400 * 2, fetcher=fetcher
        )
    (again,) = read_health(redis_client, [feeds["not-found"]])
    assert again.consecutive_errors == 2 and again.next_poll is not None
    assert again.next_poll - (now + 86400 * 2) >= 600
    feed_server.serve("/missing.rss", rss("Back", stories("Back", 1)))
    poll_due_feeds(redis_client, settings, [FeedSpec(feeds["not-found"])], now + 86400 * 4)
    (healed,) = read_health(redis_client, [feeds["not-found"]])
    assert healed.consecutive_errors == 0 and healed.last_status == "200"
    assert "HTTP 404" in healed.last_error  # the last error stays visible for the operator


def test_a_429_with_retry_after_is_honoured(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    url = feed_server.serve(
        "/busy.rss", b"slow down", "text/plain", status=429, headers={"Retry-After": "7200"}
    )
    now = time.time()
    (poll,) = poll_due_feeds(redis_client, settings, [FeedSpec(url)], now).feeds
    assert poll.status == 429 and poll.next_poll == pytest.approx(now + 7200, abs=5)


LATIN1 = "Réfugiés à la frontière: l'été sera long"
CYRILLIC = "Северокорейские войска в Курской области"


@pytest.mark.parametrize(("title", "encoding"), [(LATIN1, "iso-8859-1"), (CYRILLIC, "windows-1251")])
def test_legacy_encodings_served_with_and_without_a_charset(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings, title: str, encoding: str
) -> None:
    declared = f'<?xml version="1.0" encoding="{encoding}"?>'
    body = f"<rss version='2.0'><channel><title>{title}</title><item><title>{title}</title><link>/a</link>"
    body += f"<description>{title}. {title}.</description></item></channel></rss>"
    urls = [
        feed_server.serve("/charset.rss", body.encode(encoding), f"application/rss+xml; charset={encoding}"),
        feed_server.serve("/declared.rss", (declared + body).encode(encoding), "text/xml"),
        feed_server.serve("/bare.rss", body.encode(encoding), "application/rss+xml"),  # nothing names it
    ]
    report = poll_due_feeds(
        redis_client, settings, [FeedSpec(url) for url in urls], time.time(), enqueue=False
    )
    assert report.failed == 0 and len(report.documents) == 3
    assert {document.title for document in report.documents} == {title}
    assert {document.source.name for document in report.documents} == {title}


def test_relative_links_resolve_against_the_final_url_after_a_redirect(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    feed_server.serve(
        "/feeds/v2/main.rss", rss("Moved", [{"title": "Rel", "link": "../story?b=2&a=1&fbclid=zz#top"}])
    )
    url = feed_server.serve("/old.rss", b"", status=301, headers={"Location": "/feeds/v2/main.rss"})
    report = poll_due_feeds(redis_client, settings, [FeedSpec(url)], time.time(), enqueue=False)
    assert [document.url for document in report.documents] == [feed_server.url("/feeds/story?a=1&b=2")]


def test_one_story_in_two_feeds_is_enqueued_once(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    shared = {
        "title": "Shared story",
        "link": "/news/shared?utm_source=a",
        "description": "The same wire copy published by two outlets, word for word, with the same facts.",
    }
    first = feed_server.serve("/a.rss", rss("A", [shared, *stories("A", 2)]))
    second_copy = {**shared, "link": "/news/shared?utm_medium=b&fbclid=1"}
    second = feed_server.serve("/b.rss", rss("B", [second_copy, *stories("B", 2)]))
    feeds = [FeedSpec(first), FeedSpec(second)]
    report = poll_due_feeds(redis_client, settings, feeds, time.time())
    titles = sorted(document.title for document in report.enqueued.accepted)
    assert titles.count("Shared story") == 1 and len(titles) == 5
    assert len(report.enqueued.duplicates) == 1
    again = poll_due_feeds(redis_client, settings, feeds, time.time(), force=True)
    assert again.enqueued.accepted == [] and len(again.enqueued.duplicates) == 6
    assert int(redis_client.hlen(keys.PENDING)) == 5


def test_a_leased_feed_is_left_to_the_producer_holding_it(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    url = feed_server.serve("/leased.rss", rss("L", stories("L", 1)))
    redis_client.set(lease_key(url), "another-producer", px=60_000)
    (poll,) = poll_due_feeds(redis_client, settings, [FeedSpec(url)], time.time()).feeds
    assert poll.skipped == "being polled by another producer" and feed_server.hits("/leased.rss") == 0
    assert redis_client.get(lease_key(url)) == b"another-producer"  # not ours to release
    redis_client.delete(lease_key(url))
    assert poll_due_feeds(redis_client, settings, [FeedSpec(url)], time.time()).polled == 1
    assert redis_client.exists(lease_key(url)) == 0  # released after the poll


def test_two_producers_polling_at_once_fetch_each_feed_once(
    feed_server: FeedServer, redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    feeds = [
        FeedSpec(feed_server.serve(f"/p{n}.rss", rss(f"P{n}", stories(f"P{n}", 2)), delay=0.2))
        for n in range(6)
    ]
    now = time.time()
    reports = []

    def producer() -> None:
        reports.append(poll_due_feeds(redis.Redis.from_url(redis_url), settings, feeds, now))

    threads = [threading.Thread(target=producer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(feed_server.requests) == 6
    assert sum(report.polled for report in reports) == 6
    assert sum(len(report.enqueued.accepted) for report in reports) == 12


def test_concurrency_is_capped_overall_and_per_host(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    settings = replace(settings, allowed_hosts=("127.0.0.1", "localhost"))
    feeds = []
    for n in range(6):
        path = f"/c{n}.rss"
        feed_server.serve(path, rss(f"C{n}", stories(f"C{n}", 1)), delay=0.3)
        feeds.append(FeedSpec(feed_server.url(path, host="127.0.0.1" if n % 2 else "localhost")))
    report = poll_due_feeds(redis_client, settings, feeds, time.time(), max_concurrency=3, per_host=1)
    assert report.polled == 6 and report.failed == 0
    assert feed_server.max_active_by_host == {"127.0.0.1": 1, "localhost": 1}
    assert feed_server.max_active == 2


def test_the_producer_source_reads_the_feeds_file(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    url = feed_server.serve("/file.rss", rss("File", stories("File", 2)))
    path = tmp_path / "feeds.toml"
    path.write_text(f'[[feed]]\nurl = "{url}"\ntags = ["local"]\n', encoding="utf-8")
    result = feed_source(redis_client, replace(settings, feeds=path), True)
    assert len(result.accepted) == 2 and result.accepted[0].source.tags == ("local",)
    assert feed_source(redis_client, replace(settings, feeds=None), True).accepted == []


def test_a_crash_in_one_feed_does_not_stop_the_others(
    feed_server: FeedServer, redis_client: redis.Redis, settings: Settings
) -> None:
    good = feed_server.serve("/fine.rss", rss("Fine", stories("Fine", 1)))
    weird = feed_server.serve(
        "/weird.json",
        b'{"version": "https://jsonfeed.org/version/1", "items": [{"title": 5}]}',
        "application/feed+json",
    )
    report = poll_due_feeds(redis_client, settings, [FeedSpec(weird), FeedSpec(good)], time.time())
    assert len(report.enqueued.accepted) == 1 and report.polled == 2

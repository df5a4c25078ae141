"""The alert log stream: atomic deduplicated append, bounded length, reading and following."""

from __future__ import annotations

import threading
import time

import redis

from newswatch import keys
from newswatch.alert_log import AlertLog


def alert(number: int, topic: str = "nk-troops-kursk") -> dict:
    return {
        "id": f"al_{topic}_{number}",
        "topic": {"id": topic, "name": "North Korean troops in Kursk"},
        "article": {
            "id": f"a_{number}",
            "url": f"https://news.example.org/{number}",
            "title": f"Report {number}",
        },
        "score": 2.5,
        "evidence": [{"term": "Kursk", "start": 10, "end": 15}],
        "snippet": "Soldiers from Pyongyang were seen near Kursk.",
        "matched_at": "2026-01-02T03:04:05.000Z",
    }


def test_append_writes_once_per_alert_id(redis_client: redis.Redis) -> None:
    log = AlertLog(redis_client)
    first = log.append(alert(1))
    assert first is not None
    assert log.append(alert(1)) is None  # a re-run job writes nothing
    assert len(log) == 1
    assert log.entry_of("al_nk-troops-kursk_1") == first
    assert redis_client.hget(keys.STATS, "alerts") == b"1"
    assert [entry.alert for entry in log.latest()] == [alert(1)]


def test_concurrent_appends_of_the_same_alert_make_one_entry(redis_url: str) -> None:
    results: list[str | None] = []

    def append() -> None:
        results.append(AlertLog(redis.Redis.from_url(redis_url)).append(alert(7)))

    threads = [threading.Thread(target=append) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
    assert len(AlertLog(redis.Redis.from_url(redis_url))) == 1


def test_the_log_is_bounded(redis_client: redis.Redis) -> None:
    log = AlertLog(redis_client, maxlen=100)
    for number in range(1000):
        log.append(alert(number))
    # MAXLEN ~ trims whole radix-tree nodes: about maxlen entries remain, the newest ones
    assert 100 <= len(log) < 300
    assert log.latest(1)[0].alert["id"] == "al_nk-troops-kursk_999"


def test_latest_and_since_read_in_order(redis_client: redis.Redis) -> None:
    log = AlertLog(redis_client)
    ids = [log.append(alert(number)) for number in range(5)]
    assert [entry.alert["id"] for entry in log.latest(2)] == ["al_nk-troops-kursk_3", "al_nk-troops-kursk_4"]
    assert [entry.entry_id for entry in log.since(ids[2])] == ids[3:]  # type: ignore[index]
    assert len(log.since()) == 5
    assert log.latest(0) == []


def test_follow_yields_alerts_written_later(redis_url: str) -> None:
    writer = AlertLog(redis.Redis.from_url(redis_url))
    writer.append(alert(0))  # before following: not shown
    reader = AlertLog(redis.Redis.from_url(redis_url))
    seen: list[str] = []

    def follow() -> None:
        for entry in reader.follow(block_ms=100):
            seen.append(entry.alert["id"])
            if len(seen) == 2:
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    time.sleep(0.3)
    writer.append(alert(1))
    writer.append(alert(2))
    thread.join(timeout=5)
    assert seen == ["al_nk-troops-kursk_1", "al_nk-troops-kursk_2"]

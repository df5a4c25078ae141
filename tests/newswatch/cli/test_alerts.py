"""`newswatch alerts`: the alert log as JSON lines or readable lines, and --follow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from newswatch.alert_log import AlertLog

ROOT = Path(__file__).resolve().parents[3]


def alert(number: int) -> dict:
    return {
        "id": f"al_{number:024d}",
        "topic": {"id": "nk-troops-kursk", "name": "North Korean troops in Kursk"},
        "article": {
            "id": f"a_{number}",
            "url": f"https://news.example.org/story/{number}",
            "title": f"Report {number} from the border",
            "source": {
                "kind": "feed",
                "name": "Example Wire",
                "url": "https://news.example.org/rss",
                "tags": [],
            },
            "published": "2026-01-02T03:00:00Z",
            "language": "en",
        },
        "score": 1.5,
        "evidence": [],
        "snippet": "Soldiers from Pyongyang were\n seen near   Kursk.",
        "matched_at": f"2026-01-02T03:04:{number:02d}.000Z",
    }


def newswatch(redis_url: str, *args: str, **options: object) -> subprocess.Popen[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "NEWSWATCH_CONFIG": "/nonexistent/newswatch.toml"}
    return subprocess.Popen(
        [sys.executable, "-m", "newswatch", "alerts", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[call-overload]
    )


def test_json_lines_of_the_latest_alerts(redis_url: str, redis_client: redis.Redis) -> None:
    log = AlertLog(redis_client)
    for number in range(5):
        log.append(alert(number))
    out, err = newswatch(redis_url, "--json", "--limit", "2").communicate(timeout=30)
    assert [json.loads(line) for line in out.splitlines()] == [alert(3), alert(4)]
    assert err == ""


def test_readable_lines_show_topic_title_source_and_snippet(
    redis_url: str, redis_client: redis.Redis
) -> None:
    AlertLog(redis_client).append(alert(7))
    process = newswatch(redis_url)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out == (
        "2026-01-02 03:04:07  [nk-troops-kursk] Report 7 from the border (Example Wire): "
        "“Soldiers from Pyongyang were seen near Kursk.”\n"
    )


def test_an_empty_log_prints_nothing(redis_url: str) -> None:
    process = newswatch(redis_url, "--json")
    out, _ = process.communicate(timeout=30)
    assert (process.returncode, out) == (0, "")


def test_follow_prints_new_alerts_as_they_come(redis_url: str, redis_client: redis.Redis) -> None:
    log = AlertLog(redis_client)
    log.append(alert(1))
    process = newswatch(redis_url, "--follow", "--json", "--limit", "1")
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["id"] == alert(1)["id"]
        time.sleep(0.3)
        log.append(alert(2))
        log.append(alert(3))
        assert json.loads(process.stdout.readline())["id"] == alert(2)["id"]
        assert json.loads(process.stdout.readline())["id"] == alert(3)["id"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_negative_limit_is_a_usage_error(redis_url: str) -> None:
    process = newswatch(redis_url, "--limit", "-3")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip() == "newswatch alerts: --limit must be 0 or more"


def test_an_unreachable_redis_is_one_clear_line(tmp_path: Path) -> None:
    process = newswatch(f"unix://{tmp_path}/gone.sock", "--json")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2  # like status, worker and run
    assert err.strip().splitlines()[-1].startswith("newswatch alerts: cannot reach Redis at unix://")
    assert "Traceback" not in err

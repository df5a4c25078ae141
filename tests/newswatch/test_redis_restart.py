"""Fault injection: Redis (the embedded server, and a REDIS_URL one) SIGKILLed and restarted during a run.

`newswatch run` (producer, two article workers, a delivery worker) keeps going: the processes reconnect
with backoff and a log line, what was acknowledged before the kill is still there (AOF), every article
of before and after is alerted exactly once, and `newswatch status` reports the reconnect.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import redis

from newswatch import keys
from newswatch.redis_server import EmbeddedServer

from ..conftest import ROOT, clean_environ, start_valkey  # type: ignore[import-not-found]

WATCHLIST = """
[[topic]]
id = "kursk"
name = "Fighting in Kursk"
query = 'Kursk NEAR/8 (troops OR soldiers)'
"""


def start_redis_url_server(directory: Path) -> subprocess.Popen[bytes]:
    """A REDIS_URL server: valkey-server with AOF (fsync every second) on a unix socket in `directory`."""
    return start_valkey(directory, "--appendfsync", "everysec")


def write_articles(seeds: Path, first: int, count: int) -> None:
    for number in range(first, first + count):
        text = f"Report {number}\n\nNorth Korean troops moved near Kursk again, report {number} says.\n"
        (seeds / f"report-{number:03}.txt").write_text(text, encoding="utf-8")


def alert_counts(client: redis.Redis) -> Counter[str]:
    """Alerts in the log by id (empty while Redis is away)."""
    try:
        rows = client.xrange(keys.ALERTS_STREAM)
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
        return Counter()
    return Counter(json.loads(fields[b"alert"])["id"] for _id, fields in rows)


def wait_for_alerts(client: redis.Redis, count: int, timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = alert_counts(client)
        if len(counts) >= count:
            return counts
        time.sleep(0.3)
    return alert_counts(client)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["embedded", "redis_url"])
def test_a_redis_restart_loses_nothing_acknowledged(kind: str, tmp_path: Path) -> None:
    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    (tmp_path / "watchlist.toml").write_text(WATCHLIST, encoding="utf-8")
    env = clean_environ(
        NEWSWATCH_DATA_DIR=str(data), NEWSWATCH_SEEDS_DIR=str(seeds),
        NEWSWATCH_WATCHLIST=str(tmp_path / "watchlist.toml"), NEWSWATCH_CONFIG=str(tmp_path / "none.toml"),
    )  # fmt: skip
    server = None
    if kind == "redis_url":
        server = start_redis_url_server(tmp_path)
        socket = tmp_path / "redis.sock"
        env["REDIS_URL"] = f"unix://{socket}"
    else:
        socket = EmbeddedServer(data).socket_path
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=5)
    write_articles(seeds, 0, 6)
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    run = subprocess.Popen(
        [sys.executable, "-m", "newswatch", "run", "--workers", "2", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        before = wait_for_alerts(client, 6, 60)
        assert len(before) == 6, (tmp_path / "run.log").read_text()
        time.sleep(1.5)  # past one appendfsync everysec
        if server is not None:
            server.kill()
            server.wait()
        else:
            psutil.Process(int((data / "redis" / "valkey.pid").read_text())).kill()
        killed_at = time.monotonic()
        write_articles(seeds, 6, 6)  # arrive while Redis is down
        if server is not None:
            time.sleep(3)
            server = start_redis_url_server(tmp_path)  # the operator (or compose) restarts it; same AOF
        after = wait_for_alerts(client, 12, 90)
        recovered = time.monotonic() - killed_at
        status = subprocess.run(
            [sys.executable, "-m", "newswatch", "status", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
        if server is not None:
            server.kill()
            server.wait()
        else:
            EmbeddedServer(data).stop()
    print(f"{kind}: all 12 alerts {recovered:.1f} s after the kill")
    logged = (tmp_path / "run.log").read_text()
    assert set(before) <= set(after)  # what was acknowledged before the kill survived it
    assert len(after) == 12 and max(after.values()) == 1, logged[-3000:]
    assert "redis unreachable" in logged and "redis reachable again" in logged
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["pending"] == 0
    assert report["redis"].get("last_reconnect_at"), report["redis"]

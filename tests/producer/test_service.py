"""The producer loop on a real Redis and a real folder: new files are enqueued as soon as they are complete
(long before the next full scan), never half-written, once, and one by one when they trickle in."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from newswatch import keys
from newswatch.settings import Settings
from producer.seeds_watch import watching_supported
from producer.service import PassResult, run_producer

pytestmark = pytest.mark.skipif(not watching_supported(), reason="the watcher needs inotify (Linux)")

#: Far longer than any wait below: a file seen within seconds was seen by the watcher, not by a scan.
SLOW_SCAN = 30.0


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    return folder


@contextmanager
def producer(client: redis.Redis, folder: Path, interval: float = SLOW_SCAN) -> Iterator[list[PassResult]]:
    """run_producer in a thread; yields the results of its passes once the first full pass is done."""
    settings = Settings(seeds_dir=folder, batch_size=10)
    stop = threading.Event()
    passes: list[PassResult] = []
    first = threading.Event()

    def on_pass(result: PassResult) -> None:
        passes.append(result)
        first.set()

    thread = threading.Thread(
        target=run_producer,
        kwargs={"connection": client, "settings": settings, "stop": stop, "interval": interval,
                "on_pass": on_pass},
    )  # fmt: skip
    thread.start()
    try:
        assert first.wait(10), "the first full pass did not finish"
        yield passes
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def pending_bodies(client: redis.Redis) -> dict[str, str]:
    """File name -> body of every article accepted (the pending ledger; no worker runs here)."""
    found = {}
    for raw in client.hvals(keys.PENDING):
        document = json.loads(raw)
        found[Path(document["url"].removeprefix("file://")).name] = document["body"]
    return found


def wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds it took for `condition` to hold; fails after `seconds`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


def test_new_files_are_enqueued_long_before_the_next_scan(redis_client: redis.Redis, seeds: Path) -> None:
    with producer(redis_client, seeds):
        (seeds / ".kursk.txt.tmp").write_text("North Korean troops moved to Kursk.\n", encoding="utf-8")
        os.rename(seeds / ".kursk.txt.tmp", seeds / "kursk.txt")  # the atomic way to publish a file
        renamed = wait_until(lambda: "kursk.txt" in pending_bodies(redis_client), 5)

        (seeds / "grain.txt").write_text("Grain exports resumed from Odesa.\n", encoding="utf-8")  # in place
        written = wait_until(lambda: "grain.txt" in pending_bodies(redis_client), 5)

    assert renamed < SLOW_SCAN / 6 and written < SLOW_SCAN / 6
    assert pending_bodies(redis_client) == {
        "kursk.txt": "North Korean troops moved to Kursk.\n",
        "grain.txt": "Grain exports resumed from Odesa.\n",
    }


@pytest.mark.parametrize("interval", [SLOW_SCAN, 0.2], ids=["watcher", "watcher-and-frequent-scans"])
def test_a_file_written_slowly_in_place_is_not_enqueued_half_written(
    redis_client: redis.Redis, seeds: Path, interval: float
) -> None:
    """Pauses longer than the full scan's settle time (1 s): only the writer's close says it is done."""
    paragraphs = [f"Paragraph {n} of a dispatch on the Kursk incursion.\n" for n in range(3)]
    with producer(redis_client, seeds, interval=interval):
        with open(seeds / "dispatch.txt", "w", encoding="utf-8") as handle:
            for paragraph in paragraphs:
                handle.write(paragraph)
                handle.flush()
                time.sleep(1.3)
            assert pending_bodies(redis_client) == {}, "nothing taken while the writer holds the file"
        wait_until(lambda: bool(pending_bodies(redis_client)), 5)
        time.sleep(0.5)  # and nothing more after it

    assert pending_bodies(redis_client) == {"dispatch.txt": "".join(paragraphs)}
    assert redis_client.hget(keys.STATS, "accepted") == b"1"


def test_a_trickle_goes_one_file_per_batch(redis_client: redis.Redis, seeds: Path) -> None:
    with producer(redis_client, seeds):
        for n in range(3):
            (seeds / f"brief{n}.txt").write_text(f"Brief number {n} on port strikes.\n", encoding="utf-8")
            wait_until(lambda n=n: len(pending_bodies(redis_client)) == n + 1, 5)  # type: ignore[misc]

    assert redis_client.llen("rq:queue:newswatch:articles") == 3, "no waiting for a fuller batch"


def test_restart_takes_nothing_again_but_a_changed_file_is_taken(
    redis_client: redis.Redis, seeds: Path
) -> None:
    (seeds / "old.txt").write_text("Taken by the first producer.\n", encoding="utf-8")
    past = time.time() - 60  # settled, so the first full pass takes it
    os.utime(seeds / "old.txt", (past, past))
    with producer(redis_client, seeds):
        wait_until(lambda: "old.txt" in pending_bodies(redis_client), 5)
    redis_client.delete(keys.PENDING)  # as if a worker processed it

    with producer(redis_client, seeds) as passes:
        time.sleep(0.3)
        assert all(not p.enqueued.accepted for p in passes), "a restart re-enqueues nothing already taken"
        (seeds / "old.txt").write_text(
            "Taken by the first producer.\nUpdate: a correction.\n", encoding="utf-8"
        )
        wait_until(lambda: "old.txt" in pending_bodies(redis_client), 5)

    assert pending_bodies(redis_client)["old.txt"].endswith("a correction.\n")


def test_same_content_under_a_new_name_is_a_duplicate(redis_client: redis.Redis, seeds: Path) -> None:
    with producer(redis_client, seeds) as passes:
        (seeds / "first.txt").write_text("Identical wire copy.\n", encoding="utf-8")
        wait_until(lambda: bool(pending_bodies(redis_client)), 5)
        (seeds / "copy.txt").write_text("Identical wire copy.\n", encoding="utf-8")
        wait_until(lambda: any(p.enqueued.duplicates for p in passes), 5)

    assert list(pending_bodies(redis_client)) == ["first.txt"]


def test_a_file_dropped_while_redis_is_down_is_enqueued_once_it_is_back(tmp_path: Path, seeds: Path) -> None:
    from structlog.testing import capture_logs

    from ..conftest import start_valkey  # type: ignore[misc]

    server_dir = tmp_path / "redis"
    server_dir.mkdir()
    server = start_valkey(server_dir)
    # No retries in the client: every call during the outage fails, as after the retries of connect()'s.
    client = redis.Redis(unix_socket_path=str(server_dir / "redis.sock"), retry=Retry(NoBackoff(), 0))
    try:
        with capture_logs() as logs, producer(client, seeds, interval=0.5):
            server.kill()
            server.wait()
            (seeds / "outage.txt").write_text("Filed while the queue was down.\n", encoding="utf-8")
            time.sleep(2.0)
            server = start_valkey(server_dir)
            wait_until(lambda: "outage.txt" in pending_bodies(client), 10)
        unreachable = [entry for entry in logs if entry["event"] == "redis unreachable, retrying"]
        assert 1 <= len(unreachable) <= 12, "retried about once a pass, not in a tight loop"
        assert list(pending_bodies(client)) == ["outage.txt"]
    finally:
        server.kill()
        server.wait()

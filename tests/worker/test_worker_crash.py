"""Fault injection: article workers killed with SIGKILL again and again under a steady stream of articles.

Real processes throughout: two `newswatch worker` article workers, one delivery worker, a webhook receiver
on 127.0.0.1 that verifies every request with the standardwebhooks library, the real producer code
enqueueing batches, and the reconciler as the producer loop runs it. Every alert that `newswatch match`
predicts for the same files must arrive exactly once in the alert log and at the receiver.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.alert_log import AlertLog
from newswatch.documents import read_path
from newswatch.queues import ARTICLES_QUEUE
from newswatch.settings import load_settings
from producer.enqueue import enqueue_documents
from producer.reconcile import reconcile
from worker.core.alerts import alert_id
from worker.delivery_admin import deliveries_settled

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WATCHLIST = """
[[topic]]
id = "kursk"
name = "Fighting in Kursk"
query = 'Kursk NEAR/8 (troops OR soldiers)'

[[topic]]
id = "grain"
name = "Grain corridor"
query = 'grain NEAR/6 (corridor OR ships)'
"""
FILLER_TEXT = (
    "Officials in the capital said on Tuesday that talks on trade, ports and energy would resume next week "
    "after a pause, while analysts warned that prices could rise before the winter"
)
FILLER = re.findall(r"\S+", FILLER_TEXT)
LEADS = [
    "North Korean troops were seen near Kursk, officials said.",
    "Ships carrying grain left Odesa through the corridor.",
    "Soldiers from Pyongyang were moved to Kursk overnight and grain ships waited.",
    "The council met to discuss the budget.",
]
ARTICLES = 300
BATCH = 12
KILLS = 10
KILL_EVERY = 2.0


def write_articles(folder: Path) -> list[Path]:
    rng = random.Random(11)
    paths = []
    for number in range(ARTICLES):
        lead = LEADS[number % len(LEADS)]
        paragraphs = "".join(
            "<p>" + " ".join(rng.choice(FILLER) for _ in range(rng.randint(40, 120))) + ".</p>\n"
            for _ in range(rng.randint(6, 14))
        )
        path = folder / f"story-{number:04}.html"  # HTML: extraction makes each batch take a while
        path.write_text(
            f"<html><head><title>Story {number}</title></head><body><nav>Home | World</nav><article>"
            f"<h1>Story {number}</h1><p>{lead}</p>\n{paragraphs}<p>Copy {number}.</p></article>"
            "<footer>Contact us</footer></body></html>",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def predicted_alerts(folder: Path, env: dict[str, str]) -> set[str]:
    """The alert ids `newswatch match --json` predicts for the files (no Redis involved)."""
    done = subprocess.run(
        [sys.executable, "-m", "newswatch", "match", "--json", str(folder)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ids = set()
    for line in done.stdout.splitlines():
        result = json.loads(line)
        for match in result["matches"]:
            ids.add(alert_id(match["topic"], result["article"]["id"]))
    return ids


class Workers:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir, self.started = env, log_dir, 0
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, queue: str = "articles") -> None:
        self.started += 1
        log = open(self.log_dir / f"{name}-{self.started}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "newswatch", "worker", "--queue", queue, "--log-level", "WARNING"],
            env=self.env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_workers_lose_and_duplicate_nothing(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path, receiver_factory: Callable[..., object]
) -> None:
    receiver = receiver_factory(secret=SECRET)
    folder = tmp_path / "seeds"
    folder.mkdir()
    paths = write_articles(folder)
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NEWSWATCH_WATCHLIST": str(watchlist),
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
        "NEWSWATCH_WEBHOOK_URL": receiver.url,  # type: ignore[attr-defined]
        "NEWSWATCH_WEBHOOK_SECRET": SECRET,
        "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
        "NEWSWATCH_WEBHOOK_RETRIES": "1,1,2",
        "NEWSWATCH_BATCH_SIZE": str(BATCH),
        "PYTHONPATH": str(ROOT),
    }
    expected = predicted_alerts(folder, env)
    assert len(expected) > ARTICLES // 2
    settings = load_settings(env)
    workers = Workers(env, tmp_path)
    workers.start("victim")
    workers.start("steady")
    workers.start("delivery", "deliveries")
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    stop = threading.Event()

    def produce() -> None:  # a steady stream over the kills, then the reconciler as the producer loop runs it
        pause = (KILLS * KILL_EVERY + 2) / (len(paths) / BATCH)
        for start in range(0, len(paths), BATCH):
            documents = [read_path(path) for path in paths[start : start + BATCH]]
            enqueue_documents(redis_client, documents, settings, source="test")
            time.sleep(pause)
        while not stop.wait(1.0):
            reconcile(redis_client, settings)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    caught = 0
    snapshots: list[str] = []  # what a failure reports: how the settling went
    try:
        time.sleep(1.0)
        for _ in range(KILLS):
            time.sleep(KILL_EVERY * random.uniform(0.5, 1.5))
            caught += queue.started_job_registry.get_job_count(cleanup=False) > 0
            workers.kill("victim")
            workers.start("victim")
        last_kill = time.monotonic()
        polls = 0
        while time.monotonic() - last_kill < 150:
            if polls % 4 == 0:  # every ~2 s
                snapshots.append(snapshot(redis_client, queue, receiver, time.monotonic() - last_kill))
            polls += 1
            if redis_client.hlen(keys.PENDING) == 0 and deliveries_settled(redis_client):
                accepted = {r.webhook_id for r in receiver.accepted}  # type: ignore[attr-defined]
                if expected <= accepted:
                    break
            time.sleep(0.5)
        settled_after = time.monotonic() - last_kill
    finally:
        stop.set()
        workers.stop_all()
    print(f"{KILLS} kills ({caught} with a job running); all settled {settled_after:.0f} s after the last")
    snapshots.append(snapshot(redis_client, queue, receiver, settled_after))
    story = "\n".join(snapshots)
    assert redis_client.hlen(keys.PENDING) == 0, f"accepted articles were lost\n{story}"
    assert redis_client.hlen(keys.FAILED) == 0, f"{redis_client.hgetall(keys.FAILED)}\n{story}"
    logged = Counter(entry.alert["id"] for entry in AlertLog(redis_client).latest())
    assert set(logged) == expected, story  # every predicted alert, nothing else
    assert max(logged.values()) == 1, story  # none twice in the log
    received = Counter(r.webhook_id for r in receiver.accepted)  # type: ignore[attr-defined]
    assert set(received) == expected and max(received.values()) == 1, story  # each delivered exactly once
    # A job caught by a kill comes back within about half a minute (heartbeat TTL + a maintenance pass);
    # 120 s leaves room for a slow machine.
    assert settled_after < 120, story


def snapshot(client: redis.Redis, queue: Queue, receiver: object, since: float) -> str:
    """One line of state: pending articles, jobs by where they are, alerts the receiver accepted."""
    accepted = len({r.webhook_id for r in receiver.accepted})  # type: ignore[attr-defined]
    return (
        f"{since:5.1f} s: pending {client.hlen(keys.PENDING)}, failed {client.hlen(keys.FAILED)}; jobs "
        f"queued {len(queue)}, intermediate {len(queue.intermediate_queue.get_job_ids())}, "
        f"started {queue.started_job_registry.get_job_count(cleanup=False)}, "
        f"scheduled {queue.scheduled_job_registry.get_job_count(cleanup=False)}, "
        f"failed {queue.failed_job_registry.get_job_count(cleanup=False)}; alerts accepted {accepted}, "
        f"deliveries settled {deliveries_settled(client)}"
    )

"""process_batch on a real Redis with a real RQ SimpleWorker: per-article isolation, retries, idempotence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.alert_log import AlertLog
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB
from worker import jobs
from worker.core.alerts import alert_id
from worker.runner import build_worker

WATCHLIST = """
[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '("North Korean" OR Pyongyang) NEAR/12 Kursk'

[[topic]]
id = "grain"
name = "Black Sea grain"
query = 'grain NEAR/5 (corridor OR shipments)'
"""

KURSK = (
    "Kursk front quiet for North Korean units\n\n"
    "Ukrainian officers said the North Korean soldiers deployed in the Kursk region were pulled back "
    "after weeks of heavy losses. Pyongyang has not commented."
)
GRAIN = (
    "Grain corridor reopens\n\nShips loaded with grain left Odesa as shipments through the corridor resumed."
)
WEATHER = "Storm in the Alps\n\nSnow closed three passes in Switzerland on Tuesday."


def document(name: str, body: str) -> Document:
    return Document(
        url=f"file:///seeds/{name}", format="text", body=body, source=Source(kind="file", name="seeds")
    )


@pytest.fixture(autouse=True)
def worker_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[None]:
    """Each test: its own watchlist and a fresh per-process worker state."""
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    monkeypatch.setenv("NEWSWATCH_WATCHLIST", str(watchlist))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setattr(jobs, "_state", None)
    yield


def enqueue(client: redis.Redis, documents: list[Document]) -> str:
    """What the producer does: the ledger entries and the batch job (here without the transaction)."""
    client.hset(keys.PENDING, mapping={d.article_id: json.dumps(d.to_json()) for d in documents})
    queue = Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer)
    return queue.enqueue(PROCESS_BATCH_JOB, [d.to_json() for d in documents]).id


def drain(client: redis.Redis) -> None:
    build_worker(client, ARTICLES_QUEUE).work(burst=True, with_scheduler=False)


def test_a_batch_makes_one_alert_per_matching_article(redis_client: redis.Redis) -> None:
    docs = [document("kursk.txt", KURSK), document("grain.md", GRAIN), document("weather.txt", WEATHER)]
    job_id = enqueue(redis_client, docs)
    drain(redis_client)
    alerts = [entry.alert for entry in AlertLog(redis_client).latest()]
    assert sorted((a["topic"]["id"], a["article"]["id"]) for a in alerts) == sorted(
        [("nk-troops-kursk", docs[0].article_id), ("grain", docs[1].article_id)]
    )
    kursk = next(a for a in alerts if a["topic"]["id"] == "nk-troops-kursk")
    assert kursk["article"]["title"] == "Kursk front quiet for North Korean units"
    assert kursk["article"]["url"] == "file:///seeds/kursk.txt"
    assert "North Korean" in kursk["snippet"]
    assert kursk["evidence"]
    assert kursk["matched_at"].endswith("Z")
    assert kursk["article"]["language"] == "en"  # detected for matching articles only, but detected
    assert redis_client.hlen(keys.PENDING) == 0
    assert redis_client.hget(keys.STATS, "processed") == b"3"
    summary = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer).fetch_job(job_id)
    assert summary is not None
    assert summary.return_value()["processed"] == 3


def test_alert_ids_are_derived_from_topic_and_article(redis_client: redis.Redis) -> None:
    doc = document("kursk.txt", KURSK)
    enqueue(redis_client, [doc])
    drain(redis_client)
    [entry] = AlertLog(redis_client).latest()
    expected = "al_" + hashlib.sha256(f"nk-troops-kursk\x00{doc.article_id}".encode()).hexdigest()[:24]
    assert entry.alert["id"] == expected == alert_id("nk-troops-kursk", doc.article_id)


def test_running_the_same_batch_again_adds_no_alert(redis_client: redis.Redis) -> None:
    docs = [document("kursk.txt", KURSK), document("grain.md", GRAIN)]
    enqueue(redis_client, docs)
    drain(redis_client)
    before = [entry.alert for entry in AlertLog(redis_client).latest()]
    # a re-run job (RQ delivers at least once) and a re-ingest whose done markers expired
    enqueue(redis_client, docs)
    drain(redis_client)
    for doc in docs:
        redis_client.delete(keys.done(doc.article_id))
    enqueue(redis_client, docs)
    drain(redis_client)
    assert [entry.alert for entry in AlertLog(redis_client).latest()] == before
    assert redis_client.hget(keys.STATS, "alerts") == b"2"
    assert redis_client.hlen(keys.PENDING) == 0


def test_an_edited_file_is_processed_again(redis_client: redis.Redis) -> None:
    enqueue(redis_client, [document("story.txt", WEATHER)])
    drain(redis_client)
    assert AlertLog(redis_client).latest() == []
    enqueue(redis_client, [document("story.txt", KURSK)])  # same path, new content
    drain(redis_client)
    assert [entry.alert["topic"]["id"] for entry in AlertLog(redis_client).latest()] == ["nk-troops-kursk"]


def test_a_poison_article_fails_alone_and_is_retried_alone(redis_client: redis.Redis) -> None:
    good = [document("kursk.txt", KURSK), document("grain.md", GRAIN)]
    poison = document("empty.txt", "   \n  ")  # no article text: extraction fails
    enqueue(redis_client, [good[0], poison, good[1]])
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    worker = build_worker(redis_client, ARTICLES_QUEUE)
    worker.work(burst=True, with_scheduler=False, max_jobs=1)
    # the batch finished; its good articles are done, the poison one waits in a job of its own
    assert len(AlertLog(redis_client)) == 2
    [retry_id] = queue.job_ids
    retry = queue.fetch_job(retry_id)
    assert retry is not None
    assert list(retry.args) == [[poison.to_json()]]
    assert retry.meta[jobs.ATTEMPT_META] == 2
    assert redis_client.hkeys(keys.PENDING) == [poison.article_id.encode()]
    record = json.loads(redis_client.hget(keys.FAILED, poison.article_id))  # type: ignore[arg-type]
    assert "no article text" in record["error"] and record["final"] is False

    drain(redis_client)  # attempts 2 and 3, then it is failed for good
    record = json.loads(redis_client.hget(keys.FAILED, poison.article_id))  # type: ignore[arg-type]
    assert record["attempts"] == jobs.MAX_ATTEMPTS and record["final"] is True
    assert record["article"]["url"] == "file:///seeds/empty.txt"
    assert redis_client.hlen(keys.PENDING) == 0
    assert queue.count == 0
    stats = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.STATS).items()}
    assert stats["processed"] == 2 and stats["failed"] == 1 and stats["retried"] == jobs.MAX_ATTEMPTS - 1
    assert len(queue.failed_job_registry) == 0  # no RQ job failed: the failure is the article's


def test_a_malformed_message_is_recorded_not_fatal(redis_client: redis.Redis) -> None:
    good = document("kursk.txt", KURSK)
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    queue.enqueue(PROCESS_BATCH_JOB, [{"unexpected": "shape"}, good.to_json()])
    drain(redis_client)
    assert len(AlertLog(redis_client)) == 1
    [(article_id, raw)] = redis_client.hgetall(keys.FAILED).items()
    assert article_id.startswith(b"a_")
    assert "TypeError" in json.loads(raw)["error"]


def test_a_retry_that_succeeds_clears_the_failure(redis_client: redis.Redis, tmp_path: Path) -> None:
    doc = document("kursk.txt", KURSK)
    redis_client.hset(
        keys.FAILED, doc.article_id, json.dumps({"article": doc.to_json(), "error": "x", "attempts": 1})
    )
    enqueue(redis_client, [doc])
    drain(redis_client)
    assert redis_client.hlen(keys.FAILED) == 0


def test_a_changed_watchlist_is_compiled_again(redis_client: redis.Redis, tmp_path: Path) -> None:
    enqueue(redis_client, [document("weather.txt", WEATHER)])
    drain(redis_client)
    (tmp_path / "watchlist.toml").write_text(
        WATCHLIST + '\n[[topic]]\nid = "alps"\nname = "Alpine weather"\nquery = "snow AND passes"\n',
        encoding="utf-8",
    )
    enqueue(redis_client, [document("weather-2.txt", WEATHER + " More snow is due.")])
    drain(redis_client)
    assert [entry.alert["topic"]["id"] for entry in AlertLog(redis_client).latest()] == ["alps"]


def test_a_file_changed_while_its_old_version_is_processed_stays_pending(redis_client: redis.Redis) -> None:
    old = document("story.txt", WEATHER)
    enqueue(redis_client, [old])
    new = document("story.txt", KURSK)  # same path (same article id), new content, accepted meanwhile
    redis_client.hset(keys.PENDING, new.article_id, json.dumps(new.to_json()))
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    build_worker(redis_client, ARTICLES_QUEUE).work(burst=True, with_scheduler=False, max_jobs=1)
    assert redis_client.hkeys(keys.PENDING) == [new.article_id.encode()]  # the new version still waits
    queue.enqueue(PROCESS_BATCH_JOB, [new.to_json()])
    drain(redis_client)
    assert redis_client.hlen(keys.PENDING) == 0
    assert [entry.alert["topic"]["id"] for entry in AlertLog(redis_client).latest()] == ["nk-troops-kursk"]


def test_a_timed_out_article_fails_alone_and_the_rest_goes_on(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page that takes longer than the job timeout: that article fails, the others are not lost."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()  # never answers
    monkeypatch.setenv("NEWSWATCH_ALLOWED_HOSTS", "127.0.0.1")
    slow = Document(url=f"http://127.0.0.1:{server.getsockname()[1]}/slow", format="url", body="")
    batch = [document("kursk.txt", KURSK), slow, document("grain.md", GRAIN), document("alps.txt", WEATHER)]
    redis_client.hset(keys.PENDING, mapping={d.article_id: json.dumps(d.to_json()) for d in batch})
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    job = queue.enqueue(PROCESS_BATCH_JOB, [d.to_json() for d in batch], job_timeout=2)
    try:
        build_worker(redis_client, ARTICLES_QUEUE).work(burst=True, with_scheduler=False, max_jobs=1)
        summary = job.latest_result().return_value  # type: ignore[union-attr]
        assert summary["processed"] == 1 and "continued_in" in summary
        record = json.loads(redis_client.hget(keys.FAILED, slow.article_id))  # type: ignore[arg-type]
        assert "timed out" in record["error"]
        assert len(AlertLog(redis_client)) == 1  # the article before the slow one is recorded
        build_worker(redis_client, ARTICLES_QUEUE).work(burst=True, with_scheduler=False, max_jobs=1)
        assert len(AlertLog(redis_client)) == 2  # the rest of the batch went on in a job of its own
        assert redis_client.hkeys(keys.PENDING) == [slow.article_id.encode()]  # retried alone, later
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize(
    "name, body, fmt",
    [
        ("nested.html", "<div>" * 200_000 + "Kursk" + "</div>" * 200_000, "html"),
        ("one-line.txt", "Snow fell on the Alpine passes " * 330_000 + "Kursk", "text"),  # ~10 MB, one line
        ("broken.html", "<html><body>" + "<p><b><i><table><tr><td>" * 20_000 + "\x00\ufffd" * 1000, "html"),
    ],
)
def test_pathological_input_fails_alone_or_passes_and_never_blocks_the_batch(
    redis_client: redis.Redis, name: str, body: str, fmt: str
) -> None:
    hostile = Document(url=f"file:///seeds/{name}", format=fmt, body=body)  # type: ignore[arg-type]
    good = document("kursk.txt", KURSK)
    enqueue(redis_client, [hostile, good])
    for _ in range(jobs.MAX_ATTEMPTS):
        drain(redis_client)
    assert AlertLog(redis_client).entry_of(alert_id("nk-troops-kursk", good.article_id)) is not None
    assert redis_client.hlen(keys.PENDING) == 0  # processed, or failed for good with its error
    raw = redis_client.hget(keys.FAILED, hostile.article_id)
    if raw is not None:
        record = json.loads(raw)
        assert record["final"] and record["error"]

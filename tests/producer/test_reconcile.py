"""The reconciler on a real Redis: pending articles whose job was lost come back, once, and not forever."""

from __future__ import annotations

import json

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.messages import Document, Source
from newswatch.queues import ARTICLES_QUEUE
from newswatch.settings import Settings
from producer.enqueue import enqueue_documents
from producer.reconcile import MAX_RECONCILES, reconcile

SETTINGS = Settings(batch_size=2, dedup_window=600, job_timeout=30)


def article(number: int) -> Document:
    return Document(
        url=f"https://news.example.org/{number}",
        format="text",
        body=f"Dispatch {number}: convoys were seen near the border at dawn.",
        source=Source(kind="feed"),
    )


def lose_every_job(client: redis.Redis) -> None:
    """What a kill between RQ's pop and its "started" record leaves: the ledger, no job anywhere."""
    queue = Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer)
    for job_id in queue.get_job_ids():
        queue.remove(job_id)


def passes(client: redis.Redis, *times: float) -> list:
    results = []
    for at in times:
        client.delete(keys.RECONCILE_LEASE)  # as if the interval had passed
        results.append(reconcile(client, SETTINGS, grace=30, now=at))
    return results


def queued_articles(client: redis.Redis) -> list[str]:
    queue = Queue(ARTICLES_QUEUE, connection=client, serializer=JSONSerializer)
    return [Document.from_json(d).article_id for job in queue.get_jobs() for d in job.args[0]]


def test_articles_with_a_queued_job_are_left_alone(redis_client: redis.Redis) -> None:
    enqueue_documents(redis_client, [article(n) for n in range(5)], SETTINGS)
    first, later = passes(redis_client, 1000.0, 2000.0)
    assert first.pending == 5 and first.suspects == 0 and later.requeued == []
    assert len(queued_articles(redis_client)) == 5  # nothing added


def test_a_lost_job_is_re_enqueued_after_the_grace_period_only(redis_client: redis.Redis) -> None:
    documents = [article(n) for n in range(3)]
    enqueue_documents(redis_client, documents, SETTINGS)
    lose_every_job(redis_client)
    first, early, due = passes(redis_client, 1000.0, 1010.0, 1031.0)
    assert first.suspects == 3 and first.requeued == []
    assert early.requeued == []  # first seen 10 s ago: maybe a job in flight
    assert sorted(due.requeued) == sorted(d.article_id for d in documents)
    assert sorted(queued_articles(redis_client)) == sorted(d.article_id for d in documents)
    queue = Queue(ARTICLES_QUEUE, connection=redis_client, serializer=JSONSerializer)
    assert [len(job.args[0]) for job in queue.get_jobs()] == [2, 1]  # batches of settings.batch_size
    [after] = passes(redis_client, 1100.0)
    assert after.requeued == [] and after.suspects == 0  # carried by the new jobs now
    assert int(redis_client.hget(keys.STATS, keys.STAT_RECONCILED)) == 3  # type: ignore[arg-type]


def test_the_lease_makes_one_pass_per_interval_across_producers(redis_client: redis.Redis) -> None:
    enqueue_documents(redis_client, [article(1)], SETTINGS)
    assert reconcile(redis_client, SETTINGS, interval=60) is not None
    assert reconcile(redis_client, SETTINGS, interval=60) is None  # a second producer, same interval


def test_an_article_whose_job_keeps_dying_is_failed_for_good(redis_client: redis.Redis) -> None:
    doc = article(7)
    enqueue_documents(redis_client, [doc], SETTINGS)
    at = 1000.0
    for _ in range(MAX_RECONCILES):
        lose_every_job(redis_client)
        passes(redis_client, at, at + 31)
        at += 100
    lose_every_job(redis_client)
    *_, last = passes(redis_client, at, at + 31)
    assert last.failed == [doc.article_id] and last.requeued == []
    assert redis_client.hlen(keys.PENDING) == 0
    record = json.loads(redis_client.hget(keys.FAILED, doc.article_id))  # type: ignore[arg-type]
    assert record["final"] and "lost" in record["error"] and record["article"]["url"] == doc.url

"""Reconcile the pending ledger with RQ: re-enqueue accepted articles whose job was lost in a crash.

RQ loses or gives up on jobs in ways no retry covers (DESIGN.md, "Facts that shape the design"): a job
killed between the pop and its "started" record, one marked FAILED "stuck in intermediate queue", one that
turned FAILED (AbandonedJobError) after its retries. Its articles stay in newswatch:pending forever.

One pass: list the articles that some live job still carries (queued, in the intermediate list, started or
scheduled: the jobs' `meta.articles`, else their argument); a pending article carried by none is a suspect,
remembered with the time it was first seen so (newswatch:reconcile:suspects); a suspect still uncarried
`grace` seconds later is re-enqueued from its ledger entry, in a job of its own batch. A pass runs under a
lease (SET NX PX), so several producers make one pass per interval between them. Everything is idempotent:
re-enqueueing an article that was in fact being processed costs one skip (its done marker). An article
re-enqueued MAX_RECONCILES times (its job keeps dying: a worker crashing on it) is failed for good, with
that reason, and shows in `newswatch status`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.logs import get_logger
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB
from newswatch.settings import Settings

log = get_logger(__name__)

#: Seconds between two passes (across all producers: the lease's lifetime).
RECONCILE_INTERVAL = 10.0
#: Seconds a pending article must stay without a job before it is re-enqueued.
RECONCILE_GRACE = 30.0
#: Re-enqueues of one article before it is failed for good.
MAX_RECONCILES = 3
JOB_RETRIES = 2
RESULT_TTL = 600


@dataclass
class ReconcileResult:
    """What one pass did (None from `reconcile` when another process holds the lease)."""

    pending: int = 0
    suspects: int = 0
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def live_articles(connection: redis.Redis) -> set[str]:
    """Article ids carried by a job that is queued, being popped, running or scheduled."""
    queue = Queue(ARTICLES_QUEUE, connection=connection, serializer=JSONSerializer)
    # Read in the order a job moves (queue -> intermediate -> started), so a job moving meanwhile is seen
    # in one of them; the grace period covers what remains (a retry job made while we read).
    job_ids = list(queue.get_job_ids())
    job_ids += queue.intermediate_queue.get_job_ids()
    job_ids += queue.started_job_registry.get_job_ids(cleanup=False)
    job_ids += queue.scheduled_job_registry.get_job_ids(cleanup=False)
    if not job_ids:
        return set()
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(queue.job_class.key_for(job_id), "meta")
        metas = pipe.execute()
    articles: set[str] = set()
    without_meta = []
    for job_id, raw in zip(job_ids, metas, strict=True):
        ids = _meta_articles(raw)
        if ids is None:
            without_meta.append(job_id)
        else:
            articles.update(ids)
    for job in queue.job_class.fetch_many(without_meta, connection=connection, serializer=JSONSerializer):
        if job is None:
            continue
        try:
            articles.update(_article_ids_of(job.args[0]))
        except Exception:  # not a process_batch job: it carries no article
            continue
    return articles


def reconcile(
    connection: redis.Redis,
    settings: Settings,
    *,
    grace: float = RECONCILE_GRACE,
    interval: float = RECONCILE_INTERVAL,
    now: float | None = None,
) -> ReconcileResult | None:
    """One reconciliation pass unless another process made one within `interval`; what it did."""
    if not connection.set(keys.RECONCILE_LEASE, uuid.uuid4().hex, nx=True, px=max(1, int(interval * 1000))):
        return None
    now = time.time() if now is None else now
    result = ReconcileResult()
    pending = [_text(article_id) for article_id in connection.hkeys(keys.PENDING)]
    result.pending = len(pending)
    if not pending:
        connection.delete(keys.RECONCILE_SUSPECTS)
        return result
    carried = live_articles(connection)
    earlier = {_text(k): float(v) for k, v in connection.hgetall(keys.RECONCILE_SUSPECTS).items()}
    suspects = {
        article_id: earlier.get(article_id, now) for article_id in pending if article_id not in carried
    }
    due = [article_id for article_id, since in suspects.items() if now - since >= grace]
    for article_id in due:
        del suspects[article_id]
    with connection.pipeline(transaction=True) as pipe:
        pipe.delete(keys.RECONCILE_SUSPECTS)
        if suspects:
            pipe.hset(keys.RECONCILE_SUSPECTS, mapping={k: repr(v) for k, v in suspects.items()})
        pipe.execute()
    result.suspects = len(suspects)
    if due:
        _requeue(connection, settings, due, result)
    return result


def _requeue(
    connection: redis.Redis, settings: Settings, article_ids: list[str], result: ReconcileResult
) -> None:
    """Re-enqueue the still-pending ones in batches; fail for good those re-enqueued too often."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.PENDING, article_ids)
        pipe.hmget(keys.RECONCILE_ATTEMPTS, article_ids)
        raws, attempts = pipe.execute()
    documents: list[dict[str, Any]] = []
    requeued: list[str] = []
    queue = Queue(ARTICLES_QUEUE, connection=connection, serializer=JSONSerializer)
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()  # explicit, so that rq's enqueue on this pipeline queues its commands (no WATCH)
        for article_id, raw, count in zip(article_ids, raws, attempts, strict=True):
            if raw is None:
                continue  # processed meanwhile
            tries = int(count or 0)
            try:
                document = json.loads(raw)
            except ValueError:
                document = None
            if tries >= MAX_RECONCILES or not isinstance(document, dict):
                error = (
                    f"its job was lost {tries} times (a worker died on it each time?); not retried again"
                    if isinstance(document, dict)
                    else "unreadable ledger entry"
                )
                record = {
                    "article": document if isinstance(document, dict) else {},
                    "error": error,
                    "attempts": tries,
                    "last_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "final": True,
                    "job_id": None,
                }
                pipe.hset(keys.FAILED, article_id, json.dumps(record, ensure_ascii=False))
                pipe.hdel(keys.PENDING, article_id)
                pipe.hdel(keys.RECONCILE_ATTEMPTS, article_id)
                pipe.hincrby(keys.STATS, keys.STAT_FAILED, 1)
                result.failed.append(article_id)
                continue
            pipe.hincrby(keys.RECONCILE_ATTEMPTS, article_id, 1)
            documents.append(document)
            requeued.append(article_id)
        size = max(1, settings.batch_size)
        for start in range(0, len(documents), size):
            chunk = documents[start : start + size]
            queue.enqueue_call(
                PROCESS_BATCH_JOB,
                args=(chunk,),
                timeout=settings.job_timeout,
                result_ttl=RESULT_TTL,
                retry=Retry(max=JOB_RETRIES),
                description=f"{PROCESS_BATCH_JOB}: {len(chunk)} articles re-enqueued by the reconciler",
                meta={"source": "reconcile", "articles": requeued[start : start + size]},
                pipeline=pipe,
            )
        if requeued:
            pipe.hincrby(keys.STATS, keys.STAT_RECONCILED, len(requeued))
        pipe.expire(keys.RECONCILE_ATTEMPTS, settings.dedup_window)
        pipe.execute()
    result.requeued = requeued
    if requeued:
        log.warning("pending articles without a job re-enqueued", articles=len(requeued))
    if result.failed:
        log.error("articles whose job kept getting lost failed for good", articles=len(result.failed))


def _meta_articles(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    articles = meta.get("articles") if isinstance(meta, dict) else None
    return [str(a) for a in articles] if isinstance(articles, list) else None


def _article_ids_of(documents: Any) -> list[str]:
    from newswatch.messages import Document

    return [Document.from_json(document).article_id for document in documents]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

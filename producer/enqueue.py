"""Hand documents to the workers: drop what was seen lately, batch the rest, enqueue them with the ledger."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from newswatch import keys
from newswatch.logs import get_logger
from newswatch.messages import Document
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB
from newswatch.settings import Settings

log = get_logger(__name__)

#: A batch job whose work horse died is run again this many times (rq re-enqueues it at once); every
#: article is idempotent on the worker side (done marker, deterministic alert ids), so a re-run is harmless.
JOB_RETRIES = 2
#: How long a finished batch job's record stays in Redis; the outcome that matters lives in our own keys.
RESULT_TTL = 600


@dataclass
class EnqueueResult:
    """What one call did: the documents accepted (now pending), those skipped as seen, and the jobs made."""

    accepted: list[Document] = field(default_factory=list)
    duplicates: list[Document] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)

    def merge(self, other: EnqueueResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.job_ids += other.job_ids


def articles_queue(connection: redis.Redis, settings: Settings) -> Queue:
    """The RQ queue of article batches, with the JSON serializer and the configured job timeout."""
    return Queue(
        ARTICLES_QUEUE,
        connection=connection,
        serializer=JSONSerializer,
        default_timeout=settings.job_timeout,
    )


def dedup_keys(document: Document) -> list[str]:
    """The "seen" keys that make a document a duplicate of an earlier one.

    A web URL identifies an article whatever its text (a feed entry re-published with a new timestamp is the
    same article); a file is identified by its content, so that an edited file counts as new. A document
    without a body (a URL the worker will fetch) has no content to compare.
    """
    found = []
    if document.url and not document.url.startswith(("file:", "stdin:")):
        found.append(keys.seen_url(_sha256(document.url)))
    if document.body:
        found.append(keys.seen_hash(document.content_hash))
    return found


def enqueue_documents(
    connection: redis.Redis,
    documents: Iterable[Document],
    settings: Settings,
    *,
    source: str = "cli",
    batch_size: int | None = None,
) -> EnqueueResult:
    """Enqueue the documents not seen within settings.dedup_window, in jobs of up to batch_size articles.

    Each batch is one transaction: its "seen" keys, its pending-ledger entries and its RQ job are written
    together or not at all, so an accepted article always has a job and a ledger entry, and an article whose
    enqueue failed is not marked as seen. `source` labels the jobs and log lines (e.g. "seeds", "cli").
    """
    size = max(1, batch_size or settings.batch_size)
    result = EnqueueResult()
    candidates = _first_sightings(connection, list(documents), result)
    queue = articles_queue(connection, settings)
    for batch in _chunks(candidates, size):
        accepted, duplicates, job_id = _enqueue_batch(connection, queue, batch, settings, source)
        result.accepted += accepted
        result.duplicates += duplicates
        if job_id:
            result.job_ids.append(job_id)
    if result.duplicates:
        connection.hincrby(keys.STATS, "duplicates", len(result.duplicates))
    log.info(
        "enqueued",
        source=source,
        accepted=len(result.accepted),
        duplicates=len(result.duplicates),
        jobs=len(result.job_ids),
    )
    return result


def _first_sightings(
    connection: redis.Redis, documents: list[Document], result: EnqueueResult
) -> list[Document]:
    """Documents whose keys are neither in Redis nor shared with an earlier document of this call."""
    all_keys = [dedup_keys(document) for document in documents]
    with connection.pipeline(transaction=False) as pipe:
        for document_keys in all_keys:
            if document_keys:
                pipe.exists(*document_keys)
            else:
                pipe.echo("0")
        counts = pipe.execute()
    taken: set[str] = set()
    fresh = []
    for document, document_keys, count in zip(documents, all_keys, counts, strict=True):
        if int(count) or taken.intersection(document_keys):
            result.duplicates.append(document)
            continue
        taken.update(document_keys)
        fresh.append(document)
    return fresh


def _enqueue_batch(
    connection: redis.Redis, queue: Queue, batch: list[Document], settings: Settings, source: str
) -> tuple[list[Document], list[Document], str | None]:
    """One transaction: re-check the seen keys under WATCH, then mark, ledger and enqueue the batch."""
    batch_keys = [dedup_keys(document) for document in batch]
    watched = sorted({key for document_keys in batch_keys for key in document_keys})
    with connection.pipeline(transaction=True) as pipe:
        while True:
            try:
                if watched:
                    pipe.watch(*watched)
                seen = (
                    {key for key, value in zip(watched, pipe.mget(watched), strict=True) if value}
                    if watched
                    else set()
                )
                accepted = [d for d, ks in zip(batch, batch_keys, strict=True) if not seen.intersection(ks)]
                duplicates = [d for d, ks in zip(batch, batch_keys, strict=True) if seen.intersection(ks)]
                if not accepted:
                    pipe.reset()
                    return [], duplicates, None
                pipe.multi()
                for document in accepted:
                    for key in dedup_keys(document):
                        pipe.set(key, document.article_id, ex=settings.dedup_window)
                pipe.hset(
                    keys.PENDING,
                    mapping={d.article_id: json.dumps(d.to_json(), ensure_ascii=False) for d in accepted},
                )
                pipe.hincrby(keys.STATS, "accepted", len(accepted))
                job = queue.enqueue_call(
                    PROCESS_BATCH_JOB,
                    args=([d.to_json() for d in accepted],),
                    timeout=settings.job_timeout,
                    result_ttl=RESULT_TTL,
                    retry=Retry(max=JOB_RETRIES),
                    description=f"{PROCESS_BATCH_JOB}: {len(accepted)} articles from {source}",
                    meta={"source": source, "articles": [d.article_id for d in accepted]},
                    pipeline=pipe,
                )
                pipe.execute()
                log.debug("batch enqueued", job_id=job.id, source=source, articles=len(accepted))
                return accepted, duplicates, job.id
            except redis.WatchError:
                continue  # another producer marked one of these keys meanwhile: decide again


def pending_among(connection: redis.Redis, article_ids: Sequence[str]) -> set[str]:
    """The given article ids that are still in the pending ledger."""
    if not article_ids:
        return set()
    flags: list[Any] = connection.hmget(keys.PENDING, list(article_ids))
    return {article_id for article_id, value in zip(article_ids, flags, strict=True) if value is not None}


def _chunks(items: list[Document], size: int) -> Iterator[list[Document]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

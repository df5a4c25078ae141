"""The RQ job of the articles queue: process a batch of documents, each article on its own.

For each article: skip it if it is done (same content already processed); extract; match against the
watchlist; append one alert per matched topic to the alert log (atomic and deduplicated by alert id);
mark it done and drop it from the pending ledger. An article that fails is recorded in newswatch:failed
with its error and retried alone in a new single-article job (bounded attempts, delayed when an RQ
scheduler runs); it never fails the rest of the batch. Every step is idempotent, because RQ runs a job
again after a crash (at least once): a re-run skips done articles and cannot add a second alert.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import structlog
from rq import Queue, Retry, get_current_job
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from newswatch import keys
from newswatch.alert_log import AlertLog
from newswatch.logs import get_logger
from newswatch.messages import Document
from newswatch.queues import ARTICLES_QUEUE, PROCESS_BATCH_JOB
from newswatch.settings import Settings, load_settings
from worker.core.alerts import build_alerts

log = get_logger(__name__)

#: Attempts per article in all (the batch's try included), then it is failed for good (visible in status).
MAX_ATTEMPTS = 3
#: Delay before attempt 2, 3, ... when a scheduler runs (`newswatch worker` starts one); else at once.
RETRY_DELAYS = (10, 60)
#: The job meta key holding which attempt a single-article retry job is.
ATTEMPT_META = "newswatch_attempt"
#: Retries of a whole job whose worker died (RQ re-enqueues it); idempotent articles make this harmless.
JOB_RETRIES = 2
RESULT_TTL = 600


class WatchlistUnavailable(RuntimeError):
    """The watchlist cannot be loaded and there is no earlier version to keep using."""


class MatcherCache:
    """The compiled watchlist of this worker process, compiled again when the file changes.

    An edit that breaks the watchlist is logged and the last good version stays in use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._matcher: Any = None

    def get(self) -> Any:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError as error:
            if self._matcher is not None:
                return self._matcher
            raise WatchlistUnavailable(f"{self.path}: {error.strerror or error}") from None
        if stamp != self._stamp:
            self._reload(stamp)
        return self._matcher

    def _reload(self, stamp: tuple[int, int]) -> None:
        from worker.core.matcher import Matcher
        from worker.core.watchlist import load_watchlist

        started = time.perf_counter()
        try:
            matcher = Matcher(load_watchlist(self.path))
        except Exception as error:
            if self._matcher is None:
                message = str(error) if str(self.path) in str(error) else f"{self.path}: {error}"
                raise WatchlistUnavailable(message) from error
            log.error(
                "watchlist not reloaded, keeping the previous one", path=str(self.path), error=str(error)
            )
            self._stamp = stamp  # do not retry the same broken file on every job
            return
        self._matcher, self._stamp = matcher, stamp
        log.info("watchlist compiled", path=str(self.path), seconds=round(time.perf_counter() - started, 3))


@dataclass
class WorkerState:
    """What a worker process keeps between jobs: settings, the compiled watchlist, the alert log client."""

    settings: Settings
    matchers: MatcherCache
    alert_logs: dict[int, AlertLog] = field(default_factory=dict)
    finish_scripts: dict[int, Any] = field(default_factory=dict)

    def finish_script(self, connection: redis.Redis) -> Any:
        """The registered FINISH_LUA script of this connection (EVALSHA; loaded on first use)."""
        key = id(connection)
        if key not in self.finish_scripts:
            self.finish_scripts[key] = connection.register_script(FINISH_LUA)
        return self.finish_scripts[key]

    def alert_log(self, connection: redis.Redis) -> AlertLog:
        key = id(connection)
        if key not in self.alert_logs:
            self.alert_logs[key] = AlertLog(
                connection, maxlen=self.settings.alert_log_maxlen, marker_ttl=self.settings.dedup_window
            )
        return self.alert_logs[key]


_state: WorkerState | None = None


def worker_state() -> WorkerState:
    """This process's WorkerState, made on first use (settings from the environment and newswatch.toml)."""
    global _state
    if _state is None:
        settings = load_settings()
        _state = WorkerState(settings=settings, matchers=MatcherCache(settings.watchlist))
    return _state


def warm_up() -> None:
    """Compile the watchlist and load the extraction models now.

    A forking worker calls this in the parent before each fork, so that horses inherit the warm state
    instead of rebuilding it per job.
    """
    matcher = worker_state().matchers.get()
    global _warm
    if not _warm:
        from worker.core.extract import extract

        sample = Document(url="warm-up:", format="text", body="Warm-up\n\nA short text to load the models.")
        matcher.match(extract(sample))
        _warm = True


_warm = False


def check_configuration() -> None:
    """At worker start: the watchlist compiles, the sinks are valid and every sink a topic names exists.

    Raises WatchlistUnavailable or worker.sinks.SinkConfigError with a message naming the problem.
    """
    from worker.delivery import use_settings

    state = worker_state()
    matcher = state.matchers.get()
    context = use_settings(state.settings)
    context.sinks.check_topics({topic.id: topic.sinks for topic in matcher.topics})


@dataclass
class _Batch:
    """One run of process_batch: where it runs and what it did."""

    connection: redis.Redis
    state: WorkerState
    job: Job | None
    attempt: int
    summary: dict[str, Any] = field(
        default_factory=lambda: {
            "articles": 0,
            "processed": 0,
            "skipped": 0,
            "retrying": 0,
            "failed": 0,
            "alerts": [],
            "errors": {},
        }
    )


def process_batch(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The RQ job: process each document of the batch on its own; a JSON summary of what happened.

    The Redis work is batched: one MGET for the done markers, one pipeline appending every alert of the
    batch, then the deliveries, then one "finish" script for the whole batch (done markers, ledger,
    counters: atomic). A crash in between leaves articles not marked done: the re-run does them
    again, and the alert log and delivery admission, both idempotent, add nothing twice.
    """
    job = get_current_job()
    state = worker_state()
    if job is None:  # called directly (tests, benchmarks): connect like any newswatch process
        from newswatch.connection import connect

        connection = connect(state.settings)
    else:
        connection = job.connection
    attempt = int((job.meta if job else {}).get(ATTEMPT_META, 1))
    batch = _Batch(connection=connection, state=state, job=job, attempt=attempt)
    batch.summary["articles"] = len(documents)
    matcher = state.matchers.get()  # a missing watchlist fails the whole job: not an article's fault
    started = time.perf_counter()
    # One round trip for the whole batch: which articles a previous run of this job already did.
    parsed = [_parse(d) for d in documents]
    done_values: list[Any] = connection.mget([keys.done(i) for _, i in parsed]) if documents else []
    outcomes: list[_Outcome] = []
    with structlog.contextvars.bound_contextvars(job_id=job.id if job else None):
        for index, data in enumerate(documents):
            try:
                outcome = _analyse(batch, matcher, data, parsed[index], done_values[index])
            except JobTimeoutException:
                # The job's time is up on this article: it fails alone; the rest go on in a new job, and
                # what this job finished before is recorded below as usual.
                rest = documents[index + 1 :]
                if rest:  # first, so that the rest runs before this article's retry
                    rest_job = _enqueue(batch, rest, attempt=1, delay=0)
                    batch.summary["continued_in"] = rest_job.id
                timeout = job.timeout if job and job.timeout else state.settings.job_timeout
                _record_failure(batch, data, f"timed out after {timeout} s")
                log.warning("job timed out; rest of the batch re-enqueued", remaining=len(rest))
                break
            if outcome is not None:
                outcomes.append(outcome)
        _commit(batch, matcher, outcomes)
        log.info(
            "batch done",
            **{k: v for k, v in batch.summary.items() if k not in ("alerts", "errors")},
            alerts=len(batch.summary["alerts"]),
            seconds=round(time.perf_counter() - started, 3),
        )
    return batch.summary


@dataclass
class _Outcome:
    """One article of the batch, analysed (or found done), waiting to be recorded."""

    data: dict[str, Any]
    article_id: str
    content_hash: str
    skipped: bool = False
    title: str = ""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _analyse(
    batch: _Batch,
    matcher: Any,
    data: dict[str, Any],
    parsed: tuple[Document | Exception, str],
    done_value: bytes | None,
) -> _Outcome | None:
    """Extract and match one article (no Redis writes); None when it failed (recorded, retried alone)."""
    from worker.core.extract import extract, with_language

    document, article_id = parsed
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(article_id=article_id):
        try:
            if isinstance(document, Exception):
                raise document
            content_hash = document.content_hash
            if done_value is not None and done_value.decode() == content_hash:
                return _Outcome(data, article_id, content_hash, skipped=True)
            # Language detection is a third of extraction's cost and only alerts carry the language:
            # detected for the articles that match, not for the many that do not.
            article = extract(_with_page(document, batch.state.settings), detect=False)
            matches = matcher.match(article)
            if matches:
                article = with_language(article)
            matched_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            alerts = build_alerts(article, matches, matched_at)
        except JobTimeoutException:
            raise
        except Exception as error:
            _record_failure(batch, data, _describe(error))
            return None
    return _Outcome(
        data, article_id, content_hash, title=article.title, alerts=alerts,
        seconds=time.perf_counter() - started,
    )  # fmt: skip


def _commit(batch: _Batch, matcher: Any, outcomes: list[_Outcome]) -> None:
    """Record the analysed articles: alerts (one pipeline), deliveries, then each article's finish."""
    if not outcomes:
        return
    connection = batch.connection
    alert_log = batch.state.alert_log(connection)
    alerts = [(outcome, alert) for outcome in outcomes for alert in outcome.alerts]
    if alerts:
        with connection.pipeline(transaction=False) as pipe:
            for _outcome, alert in alerts:
                alert_log.append(alert, client=pipe)
            entries = pipe.execute()
        with connection.pipeline(transaction=False) as pipe:
            for (outcome, alert), entry in zip(alerts, entries, strict=True):
                topic_id = alert["topic"]["id"]
                if entry is None:
                    log.info("alert already in the log", alert_id=alert["id"], article_id=outcome.article_id)
                    continue
                pipe.hincrby(keys.TOPIC_MATCHES, topic_id, 1)
                log.info(
                    "alert", alert_id=alert["id"], article_id=outcome.article_id, topic=topic_id,
                    score=alert["score"], title=outcome.title,
                )  # fmt: skip
                batch.summary["alerts"].append(alert["id"])
            pipe.execute()
        # Also for alerts the log already had: a crash may have come between the append and the
        # admission; admission is idempotent per (alert, sink), so nothing is sent twice.
        for _outcome, alert in alerts:
            _deliver(batch, matcher, alert, alert["topic"]["id"])
    from newswatch.metrics import bucket_field

    # One script call for the whole batch (per-command overhead in the client is most of the cost).
    _finish(
        batch,
        [
            (
                outcome.article_id,
                _body_sha1(outcome.data),
                "skipped" if outcome.skipped else "processed",
                outcome.content_hash,
                bucket_field(outcome.seconds),
                repr(outcome.seconds),
            )
            for outcome in outcomes
        ],
    )
    for outcome in outcomes:
        batch.summary["skipped" if outcome.skipped else "processed"] += 1


#: Ends articles' processing, atomically: drop each ledger entry only if the ledger still holds the
#: content that was processed (a changed file re-enqueued meanwhile stays pending); for a processed article
#: also set its done marker, clear an earlier failure, count it and add its time to the processing
#: histogram (newswatch.metrics). Returns how many ledger entries were dropped.
FINISH_LUA = """
-- KEYS: pending, failed, stats, histogram, then the done marker of each article.
-- ARGV: ttl, then per article: id, sha1 of the body, mode, content hash, histogram bucket field, seconds.
local removed = 0
local ttl = ARGV[1]
for i = 5, #KEYS do
    local a = 2 + (i - 5) * 6
    local id, mode = ARGV[a], ARGV[a + 2]
    local current = redis.call('HGET', KEYS[1], id)
    if current then
        local ok, doc = pcall(cjson.decode, current)
        local body = ''
        if ok and type(doc) == 'table' and type(doc['body']) == 'string' then
            body = doc['body']
        end
        if redis.sha1hex(body) == ARGV[a + 1] then
            removed = removed + redis.call('HDEL', KEYS[1], id)
        end
    end
    if mode == 'processed' then
        redis.call('SET', KEYS[i], ARGV[a + 3], 'EX', ttl)
        redis.call('HDEL', KEYS[2], id)
        redis.call('HINCRBY', KEYS[3], 'processed', 1)
        redis.call('HINCRBY', KEYS[4], ARGV[a + 4], 1)
        redis.call('HINCRBY', KEYS[4], 'count', 1)
        redis.call('HINCRBYFLOAT', KEYS[4], 'sum', ARGV[a + 5])
    end
end
return removed
"""

#: (article id, sha1 of the body, "processed" | "skipped" | "failed", content hash, bucket, seconds)
_Finished = tuple[str, str, str, str, str, str]


def _finish(batch: _Batch, articles: list[_Finished], client: Any = None) -> None:
    """Run FINISH_LUA for these articles (in `client`'s pipeline when given, else at once)."""
    from newswatch.metrics import PROCESSING

    if not articles:
        return
    batch.state.finish_script(batch.connection)(
        keys=[keys.PENDING, keys.FAILED, keys.STATS, keys.histogram(PROCESSING)]
        + [keys.done(article[0]) for article in articles],
        args=[batch.state.settings.dedup_window, *(value for article in articles for value in article)],
        client=client,
    )


def _body_sha1(data: dict[str, Any]) -> str:
    body = data.get("body") if isinstance(data, dict) else None
    text = body if isinstance(body, str) else ""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def _with_page(document: Document, settings: Settings) -> Document:
    """The document with its web page as body: a bare URL, or a feed entry that asks for the full text.

    A feed entry whose page cannot be fetched keeps the feed's own text; a bare URL fails (and is retried).
    """
    if document.format != "url" and not document.full_text:
        return document
    if document.format == "url" and document.body:
        return document
    from worker.page_fetch import PageFetchError, fetch_page

    try:
        page = fetch_page(document.url, settings)
    except PageFetchError as error:
        if document.body:
            log.warning("page not fetched, using the feed's text", url=document.url, error=error.reason)
            return document
        raise
    return replace(document, format="url", body=page.html)


def _deliver(batch: _Batch, matcher: Any, alert: dict[str, Any], topic_id: str) -> None:
    """Hand the alert to its sinks (the topic's `sinks`, else the default ones) via the deliveries queue."""
    from worker.delivery import enqueue_deliveries

    try:
        topic = matcher.topics[matcher.topic_index(topic_id)]
        routing = tuple(topic.sinks) or None
    except (KeyError, IndexError, AttributeError):
        routing = None
    enqueue_deliveries(batch.connection, alert, batch.state.settings, routing=routing)


def _record_failure(batch: _Batch, data: dict[str, Any], error: str) -> None:
    """Record the failed article; retry it alone, or fail it for good after MAX_ATTEMPTS."""
    article_id = _article_id(data)
    attempt = batch.attempt
    final = attempt >= MAX_ATTEMPTS
    record = {
        "article": data,
        "error": error,
        "attempts": attempt,
        "last_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "final": final,
        "job_id": batch.job.id if batch.job else None,
    }
    batch.summary["errors"][article_id] = error
    with batch.connection.pipeline(transaction=True) as pipe:
        pipe.hset(keys.FAILED, article_id, json.dumps(record, ensure_ascii=False))
        if final:
            _finish(batch, [(article_id, _body_sha1(data), "failed", "", "", "0")], client=pipe)
            pipe.hincrby(keys.STATS, keys.STAT_FAILED, 1)
        else:
            pipe.hincrby(keys.STATS, keys.STAT_RETRIED, 1)
        pipe.execute()
    if final:
        batch.summary["failed"] += 1
        log.error("article failed for good", error=error, attempts=attempt)
        return
    delay = RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)]
    retry_job = _enqueue(batch, [data], attempt=attempt + 1, delay=delay)
    batch.summary["retrying"] += 1
    log.warning("article failed, retrying alone", error=error, attempt=attempt, retry_job=retry_job.id)


def _enqueue(batch: _Batch, documents: list[dict[str, Any]], *, attempt: int, delay: int) -> Job:
    """A new job on the articles queue for these documents (delayed only when a scheduler will run it)."""
    queue = Queue(
        batch.job.origin if batch.job else ARTICLES_QUEUE,
        connection=batch.connection,
        serializer=JSONSerializer,
    )
    options: dict[str, Any] = {
        "job_timeout": batch.state.settings.job_timeout,
        "result_ttl": RESULT_TTL,
        "retry": Retry(max=JOB_RETRIES),
        "meta": {ATTEMPT_META: attempt, "source": "retry", "articles": [_article_id(d) for d in documents]},
        "description": f"{PROCESS_BATCH_JOB}: {len(documents)} articles, attempt {attempt}",
    }
    if delay and batch.connection.exists(RQScheduler.get_locking_key(queue.name)):
        return queue.enqueue_in(timedelta(seconds=delay), PROCESS_BATCH_JOB, documents, **options)
    return queue.enqueue(PROCESS_BATCH_JOB, documents, **options)


def _parse(data: dict[str, Any]) -> tuple[Document | Exception, str]:
    """The document of a message and its article id; for a malformed message, the error and a stable id."""
    try:
        document = Document.from_json(data)
        return document, document.article_id
    except Exception as error:
        return error, _article_id(data)


def _article_id(data: dict[str, Any]) -> str:
    try:
        return Document.from_json(data).article_id
    except Exception:  # a malformed message still needs a stable name in newswatch:failed
        raw = json.dumps(data, sort_keys=True, default=str).encode()
        return "a_" + hashlib.sha256(raw).hexdigest()[:20]


def _describe(error: Exception) -> str:
    """One line naming the error; where in our code it happened for unexpected ones."""
    from worker.core.extract import ExtractionError

    if isinstance(error, ExtractionError):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"

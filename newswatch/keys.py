"""Redis key names shared by producer and worker, all under "newswatch:", with what each one holds."""

from __future__ import annotations

from newswatch.queues import KEY_PREFIX

#: HASH article_id -> Document JSON: every accepted article until it is processed or permanently failed.
PENDING = KEY_PREFIX + "pending"
#: HASH article_id -> JSON {article, error, attempts, last_at}: articles whose processing failed.
FAILED = KEY_PREFIX + "failed"
#: HASH of counters: accepted, duplicates, processed, failed, alerts (and retried).
STATS = KEY_PREFIX + "stats"
#: STREAM, the alert log: one entry per alert, field "alert" = the alert's JSON.
ALERTS_STREAM = KEY_PREFIX + "alerts"
#: HASH path -> "mtime_ns:size:sha256", what the seeds scanner already took.
SEEDS_FILES = KEY_PREFIX + "seeds:files"

STAT_ACCEPTED = "accepted"
STAT_DUPLICATES = "duplicates"
STAT_PROCESSED = "processed"
STAT_FAILED = "failed"
STAT_ALERTS = "alerts"
STAT_RETRIED = "retried"


def seen_url(url_sha256: str) -> str:
    """STRING with EX = dedup window: this canonical URL was accepted."""
    return f"{KEY_PREFIX}seen:url:{url_sha256}"


def seen_hash(content_sha256: str) -> str:
    """STRING with EX = dedup window: this content was accepted."""
    return f"{KEY_PREFIX}seen:hash:{content_sha256}"


def done(article_id: str) -> str:
    """STRING with EX = dedup window: the article was processed (a re-run job skips it)."""
    return f"{KEY_PREFIX}done:{article_id}"


def alert_marker(alert_id: str) -> str:
    """STRING with EX = dedup window, set together with the XADD: the alert is in the log."""
    return f"{KEY_PREFIX}alert:{alert_id}"


# Added by the producer side.
#: HASH path -> reason: seed files refused (binary, too large, bad encoding), until they change.
SEEDS_ERRORS = KEY_PREFIX + "seeds:errors"


# Added by the reliability work (issue 7).
#: STRING lease (SET NX PX): one reconciler pass per interval across every producer.
RECONCILE_LEASE = KEY_PREFIX + "reconcile:lease"
#: HASH article_id -> unix time it was first seen pending with no job: reconciled after a grace period.
RECONCILE_SUSPECTS = KEY_PREFIX + "reconcile:suspects"
#: HASH article_id -> how many times the reconciler re-enqueued it (bounded, then it is failed for good).
RECONCILE_ATTEMPTS = KEY_PREFIX + "reconcile:attempts"
#: HASH topic id -> alerts made (matches per topic, for metrics).
TOPIC_MATCHES = KEY_PREFIX + "stats:topics"
#: HASH of connection events seen by processes (last reconnect time, counts), for `status`.
REDIS_EVENTS = KEY_PREFIX + "stats:redis"
STAT_RECONCILED = "reconciled"


def histogram(name: str) -> str:
    """HASH of one latency histogram shared by every process: bucket counts, "sum" and "count"."""
    return f"{KEY_PREFIX}hist:{name}"

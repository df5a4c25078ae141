"""The producer loop: scan the seeds folder (and, through a hook, other sources) every few seconds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from newswatch.logs import get_logger
from newswatch.settings import Settings
from producer.enqueue import EnqueueResult
from producer.reconcile import reconcile
from producer.seeds import BadFile, SeedsScanner

log = get_logger(__name__)

#: Seconds between two scans of the seeds folder.
SCAN_INTERVAL = 2.0
#: A file modified less than this long ago is left for the next scan (it may still be being written).
SETTLE_SECONDS = 1.0

#: A source other than the seeds folder: called once per pass, enqueues what it has, says what it did.
#: `once` is True for a single pass (`--once`): the source should take everything it holds now.
PollSource = Callable[[redis.Redis, Settings, bool], EnqueueResult]


def other_sources(settings: Settings) -> list[PollSource]:
    """The sources polled beside the seeds folder: the feeds of NEWSWATCH_FEEDS when it is set."""
    if settings.feeds is None:
        return []
    from producer.feeds.poller import feed_source

    return [feed_source]


@dataclass
class PassResult:
    """What one pass over every source did."""

    enqueued: EnqueueResult = field(default_factory=EnqueueResult)
    bad: list[BadFile] = field(default_factory=list)


@dataclass
class ProducerTotals:
    """Counts since the producer started (counts only: a long-running producer keeps no documents)."""

    accepted: int = 0
    duplicates: int = 0
    bad: int = 0
    passes: int = 0

    def add(self, result: PassResult) -> None:
        self.accepted += len(result.enqueued.accepted)
        self.duplicates += len(result.enqueued.duplicates)
        self.bad += len(result.bad)
        self.passes += 1


def produce_once(
    connection: redis.Redis,
    settings: Settings,
    *,
    once: bool = True,
    min_age: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> PassResult:
    """One pass over every source; a failing source is logged and the others go on."""
    result = PassResult()
    scan = SeedsScanner(connection, settings, min_age=min_age).scan(progress)
    result.enqueued.merge(scan.enqueued)
    result.bad += scan.bad
    for source in other_sources(settings):
        try:
            result.enqueued.merge(source(connection, settings, once))
        except redis.RedisError:
            raise
        except Exception:
            log.exception("source failed", source=getattr(source, "__name__", repr(source)))
    return result


def run_producer(
    connection: redis.Redis,
    settings: Settings,
    *,
    stop: threading.Event,
    interval: float = SCAN_INTERVAL,
    on_pass: Callable[[PassResult], None] | None = None,
) -> ProducerTotals:
    """Poll the sources until `stop` is set; a lost Redis connection is logged and retried next pass."""
    totals = ProducerTotals()
    log.info("producer started", seeds=str(settings.seeds_dir), interval=interval)
    while not stop.is_set():
        try:
            result = produce_once(connection, settings, once=False, min_age=SETTLE_SECONDS)
            totals.add(result)
            if on_pass is not None:
                on_pass(result)
            reconcile(connection, settings)  # at most one pass per RECONCILE_INTERVAL across producers
        except redis.ConnectionError as error:
            log.error("redis unreachable, retrying", error=str(error))
        stop.wait(interval)
    log.info("producer stopped", accepted=totals.accepted, duplicates=totals.duplicates, passes=totals.passes)
    return totals

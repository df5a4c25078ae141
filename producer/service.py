"""The producer loop: watch the seeds folder, and pass over it and the other sources every few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import redis

from newswatch.logs import get_logger
from newswatch.settings import Settings
from producer.enqueue import EnqueueResult, articles_queue
from producer.reconcile import reconcile
from producer.seeds import BadFile, SeedsScanner
from producer.seeds_watch import SeedsWatcher, watching_supported

log = get_logger(__name__)

#: Seconds between two full passes: the whole seeds folder, the feeds that are due, the reconciler.
SCAN_INTERVAL = 2.0
#: In a full pass, a file modified less than this long ago is left for the next one (it may still be being
#: written). The watcher does not wait: it knows when a writer closes the file.
SETTLE_SECONDS = 1.0
#: Longest wait between two looks at `stop` (seconds): how soon the producer ends when asked.
STOP_POLL = 0.25
#: While files gather (see _Gathered), seconds between two looks at the articles queue, and the longest
#: they gather before they are enqueued anyway (a backlog from other sources, no worker running).
GATHER_POLL = 0.01
GATHER_MAX = 0.5
#: After a lost Redis connection, seconds before files the watcher handed over are tried again.
REDIS_RETRY = 1.0

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
    skip: Collection[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> PassResult:
    """One pass over every source; a failing source is logged and the others go on.

    `skip`: seed files known to be open for writing (see SeedsWatcher.writing), left for a later pass.
    """
    result = PassResult()
    scan = SeedsScanner(connection, settings, min_age=min_age).scan(progress, skip=skip)
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
    watch: bool = True,
) -> ProducerTotals:
    """Poll the sources until `stop` is set; a lost Redis connection is logged and retried next pass.

    Every `interval` seconds a full pass: the whole seeds folder (files written in the last
    SETTLE_SECONDS, or open for writing, wait), the feeds, the reconciler. Meanwhile (with `watch`, on
    Linux) the folder is watched, and a file is enqueued the moment it is complete: closed by its writer or
    renamed into place. What is ready at once goes as one batch, so a trickle of files goes one by one.
    """
    totals = ProducerTotals()
    wake = threading.Event()
    watcher = SeedsWatcher(settings.seeds_dir, wake.set) if watch and watching_supported() else None
    scanner = SeedsScanner(connection, settings)
    gathered = _Gathered(connection, settings)
    log.info(
        "producer started", seeds=str(settings.seeds_dir), interval=interval, watching=watcher is not None
    )
    next_pass = retry_at = time.monotonic()

    def report(result: PassResult) -> None:
        totals.add(result)
        if on_pass is not None:
            on_pass(result)

    try:
        while not stop.is_set():
            try:
                if time.monotonic() >= next_pass:
                    next_pass = time.monotonic() + interval
                    if watcher is not None and not watcher.alive:
                        _start_watching(watcher)
                    skip = watcher.writing() if watcher is not None else ()
                    report(produce_once(connection, settings, once=False, min_age=SETTLE_SECONDS, skip=skip))
                    reconcile(connection, settings)  # one pass per RECONCILE_INTERVAL across producers
                if watcher is not None and time.monotonic() >= retry_at:
                    gathered.add(watcher.take_ready())
                    if gathered.due():
                        taken = scanner.take(gathered.paths)
                        gathered.clear()  # only once enqueued: after a lost connection they are tried again
                        report(PassResult(enqueued=taken.enqueued, bad=taken.bad))
            except redis.ConnectionError as error:
                log.error("redis unreachable, retrying", error=str(error))
                retry_at = time.monotonic() + min(interval, REDIS_RETRY)
            wake.wait(_wait_time(next_pass, retry_at, watcher, gathering=bool(gathered.paths)))
            wake.clear()
    finally:
        if watcher is not None:
            watcher.stop()
    log.info("producer stopped", accepted=totals.accepted, duplicates=totals.duplicates, passes=totals.passes)
    return totals


class _Gathered:
    """Complete files not enqueued yet. They go at once while the articles queue is empty (a trickle of
    files goes one by one, no waiting for a fuller batch); while a job waits there (the workers are busy)
    they gather, to go as one batch when a worker takes that job: batches grow with the load, so the
    workers keep up with a steady stream instead of paying a job's fixed cost per file."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.connection = connection
        self.queue_key = articles_queue(connection, settings).key
        self.batch_size = settings.batch_size
        self._paths: dict[Path, None] = {}
        self._since = 0.0

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)

    def add(self, paths: list[Path]) -> None:
        if paths and not self._paths:
            self._since = time.monotonic()
        self._paths.update(dict.fromkeys(paths))

    def due(self) -> bool:
        if not self._paths:
            return False
        if len(self._paths) >= self.batch_size or time.monotonic() - self._since >= GATHER_MAX:
            return True
        return int(self.connection.llen(self.queue_key)) == 0

    def clear(self) -> None:
        self._paths.clear()


def _start_watching(watcher: SeedsWatcher) -> None:
    """Start (or restart) the watch; on failure the full passes alone go on, and the next one tries again."""
    try:
        watcher.start()
    except OSError as error:
        log.warning("seeds folder not watched; new files wait for the next scan", folder=str(watcher.folder),
                    error=str(error))  # fmt: skip
        return
    log.info("watching seeds folder", folder=str(watcher.folder))


def _wait_time(next_pass: float, retry_at: float, watcher: SeedsWatcher | None, *, gathering: bool) -> float:
    """Seconds until the loop has something to do, at most STOP_POLL: the retry after a lost connection,
    else the next look at the queue while files gather, else the next full pass or the next file the
    watcher may hand over (a watcher event ends the wait sooner)."""
    now = time.monotonic()
    if now < retry_at:
        return min(STOP_POLL, retry_at - now)
    if gathering:
        return GATHER_POLL
    until = next_pass
    if watcher is not None:
        check = watcher.next_check()
        if check is not None:
            until = min(until, check)
    return min(STOP_POLL, max(0.0, until - now))

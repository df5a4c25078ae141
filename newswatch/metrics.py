"""Prometheus metrics (opt-in port): exported from the Redis counters, so every process's work is counted.

Workers and producers count in Redis (newswatch:stats, newswatch:stats:topics, the delivery counters and
the histogram hashes newswatch:hist:<name>) as part of the writes they make anyway; `serve_metrics` starts
prometheus-client's HTTP server with a collector that reads those keys on each scrape. Counts are therefore
right whatever the number of worker processes, and survive a worker restart.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from typing import Any

import redis

from newswatch import keys
from newswatch.logs import get_logger

log = get_logger(__name__)

#: Bucket upper bounds (seconds) of both latency histograms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PROCESSING = "processing"
DELIVERY = "delivery"


def bucket_field(seconds: float) -> str:
    """The hash field of the (non-cumulative) bucket an observation falls into."""
    index = bisect.bisect_left(BUCKETS, seconds)
    return "le_inf" if index == len(BUCKETS) else f"le_{BUCKETS[index]}"


def observe(pipe: Any, name: str, seconds: float) -> None:
    """Add one observation to a shared histogram (three commands on the caller's pipeline)."""
    key = keys.histogram(name)
    pipe.hincrby(key, bucket_field(seconds), 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", seconds)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisCollector:
    """prometheus-client collector reading newswatch's counters from Redis at scrape time."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from rq import Queue
        from rq.serializers import JSONSerializer

        from newswatch.queues import ARTICLES_QUEUE, DELIVERIES_QUEUE

        c = self.connection
        with c.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STATS)
            pipe.hgetall(keys.TOPIC_MATCHES)
            pipe.hgetall(keys.histogram(PROCESSING))
            pipe.hgetall(keys.histogram(DELIVERY))
            pipe.hlen(keys.PENDING)
            pipe.hgetall(keys.REDIS_EVENTS)
            stats, topics, processing, delivery, pending, events = pipe.execute()
        stats = {_text(k): int(float(v)) for k, v in stats.items()}

        def counter(name: str, doc: str, value: float) -> Any:
            family = CounterMetricFamily(name, doc)
            family.add_metric([], value)
            return family

        yield counter(
            "newswatch_articles_accepted", "Articles accepted by producers", stats.get("accepted", 0)
        )
        yield counter(
            "newswatch_articles_duplicates", "Articles skipped as seen lately", stats.get("duplicates", 0)
        )
        yield counter("newswatch_articles_processed", "Articles processed", stats.get("processed", 0))
        yield counter("newswatch_articles_failed", "Articles failed for good", stats.get("failed", 0))
        yield counter("newswatch_articles_retried", "Article attempts that failed", stats.get("retried", 0))
        yield counter(
            "newswatch_articles_reconciled", "Lost jobs' articles re-enqueued", stats.get("reconciled", 0)
        )
        yield counter("newswatch_alerts", "Alerts written to the alert log", stats.get("alerts", 0))
        matches = CounterMetricFamily("newswatch_matches", "Alerts per watchlist topic", labels=["topic"])
        for topic, value in sorted(topics.items()):
            matches.add_metric([_text(topic)], int(value))
        yield matches

        yield from self._histograms(processing, delivery)
        yield from self._queues(Queue, JSONSerializer, ARTICLES_QUEUE, DELIVERIES_QUEUE, int(pending))
        yield from self._deliveries()
        yield from self._feeds()
        reconnects = GaugeMetricFamily(
            "newswatch_redis_last_reconnect_timestamp_seconds",
            "When a newswatch process last got Redis back after losing it (0: never)",
        )
        reconnects.add_metric([], float(events.get(b"last_reconnect_at", 0) or 0))
        yield reconnects

    def _histograms(self, processing: dict[Any, Any], delivery: dict[Any, Any]) -> Iterator[Any]:
        from prometheus_client.core import HistogramMetricFamily

        for name, raw, doc in (
            ("newswatch_processing_seconds", processing, "Time to extract, match and record one article"),
            ("newswatch_delivery_latency_seconds", delivery, "From an alert's match to its 2xx delivery"),
        ):
            values = {_text(k): float(v) for k, v in raw.items()}
            cumulative, buckets = 0.0, []
            for bound in BUCKETS:
                cumulative += values.get(f"le_{bound}", 0.0)
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", cumulative + values.get("le_inf", 0.0)))
            family = HistogramMetricFamily(name, doc)
            family.add_metric([], buckets, sum_value=values.get("sum", 0.0))
            yield family

    def _queues(self, queue_class: Any, serializer: Any, *names_and_pending: Any) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        *names, pending = names_and_pending
        depth = GaugeMetricFamily(
            "newswatch_queue_jobs", "RQ jobs per queue and state", labels=["queue", "state"]
        )
        for name in names:
            queue = queue_class(name, connection=self.connection, serializer=serializer)
            depth.add_metric([name, "queued"], queue.count)
            depth.add_metric([name, "started"], queue.started_job_registry.get_job_count(cleanup=False))
            depth.add_metric([name, "scheduled"], queue.scheduled_job_registry.get_job_count(cleanup=False))
            depth.add_metric([name, "failed"], queue.failed_job_registry.get_job_count(cleanup=False))
        yield depth
        gauge = GaugeMetricFamily("newswatch_articles_pending", "Accepted articles not processed yet")
        gauge.add_metric([], pending)
        yield gauge

    def _deliveries(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from worker.delivery_admin import delivery_counts

        counts = delivery_counts(self.connection)
        for kind, name, field, doc in (
            (CounterMetricFamily, "newswatch_deliveries", "delivered", "Messages delivered (2xx)"),
            (CounterMetricFamily, "newswatch_delivered_alerts", "delivered_alerts",
             "Alerts delivered (digests count each)"),
            (CounterMetricFamily, "newswatch_delivery_failed_attempts", "failed_attempts",
             "Delivery attempts that failed"),
            (GaugeMetricFamily, "newswatch_deliveries_dead_lettered", "dead_lettered",
             "Messages dead-lettered"),
            (GaugeMetricFamily, "newswatch_deliveries_waiting", "queued", "Messages waiting for their sink"),
            (GaugeMetricFamily, "newswatch_deliveries_retrying", "retrying", "Messages waiting for a retry"),
        ):  # fmt: skip
            family = kind(name, doc)
            family.add_metric([], counts.get(field, 0))
            yield family

    def _feeds(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from producer.feeds.health import known_feeds, read_health

        feeds = read_health(self.connection, known_feeds(self.connection))
        in_a_row = GaugeMetricFamily(
            "newswatch_feed_consecutive_errors", "Fetch errors in a row per feed (0: last poll worked)",
            labels=["feed"],
        )  # fmt: skip
        errors = CounterMetricFamily("newswatch_feed_fetch_errors", "Failed polls per feed", labels=["feed"])
        polls = CounterMetricFamily("newswatch_feed_polls", "Polls per feed, failed or not", labels=["feed"])
        for feed in feeds:
            in_a_row.add_metric([feed.url], feed.consecutive_errors)
            errors.add_metric([feed.url], feed.errors)
            polls.add_metric([feed.url], feed.polls)
        yield from (in_a_row, errors, polls)

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (no registration-time call to Redis)


def serve_metrics(connection: redis.Redis, port: int, address: str = "127.0.0.1") -> Any:
    """Start the /metrics HTTP server in a thread; the server object (call .shutdown() to stop it)."""
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(connection))
    server, _thread = start_http_server(port, addr=address, registry=registry)
    log.info("metrics served", url=f"http://{address}:{port}/metrics")
    return server


def record_reconnect(connection: redis.Redis, at: float, process: str) -> None:
    """Note in Redis that a process got Redis back (status and metrics show the last one)."""
    try:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hset(keys.REDIS_EVENTS, mapping={"last_reconnect_at": at, "last_reconnect_by": process})
            pipe.hincrby(keys.REDIS_EVENTS, "reconnects", 1)
            pipe.execute()
    except redis.RedisError as error:  # noted next time; never fail the caller for a statistic
        log.debug("reconnect not recorded", error=str(error))


def redis_events(connection: redis.Redis) -> dict[str, Any]:
    raw = connection.hgetall(keys.REDIS_EVENTS)
    return {_text(k): json.loads(v) if _text(k) == "reconnects" else _text(v) for k, v in raw.items()}

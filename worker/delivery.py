"""Alert delivery: the RQ jobs of the deliveries queue, and `enqueue_deliveries` for every logged alert.

`enqueue_deliveries` admits an alert for each of its sinks (idempotent per alert and sink, so calling it
again after a crash never sends twice): into the channel's outbox, a digest window, or (over max_per_hour)
the suppressed records. `drain` (job "worker.delivery.drain") owns one (sink, topic) channel and sends its
outbox in order; a failed head is retried on Settings.webhook_retries with jitter (`enqueue_in`, so the
delivery worker runs with the RQ scheduler), then dead-lettered together with what waits behind it.
`flush_digest` closes a digest window. State and key names: worker/delivery_state.py.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job, get_current_job
from rq.serializers import JSONSerializer

from newswatch.logs import get_logger
from newswatch.queues import DELIVERIES_QUEUE
from newswatch.settings import Settings, load_settings
from worker import delivery_state as state
from worker.sinks import Message, SendResult, Sink, SinkConfig, Sinks, load_sinks, open_sink

log = get_logger(__name__)

DRAIN_JOB = "worker.delivery.drain"
FLUSH_DIGEST_JOB = "worker.delivery.flush_digest"
#: RQ re-runs a drain job killed mid-way (it takes its channel back with the same token).
CRASH_RETRY = Retry(max=3, interval=[5, 30, 120])
JITTER = 0.2  # each backoff delay is spread by ±20% so a recovered receiver is not hit all at once
#: A drain job hands its channel over after this share of the job timeout, to stay under it.
DRAIN_SHARE_OF_TIMEOUT = 0.5
#: Messages read from an outbox at once (their delivered markers are checked in one round trip).
DRAIN_BATCH = 50
#: A drain job whose outbox ran empty keeps its channel this many seconds after its last send, while no
#: other job waits on the deliveries queue: the next alert of a steady stream then goes out at once,
#: instead of costing a new RQ job (enqueue, pop, bookkeeping: most of a delivery's time on a busy host).
LINGER = 0.5
#: While it lingers, the job wakes on the channel's bell, on a job joining the deliveries queue (wake), or
#: after this many seconds to look again.
LINGER_SLICE = 0.05
#: A drain job that has lingered hands its channel to a fresh job after this many seconds: a worker asked
#: to stop (warm shutdown) waits for the current job, and this bounds that wait under a steady stream.
LINGER_SPAN = 5.0


def now_iso(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jittered(delay: float, rng: random.Random | None = None) -> float:
    if delay <= 0:
        return 0.0
    return max(0.0, delay * (rng or random).uniform(1 - JITTER, 1 + JITTER))


# --- the process's delivery context -----------------------------------------------------------------


@dataclass
class DeliveryContext:
    """Settings, validated sinks and open sink clients of one process (sinks are opened on first use)."""

    settings: Settings
    sinks: Sinks
    opened: dict[str, Sink] = field(default_factory=dict)
    _fetcher: Any = None

    def sink(self, name: str) -> Sink:
        found = self.opened.get(name)
        if found is None:
            config = self.sinks[name]
            # Apprise sinks use the fetcher's address guard (NEWSWATCH_ALLOWED_HOSTS), webhooks the fetcher.
            if config.kind in ("webhook", "apprise") and self._fetcher is None:
                from newswatch.http import Fetcher

                self._fetcher = Fetcher.from_settings(self.settings)
            found = self.opened[name] = open_sink(config, self._fetcher)
        return found

    def close(self) -> None:
        for sink in self.opened.values():
            sink.close()
        if self._fetcher is not None:
            self._fetcher.close()


_context: DeliveryContext | None = None


def use_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> DeliveryContext:
    """Validate the sinks of `settings` and use them in this process (start-up: SinkConfigError if wrong).

    Call it when a worker, `run` or the CLI starts, so that a missing or malformed secret, an unknown
    sink kind or a missing apprise extra stops the process with one clear line, not at the first alert.
    """
    global _context
    sinks = load_sinks(settings, environ)
    context = DeliveryContext(settings, sinks)
    for name, config in sinks.by_name.items():
        if config.kind == "apprise":
            context.sink(name)  # imports apprise and parses its URLs now
    if _context is not None:
        _context.close()
    _context = context
    return context


def current_context() -> DeliveryContext:
    return _context if _context is not None else use_settings(load_settings())


def context_for(settings: Settings | None) -> DeliveryContext:
    """The process's context, (re)built when `settings` differ from the ones in use."""
    if settings is None:
        return current_context()
    if _context is not None and _context.settings == settings:
        return _context
    return use_settings(settings)


def deliveries_queue(client: redis.Redis) -> Queue:
    return Queue(DELIVERIES_QUEUE, connection=client, serializer=JSONSerializer)


# --- admitting alerts -----------------------------------------------------------------------------------


@dataclass
class Admitted:
    """What `enqueue_deliveries` did with one alert, per sink (queued, digest, window, capped, dup)."""

    alert_id: str
    outcome: dict[str, str]


def enqueue_deliveries(
    client: redis.Redis,
    alert: dict[str, Any],
    settings: Settings | None = None,
    routing: Iterable[str] | None = None,
) -> Admitted:
    """Send `alert` (already in the alert log) to the sinks `routing` names, else the default sinks.

    Idempotent per (alert, sink): call it for every alert of an article, also one the log already had
    (a job re-run after a crash between the append and this call then still delivers it, once).
    """
    context = context_for(settings)
    names = context.sinks.route(routing)
    settings = context.settings
    alert_id = str(alert["id"])
    topic = str((alert.get("topic") or {}).get("id") or "")
    alert_json = json.dumps(alert, ensure_ascii=False, sort_keys=True)
    message_json = json.dumps({"alerts": [alert]}, ensure_ascii=False, sort_keys=True)
    now = time.time()
    outcome: dict[str, str] = {}
    scripts = state.scripts(client)
    client.set(state.route(alert_id), json.dumps(list(names)), ex=settings.dedup_window)
    for name in names:
        config = context.sinks[name]
        suppressed = json.dumps({"reason": "max_per_hour", "at": now, "message": {"alerts": [alert]}})
        result = state.text(
            scripts.admit(
                keys=[
                    state.queued(name, alert_id),
                    state.outbox(name, topic),
                    state.lock(name, topic),
                    state.CHANNELS,
                    state.cap(name, topic),
                    state.SUPPRESSED,
                    state.STATS,
                    state.digest_buffer(name, topic),
                    state.window(name, topic),
                    state.WINDOWS,
                    state.bell(name, topic),
                ],
                args=[
                    alert_json,
                    message_json,
                    state.member(name, topic),
                    repr(now),
                    config.max_per_hour or 0,
                    config.digest or 0,
                    settings.dedup_window,
                    state.record_field(name, alert_id),
                    suppressed,
                    alert_id,
                    pending_ttl(settings),
                ],
                client=client,
            )
        )
        outcome[name] = result or "?"
        if result == "drain":
            start_drain(client, name, topic, settings)
        elif result == "window":
            assert config.digest is not None
            deliveries_queue(client).enqueue_in(
                timedelta(seconds=config.digest),
                FLUSH_DIGEST_JOB,
                name,
                topic,
                repr(now),
                job_timeout=settings.job_timeout,
                retry=CRASH_RETRY,
                result_ttl=0,
            )
        elif result == "capped":
            log.warning("alert suppressed: max_per_hour reached", sink=name, topic=topic, alert_id=alert_id)
    return Admitted(alert_id, outcome)


def pending_ttl(settings: Settings) -> int:
    """How long a channel waits for its enqueued drain job before a new alert or `kick_stalled` starts one."""
    return settings.job_timeout + 60


def start_drain(client: redis.Redis, sink: str, topic: str, settings: Settings, delay: float = 0.0) -> Job:
    """Enqueue a drain job for the channel (now, or after `delay` seconds through the RQ scheduler)."""
    queue = deliveries_queue(client)
    options: dict[str, Any] = {"job_timeout": settings.job_timeout, "retry": CRASH_RETRY, "result_ttl": 0}
    if delay > 0:
        return queue.enqueue_in(timedelta(seconds=delay), DRAIN_JOB, sink, topic, None, **options)
    job = queue.enqueue(DRAIN_JOB, sink, topic, None, **options)
    wake_lingering(client)
    return job


def wake_lingering(client: redis.Redis) -> None:
    """Tell a drain job lingering on another channel that a job waits (see LINGER): it lets go at once."""
    with client.pipeline(transaction=False) as pipe:
        pipe.lpush(state.WAKE, 1)
        pipe.ltrim(state.WAKE, 0, 0)
        pipe.expire(state.WAKE, 10)
        pipe.execute()


# --- the jobs -------------------------------------------------------------------------------------------


def _job_client_and_token(token: str | None) -> tuple[redis.Redis, str]:
    job = get_current_job()
    if job is None:
        raise RuntimeError("worker.delivery jobs run inside an RQ worker")
    return job.connection, token or job.id


def flush_digest(sink: str, topic: str, window_start: str) -> str:
    """Job: close the digest window opened at `window_start`; its alerts become one message."""
    client, _token = _job_client_and_token(None)
    return close_window(client, current_context(), sink, topic, window_start)


def close_window(
    client: redis.Redis, context: DeliveryContext, sink: str, topic: str, window_start: str
) -> str:
    config = context.sinks.by_name.get(sink)
    now = time.time()
    first = client.lindex(state.digest_buffer(sink, topic), 0)
    topic_info = json.loads(first).get("topic", {"id": topic}) if first else {"id": topic}
    prefix = (
        '{"topic":'
        + json.dumps(topic_info, ensure_ascii=False, sort_keys=True)
        + ',"window":'
        + json.dumps([now_iso(float(window_start)), now_iso(now)])
        + ',"alerts":['
    )
    result = state.text(
        state.scripts(client).flush(
            keys=[
                state.digest_buffer(sink, topic),
                state.window(sink, topic),
                state.WINDOWS,
                state.outbox(sink, topic),
                state.lock(sink, topic),
                state.CHANNELS,
                state.cap(sink, topic),
                state.SUPPRESSED,
                state.STATS,
            ],
            args=[
                window_start,
                state.member(sink, topic),
                prefix,
                repr(now),
                (config.max_per_hour or 0) if config else 0,
                f"{sink}|digest:{topic}:",
                pending_ttl(context.settings),
            ],
            client=client,
        )
    )
    if result == "drain":
        start_drain(client, sink, topic, context.settings)
    log.info("digest window closed", sink=sink, topic=topic, outcome=result)
    return result or "?"


def drain(sink: str, topic: str, token: str | None = None) -> str:
    """Job: send the outbox of one (sink, topic) channel, in order, until it is empty or in backoff."""
    client, token = _job_client_and_token(token)
    return drain_channel(client, current_context(), sink, topic, token, linger=LINGER)


def drain_channel(
    client: redis.Redis,
    context: DeliveryContext,
    sink: str,
    topic: str,
    token: str,
    *,
    linger: float = 0.0,
) -> str:
    """Send the channel's outbox in order; with `linger`, wait that long after the last send for more
    (see LINGER) before giving the channel up."""
    settings = context.settings
    scripts = state.scripts(client)
    lock_key, outbox_key = state.lock(sink, topic), state.outbox(sink, topic)
    config = context.sinks.by_name.get(sink)
    hold = int(2 * (config.timeout if config else 10) + 60)
    if not scripts.acquire(keys=[lock_key], args=[token, hold], client=client):
        return "busy"  # another drain job owns the channel; it sends what we were started for
    started = time.monotonic()
    handover_at = started + settings.job_timeout * DRAIN_SHARE_OF_TIMEOUT
    linger_until = started + linger
    lingered = False
    sent = 0
    while True:
        batch: list[Any] = client.lrange(outbox_key, 0, DRAIN_BATCH - 1)
        if not batch:
            now = time.monotonic()
            if now < linger_until and now < started + LINGER_SPAN and _deliveries_idle(client):
                lingered = True
                client.blpop([state.bell(sink, topic), state.WAKE], timeout=LINGER_SLICE)
                continue
            released = scripts.release_if_empty(
                keys=[lock_key, outbox_key, state.CHANNELS, state.channel_state(sink, topic)],
                args=[token, state.member(sink, topic)],
                client=client,
            )
            if released != 0:
                return f"sent {sent}"
            continue
        if time.monotonic() > handover_at or (lingered and time.monotonic() > started + LINGER_SPAN):
            # Hand over to a fresh job to stay under the job timeout.
            client.set(lock_key, state.PENDING, ex=pending_ttl(settings))
            start_drain(client, sink, topic, settings)
            return f"sent {sent}, handed over"
        problem = _unusable(client, config, sink)
        if problem is not None:
            dead_letter(client, sink, topic, batch, [_attempt(None, problem)], problem)
            continue
        assert config is not None
        records = [json.loads(raw) for raw in batch]
        messages = [Message.from_json(record, sink) for record in records]
        with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.exists(state.delivered(sink, message.id))
            answered = pipe.execute()
        outcome = None
        for raw, record, message, done in zip(batch, records, messages, answered, strict=True):
            if done and not record.get("force"):
                client.lrem(outbox_key, 1, raw)  # a run before a crash was answered 2xx already
                continue
            result = context.sink(sink).send(message)
            if result.ok:
                owned = scripts.complete(
                    keys=[
                        outbox_key,
                        state.delivered(sink, message.id),
                        state.channel_state(sink, topic),
                        state.STATS,
                        lock_key,
                    ],
                    args=[raw, settings.dedup_window, len(message.alerts), token, hold],
                    client=client,
                )
                sent += 1
                linger_until = time.monotonic() + linger
                _observe_latency(client, message)
                if not owned:
                    return f"sent {sent}, lost the channel"  # our lock expired; another job took over
                continue
            outcome = _failed(client, context, config, sink, topic, token, raw, message, result)
            break
        if outcome is not None and outcome != "dead-lettered":
            return f"sent {sent}, {outcome}"


def _failed(
    client: redis.Redis,
    context: DeliveryContext,
    config: SinkConfig,
    sink: str,
    topic: str,
    token: str,
    raw: Any,
    message: Message,
    result: SendResult,
) -> str:
    """Record a failed attempt of the head; dead-letter the channel, or schedule the next try."""
    settings = context.settings
    outbox_key, lock_key = state.outbox(sink, topic), state.lock(sink, topic)
    attempts = _record_attempt(client, sink, topic, message.id, result)
    log.warning(
        "delivery attempt failed", sink=sink, topic=topic, message_id=message.id,
        attempt=len(attempts), status=result.status, error=result.error,
    )  # fmt: skip
    if result.gone:
        client.hset(
            state.DISABLED,
            sink,
            json.dumps({"fingerprint": config.fingerprint, "at": now_iso(), "error": result.error}),
        )
        log.error("sink disabled: the receiver answered 410 Gone", sink=sink)
        waiting = client.lrange(outbox_key, 0, -1)
        dead_letter(client, sink, topic, waiting, attempts, result.error or "410 Gone", head=raw)
        return "dead-lettered"
    retries = settings.webhook_retries
    if len(attempts) > len(retries):
        waiting = client.lrange(outbox_key, 0, -1)
        error = f"gave up after {len(attempts)} attempts: {result.error}"
        dead_letter(client, sink, topic, waiting, attempts, error, head=raw)
        return "dead-lettered"
    delay = jittered(retries[len(attempts) - 1])
    client.hset(state.channel_state(sink, topic), "next_at", repr(time.time() + delay))
    # Keep the channel through the backoff: alerts that arrive meanwhile wait behind the head.
    client.set(lock_key, token, ex=int(delay + settings.job_timeout + 120))
    queue = deliveries_queue(client)
    options: dict[str, Any] = {"job_timeout": settings.job_timeout, "retry": CRASH_RETRY, "result_ttl": 0}
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), DRAIN_JOB, sink, topic, token, **options)
    else:
        queue.enqueue(DRAIN_JOB, sink, topic, token, **options)
        wake_lingering(client)
    return f"retry in {delay:.1f}s"


def _deliveries_idle(client: redis.Redis) -> bool:
    """True when no job waits on the deliveries queue (a lingering job would hold it up)."""
    return not client.llen(deliveries_queue(client).key)


def _observe_latency(client: redis.Redis, message: Message) -> None:
    """Seconds from each alert's match to this 2xx, into the shared delivery latency histogram."""
    from newswatch.metrics import DELIVERY, observe

    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        for alert in message.alerts:
            try:
                matched = datetime.fromisoformat(str(alert.get("matched_at", "")).replace("Z", "+00:00"))
            except ValueError:
                continue
            observe(pipe, DELIVERY, max(0.0, now - matched.timestamp()))
        pipe.execute()


def _unusable(client: redis.Redis, config: SinkConfig | None, sink: str) -> str | None:
    """Why nothing can be sent to the sink now (not configured, disabled by 410), else None."""
    if config is None:
        return f"sink {sink!r} is no longer configured"
    raw = client.hget(state.DISABLED, sink)
    if raw:
        disabled = json.loads(raw)
        if disabled.get("fingerprint") == config.fingerprint:
            return f"sink {sink!r} is disabled since {disabled.get('at')} ({disabled.get('error')})"
    return None


def _attempt(result: SendResult | None, error: str | None = None) -> dict[str, Any]:
    return {
        "at": now_iso(),
        "status": result.status if result else None,
        "error": error if result is None else result.error,
    }


def _record_attempt(
    client: redis.Redis, sink: str, topic: str, message_id: str, result: SendResult
) -> list[dict[str, Any]]:
    key = state.channel_state(sink, topic)
    current = client.hgetall(key)
    attempts: list[dict[str, Any]] = []
    if state.text(current.get(b"head")) == message_id:
        attempts = json.loads(current.get(b"attempts") or b"[]")
    attempts.append(_attempt(result))
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"head": message_id, "attempts": json.dumps(attempts)})
    pipe.hincrby(state.STATS, "failed_attempts", 1)
    pipe.execute()
    return attempts


def dead_letter(
    client: redis.Redis,
    sink: str,
    topic: str,
    raws: list[Any],
    attempts: list[dict[str, Any]],
    error: str,
    head: Any = None,
) -> None:
    """Move messages off the outbox into the dead letters, each with the attempts and the final error."""
    pipe = client.pipeline(transaction=True)
    for raw in raws:
        message = Message.from_json(json.loads(raw), sink)
        record = {
            "sink": sink,
            "topic": message.topic,
            "message": message.to_json(),
            "attempts": attempts,
            "error": error,
            "dead_at": now_iso(),
        }
        if head is not None and raw != head:
            record["waited_behind"] = Message.from_json(json.loads(head), sink).id
        pipe.lrem(state.outbox(sink, topic), 1, raw)
        pipe.hset(state.DEAD, state.record_field(sink, message.id), json.dumps(record, ensure_ascii=False))
        pipe.hincrby(state.STATS, "dead_lettered", 1)
    pipe.delete(state.channel_state(sink, topic))
    pipe.execute()
    log.error("dead-lettered", sink=sink, topic=topic, count=len(raws), error=error)

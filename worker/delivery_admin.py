"""Delivery for operators: counts for `status`, dead letters for `alerts --failed`, `alerts redeliver`, and
the checks `run --once` waits on (everything delivered or dead-lettered)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis

from newswatch import keys
from newswatch.settings import Settings
from worker import delivery_state as state
from worker.delivery import close_window, context_for, pending_ttl, start_drain
from worker.sinks.message import Message

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: A digest window this late (the flush job was lost) is closed by `kick_stalled`.
WINDOW_GRACE = 30


class RedeliverError(ValueError):
    """A redelivery request that cannot be understood (e.g. a bad --since)."""


def _members(client: redis.Redis, key: str) -> list[tuple[str, str]]:
    return [state.parse_member(value) for value in client.smembers(key)]


def delivery_counts(client: redis.Redis) -> dict[str, Any]:
    """What `newswatch status` shows about deliveries."""
    stats = {state.text(k): int(v) for k, v in client.hgetall(state.STATS).items()}
    queued = retrying = 0
    for sink, topic in _members(client, state.CHANNELS):
        waiting = int(client.llen(state.outbox(sink, topic)))
        if client.hexists(state.channel_state(sink, topic), "attempts"):
            retrying += waiting
        else:
            queued += waiting
    in_windows = sum(int(client.llen(state.digest_buffer(s, t))) for s, t in _members(client, state.WINDOWS))
    disabled = {state.text(k): json.loads(v) for k, v in client.hgetall(state.DISABLED).items()}
    return {
        "delivered": stats.get("delivered", 0),
        "delivered_alerts": stats.get("delivered_alerts", 0),
        "queued": queued,
        "retrying": retrying,
        "dead_lettered": int(client.hlen(state.DEAD)),
        "failed_attempts": stats.get("failed_attempts", 0),
        "suppressed_cap": stats.get("suppressed_cap", 0),
        "suppressed_held": int(client.hlen(state.SUPPRESSED)),
        "digested": stats.get("digested", 0),
        "digests_sent_or_queued": stats.get("digests", 0),
        "waiting_in_digest": in_windows,
        "redelivered": stats.get("redelivered", 0),
        "disabled_sinks": disabled,
    }


def deliveries_settled(client: redis.Redis) -> bool:
    """True when no alert waits for a sink: every one is delivered, dead-lettered or suppressed."""
    if client.scard(state.WINDOWS):
        return False
    return all(not client.llen(state.outbox(sink, topic)) for sink, topic in _members(client, state.CHANNELS))


def flush_open_digests(client: redis.Redis, settings: Settings | None = None) -> int:
    """Close every open digest window now (`run --once` does not wait 15 minutes); how many were closed."""
    context = context_for(settings)
    closed = 0
    for sink, topic in _members(client, state.WINDOWS):
        start = state.text(client.get(state.window(sink, topic)))
        if start is not None and close_window(client, context, sink, topic, start) not in ("stale", "empty"):
            closed += 1
    return closed


def kick_stalled(client: redis.Redis, settings: Settings | None = None) -> int:
    """Restart channels nobody drains (their job was lost) and close overdue windows; how many."""
    context = context_for(settings)
    kicked = 0
    for sink, topic in _members(client, state.CHANNELS):
        ttl = pending_ttl(context.settings)
        if client.llen(state.outbox(sink, topic)) and state.claim_pending(client, sink, topic, ttl):
            start_drain(client, sink, topic, context.settings)
            kicked += 1
    now = time.time()
    for sink, topic in _members(client, state.WINDOWS):
        start = state.text(client.get(state.window(sink, topic)))
        config = context.sinks.by_name.get(sink)
        length = config.digest if config and config.digest else 0
        if start is not None and float(start) + length + WINDOW_GRACE < now:
            close_window(client, context, sink, topic, start)
            kicked += 1
    return kicked


def _records(client: redis.Redis, key: str) -> list[dict[str, Any]]:
    out = []
    for name, raw in client.hgetall(key).items():
        record = json.loads(raw)
        record["key"] = state.text(name)
        record.setdefault("sink", record["key"].split("|", 1)[0])
        out.append(record)
    return out


def failed_deliveries(client: redis.Redis) -> list[dict[str, Any]]:
    """Dead letters, oldest first: {sink, topic, message {id, alerts, window?}, attempts, error, dead_at}."""
    return sorted(_records(client, state.DEAD), key=lambda record: record.get("dead_at", ""))


def suppressed_deliveries(client: redis.Redis) -> list[dict[str, Any]]:
    """Alerts held back by max_per_hour, oldest first: {sink, reason, at, message}."""
    return sorted(_records(client, state.SUPPRESSED), key=lambda record: float(record.get("at", 0)))


def format_failed(records: Iterable[dict[str, Any]]) -> list[str]:
    """One readable line per dead letter (the text form of `alerts --failed`)."""
    lines = []
    for record in records:
        message = Message.from_json(record["message"], record["sink"])
        titles = "; ".join(str((a.get("article") or {}).get("title") or "") for a in message.alerts)
        last = record.get("attempts", [])[-1:] or [{}]
        lines.append(
            f"{record.get('dead_at')}  {record['sink']}  {message.id}  [{message.topic.get('id')}] {titles}  "
            f"{len(record.get('attempts', []))} attempt(s), last: {last[0].get('status') or '-'}  "
            f"{record.get('error')}"
        )
    return lines


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds of `--since`: an ISO-8601 time ("2025-01-31T08:00", "2025-01-31") or an age ("2h")."""
    now = time.time() if now is None else now
    relative = _RELATIVE.match(text)
    if relative:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RedeliverError(
            f"--since {text!r}: expected an ISO-8601 time or an age like 2h, 30m, 1d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass
class RedeliverReport:
    """What `redeliver` queued again: (sink, message id) pairs, and the ids it found nowhere."""

    requeued: list[tuple[str, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    enabled_sinks: list[str] = field(default_factory=list)


def redeliver(
    client: redis.Redis,
    ids: Iterable[str] = (),
    *,
    failed: bool = False,
    since: str | None = None,
    settings: Settings | None = None,
) -> RedeliverReport:
    """Send again, with the same webhook ids: the given alert or digest ids, every dead letter
    (`failed`), or every alert logged since a time. A dead letter or suppressed record is taken off its
    list; a sink disabled by 410 Gone is enabled again (the operator asked for it)."""
    context = context_for(settings)
    report = RedeliverReport()
    wanted = [str(ident) for ident in ids]
    dead = _records(client, state.DEAD)
    suppressed = _records(client, state.SUPPRESSED)
    found: set[str] = set()

    def take(record: dict[str, Any], source: str) -> None:
        message = Message.from_json(record["message"], record["sink"])
        _requeue(client, context.settings, record["sink"], message, report, remove=(source, record["key"]))

    for record in dead:
        message = record["message"]
        alert_ids = {str(alert["id"]) for alert in message.get("alerts", [])}
        hits = {ident for ident in wanted if ident == message.get("id") or ident in alert_ids}
        if failed or hits:
            found |= hits | ({str(message.get("id"))} if failed else set())
            take(record, state.DEAD)
    for record in suppressed:
        alert_ids = {str(alert["id"]) for alert in record["message"].get("alerts", [])}
        hits = {ident for ident in wanted if ident in alert_ids or record["key"].endswith("|" + ident)}
        if hits:
            found |= hits
            take(record, state.SUPPRESSED)
    for ident in wanted:
        if ident in found:
            continue
        alert = _logged_alert(client, ident)
        if alert is None:
            report.not_found.append(ident)
        else:
            _requeue_alert(client, context, alert, report)
    if since is not None:
        start_ms = int(parse_since(since) * 1000)
        after = f"{start_ms}-0"
        while True:
            rows = cast(list[Any], client.xrange(keys.ALERTS_STREAM, min=after, count=500))
            for _entry_id, fields in rows:
                alert = json.loads(fields.get(b"alert", b"{}"))
                _requeue_alert(client, context, alert, report)
            if len(rows) < 500:
                break
            after = "(" + str(state.text(rows[-1][0]))
    return report


def _logged_alert(client: redis.Redis, alert_id: str) -> dict[str, Any] | None:
    entry = state.text(client.get(keys.alert_marker(alert_id)))
    if entry:
        rows = cast(list[Any], client.xrange(keys.ALERTS_STREAM, min=entry, max=entry))
        if rows:
            return dict(json.loads(rows[0][1][b"alert"]))
    return None


def _requeue_alert(client: redis.Redis, context: Any, alert: dict[str, Any], report: RedeliverReport) -> None:
    routed = state.text(client.get(state.route(str(alert["id"]))))
    names = json.loads(routed) if routed else list(context.sinks.defaults)
    for name in names:
        if name in context.sinks:
            _requeue(client, context.settings, name, Message.single(alert), report)


def _requeue(
    client: redis.Redis,
    settings: Settings,
    sink: str,
    message: Message,
    report: RedeliverReport,
    remove: tuple[str, str] | None = None,
) -> None:
    topic = str(message.topic.get("id") or "")
    record = {**message.to_json(), "force": True}
    pipe = client.pipeline(transaction=True)
    pipe.rpush(state.outbox(sink, topic), json.dumps(record, ensure_ascii=False, sort_keys=True))
    pipe.sadd(state.CHANNELS, state.member(sink, topic))
    pipe.hincrby(state.STATS, "redelivered", 1)
    if remove is not None:
        pipe.hdel(remove[0], remove[1])
    pipe.hdel(state.DISABLED, sink)
    results = pipe.execute()
    if results[-1] and sink not in report.enabled_sinks:
        report.enabled_sinks.append(sink)
    report.requeued.append((sink, message.id))
    if state.claim_pending(client, sink, topic, pending_ttl(settings)):
        start_drain(client, sink, topic, settings)


def settle_step(client: redis.Redis, settings: Settings | None = None, *, close_windows: bool = True) -> bool:
    """For `run --once`, called in its wait loop: close open digest windows (`close_windows`), restart
    channels whose drain job was lost, and tell whether every alert is delivered or dead-lettered."""
    if close_windows:
        flush_open_digests(client, settings)
    if deliveries_settled(client):
        return True
    kick_stalled(client, settings)
    return False

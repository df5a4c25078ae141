"""Delivery state in Redis: per (sink, topic) outboxes, locks, delivered markers, dead letters, caps, digests.

A *channel* is one (sink, topic) pair. Its outbox is a FIFO list of messages; one drain job at a time owns
the channel (a lock whose value is the owning job's token) and sends the head until the list is empty, so
a receiver sees a topic's alerts in the order they were matched, also after an outage. A failing head
keeps the channel in backoff; when the retry schedule is spent, the whole waiting outbox is dead-lettered.

Key names (all under "newswatch:dlv:"), owned by this module:
  outbox:<sink>:<topic>     LIST   message JSON, oldest first
  lock:<sink>:<topic>       STRING token of the drain job that owns the channel, or "pending" (expires)
  bell:<sink>:<topic>       LIST   rung (one element at most) when an alert joins an owned outbox: wakes
                                   a drain job that lingers for the next alert
  wake                      LIST   rung (one element at most, expires) when a drain job joins the
                                   deliveries queue: a lingering drain job lets its worker go at once
  channel:<sink>:<topic>    HASH   head, attempts (JSON list), next_at: the head's failed attempts
  channels                  SET    channels with an outbox ([sink, topic] JSON)
  queued:<sink>:<alert id>  STRING the alert was admitted for the sink (EX dedup window): idempotent enqueue
  delivered:<sink>:<id>     STRING a receiver answered 2xx for this message id (EX dedup window)
  dead                      HASH   "<sink>|<message id>" -> {sink, message, attempts, error, dead_at}
  suppressed                HASH   "<sink>|<id>" -> {sink, message, reason, at}: over max_per_hour
  cap:<sink>:<topic>        ZSET   message ids sent in the last hour (score = time)
  digest:<sink>:<topic>     LIST   alert JSON waiting for the digest window to close
  window:<sink>:<topic>     STRING the open digest window's start (epoch seconds)
  windows                   SET    channels with an open digest window
  route:<alert id>          STRING JSON list of the sinks the alert went to (EX dedup window), for redelivery
  disabled                  HASH   sink -> {fingerprint, at, error}: sinks that answered 410 Gone
  stats                     HASH   delivered, delivered_alerts, failed_attempts, dead_lettered,
                                   suppressed_cap, digested, digests, redelivered
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from newswatch.queues import KEY_PREFIX

PREFIX = KEY_PREFIX + "dlv:"
CHANNELS = PREFIX + "channels"
WINDOWS = PREFIX + "windows"
DEAD = PREFIX + "dead"
SUPPRESSED = PREFIX + "suppressed"
DISABLED = PREFIX + "disabled"
STATS = PREFIX + "stats"
WAKE = PREFIX + "wake"


def outbox(sink: str, topic: str) -> str:
    return f"{PREFIX}outbox:{sink}:{topic}"


def lock(sink: str, topic: str) -> str:
    return f"{PREFIX}lock:{sink}:{topic}"


def bell(sink: str, topic: str) -> str:
    return f"{PREFIX}bell:{sink}:{topic}"


def channel_state(sink: str, topic: str) -> str:
    return f"{PREFIX}channel:{sink}:{topic}"


def queued(sink: str, alert_id: str) -> str:
    return f"{PREFIX}queued:{sink}:{alert_id}"


def delivered(sink: str, message_id: str) -> str:
    return f"{PREFIX}delivered:{sink}:{message_id}"


def cap(sink: str, topic: str) -> str:
    return f"{PREFIX}cap:{sink}:{topic}"


def digest_buffer(sink: str, topic: str) -> str:
    return f"{PREFIX}digest:{sink}:{topic}"


def window(sink: str, topic: str) -> str:
    return f"{PREFIX}window:{sink}:{topic}"


def route(alert_id: str) -> str:
    return f"{PREFIX}route:{alert_id}"


def member(sink: str, topic: str) -> str:
    return json.dumps([sink, topic])


def parse_member(value: bytes | str) -> tuple[str, str]:
    sink, topic = json.loads(value)
    return str(sink), str(topic)


def record_field(sink: str, ident: str) -> str:
    return f"{sink}|{ident}"


# Admit one alert for one sink. Returns: dup | capped | digest | window | queued | drain.
_ADMIT = """
-- KEYS: queued, outbox, lock, channels, cap, suppressed, stats, digest, window, windows, bell
-- ARGV: alert json, message json, member, now, cap, digest, marker ttl, suppressed field, suppressed json,
--       alert id, pending lock ttl
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[7]) then return 'dup' end
if tonumber(ARGV[6]) > 0 then
  redis.call('RPUSH', KEYS[8], ARGV[1])
  redis.call('HINCRBY', KEYS[7], 'digested', 1)
  if redis.call('SET', KEYS[9], ARGV[4], 'NX') then
    redis.call('SADD', KEYS[10], ARGV[3])
    return 'window'
  end
  return 'digest'
end
if tonumber(ARGV[5]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[4]) - 3600)
  if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[6], ARGV[8], ARGV[9])
    redis.call('HINCRBY', KEYS[7], 'suppressed_cap', 1)
    return 'capped'
  end
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[10])
  redis.call('EXPIRE', KEYS[5], 3700)
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
if redis.call('SET', KEYS[3], 'pending', 'NX', 'EX', ARGV[11]) then return 'drain' end
redis.call('RPUSH', KEYS[11], '1')
redis.call('LTRIM', KEYS[11], -1, -1)
redis.call('EXPIRE', KEYS[11], 60)
return 'queued'
"""

# Close a digest window: its alerts become one message at the end of the outbox.
_FLUSH = """
-- KEYS: digest, window, windows, outbox, lock, channels, cap, suppressed, stats
-- ARGV: window start, member, message prefix, now, cap, suppressed field prefix, pending lock ttl
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
if #items == 0 then return 'empty' end
local message = ARGV[3] .. table.concat(items, ',') .. ']}'
if tonumber(ARGV[5]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', tonumber(ARGV[4]) - 3600)
  if redis.call('ZCARD', KEYS[7]) >= tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[8], ARGV[6] .. ARGV[1], '{"reason":"max_per_hour","at":' .. ARGV[4] ..
      ',"message":' .. message .. '}')
    redis.call('HINCRBY', KEYS[9], 'suppressed_cap', #items)
    return 'capped'
  end
  redis.call('ZADD', KEYS[7], ARGV[4], 'digest:' .. ARGV[1])
  redis.call('EXPIRE', KEYS[7], 3700)
end
redis.call('HINCRBY', KEYS[9], 'digests', 1)
redis.call('RPUSH', KEYS[4], message)
redis.call('SADD', KEYS[6], ARGV[2])
if redis.call('SET', KEYS[5], 'pending', 'NX', 'EX', ARGV[7]) then return 'drain' end
return 'queued'
"""

# Take (or keep) the channel for the drain job holding `token`. "pending": a drain job was enqueued for
# the channel and nobody runs it yet (so further alerts do not enqueue more jobs); any drain job takes it.
_ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if (not owner) or owner == ARGV[1] or owner == 'pending' then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""

# Give the channel up, but only when nothing is waiting (else the owner must go on).
_RELEASE_IF_EMPTY = """
-- KEYS: lock, outbox, channels, channel state.  ARGV: token, member
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"""

# A receiver answered 2xx: mark the message delivered and take it off the outbox in one step.
_COMPLETE = """
-- KEYS: outbox, delivered, channel state, stats, lock.  ARGV: raw message, marker ttl, alert count, token,
--       lock ttl.  Returns 1 while the caller still owns the channel (its lock is extended), else 0.
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[4], 'delivered', 1)
redis.call('HINCRBY', KEYS[4], 'delivered_alerts', ARGV[3])
if redis.call('GET', KEYS[5]) == ARGV[4] then
  redis.call('EXPIRE', KEYS[5], ARGV[5])
  return 1
end
return 0
"""


@dataclass
class Scripts:
    """The Lua scripts, registered once per client (EVALSHA after the first call)."""

    admit: Any
    flush: Any
    acquire: Any
    release_if_empty: Any
    complete: Any


_scripts: dict[int, Scripts] = {}


def scripts(client: redis.Redis) -> Scripts:
    found = _scripts.get(id(client))
    if found is None:
        found = Scripts(
            admit=client.register_script(_ADMIT),
            flush=client.register_script(_FLUSH),
            acquire=client.register_script(_ACQUIRE),
            release_if_empty=client.register_script(_RELEASE_IF_EMPTY),
            complete=client.register_script(_COMPLETE),
        )
        _scripts[id(client)] = found
    return found


PENDING = "pending"


def claim_pending(client: redis.Redis, sink: str, topic: str, ttl: int) -> bool:
    """Mark the channel as having a drain job on the way; False when one runs or is on the way already."""
    return bool(client.set(lock(sink, topic), PENDING, nx=True, ex=ttl))


def text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else value

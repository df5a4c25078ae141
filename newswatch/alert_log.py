"""The alert log: a bounded Redis Stream that workers append to and the CLI (and anyone) reads.

Appending is one Lua script: check the alert's marker key, XADD with MAXLEN ~, set the marker to the
entry id and count the alert, all atomically. A re-run job (RQ delivery is at least once) or a
re-ingested article therefore never writes a second entry for the same (topic, article) pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from newswatch import keys

_APPEND_LUA = """
-- KEYS: marker, stream, stats.  ARGV: alert JSON, stream maxlen, marker ttl (seconds).
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
local entry = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[1])
redis.call('SET', KEYS[1], entry, 'EX', ARGV[3])
redis.call('HINCRBY', KEYS[3], 'alerts', 1)
return entry
"""


@dataclass(frozen=True, slots=True)
class AlertEntry:
    """One entry of the log: the stream id (position, for `--follow` and redelivery) and the alert."""

    entry_id: str
    alert: dict[str, Any]


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> AlertEntry:
    raw = fields.get(b"alert", fields.get("alert", b"{}"))
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return AlertEntry(ident, json.loads(text))


class AlertLog:
    """Append to and read the alert stream of one Redis client. Create once per process and reuse."""

    def __init__(
        self, client: redis.Redis, *, maxlen: int = 100_000, marker_ttl: int = 30 * 24 * 3600
    ) -> None:
        self.client = client
        self.maxlen = maxlen
        self.marker_ttl = marker_ttl
        self._append = client.register_script(_APPEND_LUA)  # EVALSHA, loaded on first use

    def append(self, alert: dict[str, Any], *, client: redis.Redis | None = None) -> str | None:
        """Add the alert unless its id is already in the log; the new entry's id, or None if it was."""
        alert_id = alert["id"]
        result = self._append(
            keys=[keys.alert_marker(alert_id), keys.ALERTS_STREAM, keys.STATS],
            args=[json.dumps(alert, ensure_ascii=False, sort_keys=True), self.maxlen, self.marker_ttl],
            client=client or self.client,
        )
        if result is None:
            return None
        return result.decode() if isinstance(result, bytes) else str(result)

    def entry_of(self, alert_id: str) -> str | None:
        """The stream id an alert was written at (while its marker lives), else None."""
        value: Any = self.client.get(keys.alert_marker(alert_id))
        return value.decode() if isinstance(value, bytes) else value

    def __len__(self) -> int:
        return int(self.client.xlen(keys.ALERTS_STREAM))

    def latest(self, limit: int | None = None) -> list[AlertEntry]:
        """The last `limit` alerts (all when None), oldest first."""
        if limit is not None and limit <= 0:
            return []
        rows: Any = self.client.xrevrange(keys.ALERTS_STREAM, count=limit)
        return [_decode(entry_id, fields) for entry_id, fields in reversed(rows)]

    def since(self, after: str = "0", count: int = 1000) -> list[AlertEntry]:
        """Alerts written after the entry id `after` (exclusive), oldest first."""
        rows: Any = self.client.xrange(
            keys.ALERTS_STREAM, min=f"({after}" if after != "0" else "-", count=count
        )
        return [_decode(entry_id, fields) for entry_id, fields in rows]

    def follow(self, after: str = "$", block_ms: int = 1000) -> Iterator[AlertEntry]:
        """New alerts as they are written, forever (XREAD BLOCK); `after` = "$" means from now on."""
        if after == "$":
            last: Any = self.client.xrevrange(keys.ALERTS_STREAM, count=1)
            after = last[0][0].decode() if last else "0-0"
        while True:
            reply: Any = self.client.xread({keys.ALERTS_STREAM: after}, block=block_ms, count=100)
            for _stream, rows in reply or ():
                for entry_id, fields in rows:
                    entry = _decode(entry_id, fields)
                    after = entry.entry_id
                    yield entry


def source_label(article: dict[str, Any]) -> str:
    """A short name for where the article came from: the feed or site name, else its host or kind."""
    source = article.get("source") or {}
    if isinstance(source, str):
        return source
    if source.get("name"):
        return str(source["name"])
    url = source.get("url") or article.get("url") or ""
    if url.startswith(("http://", "https://")):
        return url.split("/", 3)[2]
    return str(source.get("kind") or "unknown")


def format_alert_line(alert: dict[str, Any], *, snippet_chars: int = 160) -> str:
    """One readable line per alert: time, topic, title, source and the matched snippet."""
    article = alert.get("article") or {}
    topic = alert.get("topic") or {}
    when = str(alert.get("matched_at") or "")[:19].replace("T", " ")
    snippet = " ".join(str(alert.get("snippet") or "").split())
    if len(snippet) > snippet_chars:
        snippet = snippet[: snippet_chars - 1].rstrip() + "…"
    title = " ".join(str(article.get("title") or article.get("url") or article.get("id") or "").split())
    line = f"{when}  [{topic.get('id', '?')}] {title} ({source_label(article)})"
    return f"{line}: “{snippet}”" if snippet else line

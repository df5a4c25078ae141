"""What a sink sends: one alert, or a digest of a topic's alerts in one window (pure: no I/O, no clock)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ALERT_EVENT = "topic.matched"
DIGEST_EVENT = "topic.digest"


@dataclass(frozen=True)
class Message:
    """One delivery to one sink. `id` is the webhook-id: the alert id, or a digest id from its alerts."""

    id: str
    topic: dict[str, Any]
    alerts: tuple[dict[str, Any], ...]
    window: tuple[str, str] | None = None  # ISO-8601 start and end of a digest window

    @property
    def alert_ids(self) -> tuple[str, ...]:
        return tuple(str(alert["id"]) for alert in self.alerts)

    @classmethod
    def single(cls, alert: dict[str, Any]) -> Message:
        return cls(id=str(alert["id"]), topic=dict(alert.get("topic") or {}), alerts=(alert,))

    @classmethod
    def digest(
        cls, sink: str, topic: dict[str, Any], alerts: list[dict[str, Any]], window: tuple[str, str]
    ) -> Message:
        """The id depends only on the sink, topic and alerts: every retry and redelivery keeps it."""
        ids = "\n".join(sorted(str(alert["id"]) for alert in alerts))
        digest = hashlib.sha256(f"{sink}\x00{topic.get('id')}\x00{ids}".encode()).hexdigest()
        return cls(id="dg_" + digest[:24], topic=topic, alerts=tuple(alerts), window=window)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "topic": self.topic, "alerts": list(self.alerts)}
        if self.window is not None:
            record["window"] = list(self.window)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any], sink: str = "") -> Message:
        """The message an outbox record holds; a digest written by Redis gets its id here."""
        alerts = [dict(alert) for alert in record["alerts"]]
        topic = dict(record.get("topic") or (alerts[0].get("topic") if alerts else {}) or {})
        window = record.get("window")
        if window:
            start, end = str(window[0]), str(window[1])
            if record.get("id"):
                return cls(id=str(record["id"]), topic=topic, alerts=tuple(alerts), window=(start, end))
            return cls.digest(sink, topic, alerts, (start, end))
        return cls(id=str(record.get("id") or alerts[0]["id"]), topic=topic, alerts=tuple(alerts))

    # --- renderings -------------------------------------------------------------------------------

    def event(self) -> dict[str, Any]:
        """The Standard Webhooks payload: {"type", "timestamp", "data"}; the same bytes on every attempt."""
        if self.window is None:
            alert = self.alerts[0]
            return {"type": ALERT_EVENT, "timestamp": alert.get("matched_at"), "data": alert}
        return {
            "type": DIGEST_EVENT,
            "timestamp": self.window[1],
            "data": {
                "id": self.id,
                "topic": self.topic,
                "window": {"start": self.window[0], "end": self.window[1]},
                "count": len(self.alerts),
                "alerts": list(self.alerts),
            },
        }

    def body(self) -> bytes:
        return json.dumps(self.event(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def title(self) -> str:
        """A short human title (Apprise notifications)."""
        topic = self.topic.get("name") or self.topic.get("id") or "topic"
        if self.window is None:
            return f"[{topic}] {self.alerts[0].get('article', {}).get('title') or 'new article'}"
        return f"[{topic}] {len(self.alerts)} new article{'s' if len(self.alerts) != 1 else ''}"

    def text(self) -> str:
        """A readable body: topic, title, source, snippet and link of every article."""
        blocks = []
        for alert in self.alerts:
            article = alert.get("article") or {}
            lines = [] if self.window is None else [f"• {article.get('title') or '(untitled)'}"]
            lines.append(f"Source: {source_name(article)}")
            snippet = (alert.get("snippet") or "").strip()
            if snippet:
                lines.append(snippet)
            if article.get("url"):
                lines.append(str(article["url"]))
            blocks.append("\n".join(lines))
        header = f"Topic: {self.topic.get('name') or self.topic.get('id')}"
        if self.window is not None:
            header += f" (digest {self.window[0]} – {self.window[1]})"
        return header + "\n\n" + "\n\n".join(blocks)

    def lines(self) -> list[str]:
        """One console line per alert."""
        out = []
        for alert in self.alerts:
            article = alert.get("article") or {}
            parts = [
                f"ALERT [{self.topic.get('id')}] {article.get('title') or '(untitled)'}",
                source_name(article),
                str(article.get("url") or ""),
                f"score {alert.get('score')}",
                str(alert.get("id")),
            ]
            if self.window is not None:
                parts.append(f"digest {self.id}")
            out.append(" | ".join(parts))
        return out


def source_name(article: dict[str, Any]) -> str:
    """A readable name for where the article came from."""
    source = article.get("source")
    if isinstance(source, dict):
        for key in ("title", "name", "feed", "url", "path", "kind"):
            if source.get(key):
                return str(source[key])
    elif source:
        return str(source)
    host = urlsplit(str(article.get("url") or "")).hostname
    return host or "unknown source"

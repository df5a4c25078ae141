"""Alerts from matches: one per (topic, article), with an id derived from that pair (pure, no clock)."""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from worker.core.article import Article


class MatchLike(Protocol):
    """What an alert needs from a watchlist match (worker.core.matcher.Match)."""

    topic_id: str
    topic_name: str
    score: float
    snippet: str

    def to_json(self) -> dict[str, Any]: ...


def alert_id(topic_id: str, article_id: str) -> str:
    """Stable id of the alert for this topic and article: a re-run or re-ingest gives the same id."""
    digest = hashlib.sha256(f"{topic_id}\x00{article_id}".encode()).hexdigest()
    return "al_" + digest[:24]


def build_alert(article: Article, match: MatchLike, matched_at: str) -> dict[str, Any]:
    """The alert as it goes to the alert log and the webhook (`data` of a topic.matched event)."""
    evidence = match.to_json().get("evidence", [])
    return {
        "id": alert_id(match.topic_id, article.id),
        "topic": {"id": match.topic_id, "name": match.topic_name},
        "article": article.summary(),
        "score": match.score,
        "evidence": evidence,
        "snippet": match.snippet,
        "matched_at": matched_at,
    }


def build_alerts(article: Article, matches: list[Any], matched_at: str) -> list[dict[str, Any]]:
    """One alert per matched topic (a topic matched twice still gives one alert)."""
    alerts: dict[str, dict[str, Any]] = {}
    for match in matches:
        alerts.setdefault(match.topic_id, build_alert(article, match, matched_at))
    return list(alerts.values())

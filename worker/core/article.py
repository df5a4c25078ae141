"""The Article: what extraction produces and what the matcher reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Article:
    """One extracted article. `text` is the plain main text (original casing and punctuation)."""

    id: str
    url: str
    title: str
    text: str
    published: str | None = None
    language: str | None = None
    author: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    published_is_fallback: bool = False

    def summary(self) -> dict[str, Any]:
        """The article as an alert and `match --json` show it (no body text)."""
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "source": self.source,
            "published": self.published,
            "language": self.language,
        }

"""The JSON messages that travel through Redis between producer and worker (never pickle)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: How the body of a document is written; decides how the worker extracts the article.
DocumentFormat = Literal["text", "markdown", "html", "json", "url"]


@dataclass(frozen=True, slots=True)
class Source:
    """Where an article came from: a feed, the seeds folder, or the command line."""

    kind: Literal["file", "feed", "cli", "url"]
    name: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """One article as a source hands it over, before extraction.

    `body` is decoded text (never bytes). For format "url" the body is empty and the worker fetches `url`.
    `title`, `published` (ISO-8601, UTC), `author` and `language` are hints from the source (a feed
    entry, a JSON file); extraction fills what is missing.
    """

    url: str
    format: DocumentFormat
    body: str
    source: Source = field(default_factory=lambda: Source(kind="cli"))
    title: str = ""
    published: str | None = None
    published_is_fallback: bool = False
    author: str = ""
    language: str | None = None
    full_text: bool = False

    @property
    def content_hash(self) -> str:
        """Hash of the body as delivered, for "same content" deduplication."""
        return hashlib.sha256(self.body.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def article_id(self) -> str:
        """Stable id: from the canonical URL where there is one, else from the content."""
        basis = self.url if self.url and not self.url.startswith("stdin:") else self.content_hash
        return "a_" + hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["source"]["tags"] = list(self.source.tags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        source = data.get("source") or {}
        return cls(
            **{k: v for k, v in data.items() if k != "source"},
            source=Source(
                kind=source.get("kind", "cli"),
                name=source.get("name", ""),
                url=source.get("url", ""),
                tags=tuple(source.get("tags", ())),
            ),
        )

"""The Apprise sink (kind "apprise", optional extra `newswatch[apprise]`): Slack, Teams, email, ntfy and more.

Sends a readable notification: the topic and the article's title as the title; source, snippet and link
(for a digest, one block per article) as the body.
"""

from __future__ import annotations

from typing import Any

from worker.sinks.base import SendResult
from worker.sinks.config import SinkConfig, SinkConfigError
from worker.sinks.message import Message


def load_apprise(sink_name: str) -> Any:
    """The apprise module, or a SinkConfigError saying how to install it."""
    try:
        import apprise
    except ImportError:
        raise SinkConfigError(
            f"[sinks.{sink_name}]: kind apprise needs the optional extra: pip install 'newswatch[apprise]'"
        ) from None
    return apprise


class AppriseSink:
    def __init__(self, config: SinkConfig) -> None:
        apprise = load_apprise(config.name)
        self.name = config.name
        self._apprise = apprise
        self._notifier = apprise.Apprise()
        for url in config.urls:
            if not self._notifier.add(url):
                # Apprise refuses a URL it cannot parse; the URL may hold a token, so do not echo it.
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise SinkConfigError(
                    f"[sinks.{config.name}]: Apprise does not understand the {scheme}:// URL"
                )

    def send(self, message: Message) -> SendResult:
        with self._apprise.LogCapture(level=self._apprise.logging.WARNING) as captured:
            ok = self._notifier.notify(title=message.title(), body=message.text())
        if ok:
            return SendResult(True)
        lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        return SendResult(False, error=lines[-1] if lines else "Apprise could not deliver the notification")

    def close(self) -> None:
        pass

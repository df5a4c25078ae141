"""Alert sinks: where alerts go (signed webhooks, Apprise services, the console) and their configuration."""

from __future__ import annotations

from typing import Any

from worker.sinks.base import SendResult, Sink
from worker.sinks.config import SinkConfig, SinkConfigError, Sinks, load_sinks
from worker.sinks.message import Message

__all__ = [
    "Message",
    "SendResult",
    "Sink",
    "SinkConfig",
    "SinkConfigError",
    "Sinks",
    "load_sinks",
    "open_sink",
]


def open_sink(config: SinkConfig, fetcher: Any = None) -> Sink:
    """A ready sink for a configuration (`fetcher`: the shared newswatch.http.Fetcher, for webhooks)."""
    if config.kind == "webhook":
        from worker.sinks.webhook import WebhookSink

        if fetcher is None:
            raise ValueError("a webhook sink needs the shared Fetcher")
        return WebhookSink(config, fetcher)
    if config.kind == "apprise":
        from worker.sinks.apprise_sink import AppriseSink

        return AppriseSink(config, guard=getattr(fetcher, "guard", None))
    from worker.sinks.stdout_sink import StdoutSink

    return StdoutSink(config)

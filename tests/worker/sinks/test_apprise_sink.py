"""The Apprise sink posting to a local endpoint (Apprise's json:// service), and the console sink."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

from newswatch.http.ssrf import AddressGuard
from worker.sinks.apprise_sink import AppriseSink
from worker.sinks.config import SinkConfig, SinkConfigError
from worker.sinks.message import Message
from worker.sinks.stdout_sink import StdoutSink

ALERT = {
    "id": "al_feedfacefeedfacefeedface",
    "topic": {"id": "nk-troops-kursk", "name": "North Korean troops in Kursk"},
    "article": {
        "id": "a9",
        "url": "https://wire.example.org/pows",
        "title": "Two soldiers captured in Kursk region",
        "source": {"title": "Example Wire"},
    },
    "score": 3.0,
    "evidence": [],
    "snippet": "Ukraine said it had captured two North Korean soldiers in the Kursk region.",
    "matched_at": "2025-01-11T09:00:00.000Z",
}


LOCAL = AddressGuard(["127.0.0.1"])


def test_apprise_sends_a_readable_message(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory()
    sink = AppriseSink(SinkConfig("chat", "apprise", (f"json://127.0.0.1:{receiver.port}/in",)), LOCAL)
    assert sink.send(Message.single(ALERT)).ok
    (request,) = receiver.requests
    sent = request.payload
    assert sent["title"] == "[North Korean troops in Kursk] Two soldiers captured in Kursk region"
    assert "Example Wire" in sent["message"]
    assert "captured two North Korean soldiers" in sent["message"]
    assert "https://wire.example.org/pows" in sent["message"]


def test_apprise_failure_is_reported(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory(plan=lambda n, h, b: (500, {}))
    sink = AppriseSink(SinkConfig("chat", "apprise", (f"json://127.0.0.1:{receiver.port}/in",)), LOCAL)
    result = sink.send(Message.single(ALERT))
    assert not result.ok and result.error


def test_apprise_url_it_cannot_parse_is_a_start_up_error() -> None:
    with pytest.raises(SinkConfigError, match="does not understand"):
        AppriseSink(SinkConfig("chat", "apprise", ("nosuchservice://x",)))


def test_apprise_to_a_private_address_is_refused_like_a_webhook(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory()
    with pytest.raises(SinkConfigError, match=r"refused 127\.0\.0\.1: loopback"):
        AppriseSink(SinkConfig("chat", "apprise", (f"json://127.0.0.1:{receiver.port}/in",)))
    # A host name is checked when sending: localhost resolves to loopback, so nothing leaves.
    sink = AppriseSink(SinkConfig("chat", "apprise", (f"json://localhost:{receiver.port}/in",)))
    result = sink.send(Message.single(ALERT))
    assert not result.ok and "loopback" in (result.error or "")
    assert receiver.requests == []


def test_console_prints_one_line_per_alert() -> None:
    out = io.StringIO()
    StdoutSink(SinkConfig("console", "stdout"), out).send(Message.single(ALERT))
    (line,) = out.getvalue().splitlines()
    assert line.startswith("ALERT [nk-troops-kursk] Two soldiers captured in Kursk region | Example Wire |")

"""The webhook sink against a real receiver on 127.0.0.1 that verifies with the `standardwebhooks` library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from newswatch.http import Fetcher
from newswatch.settings import Settings
from worker.sinks.config import SinkConfig
from worker.sinks.message import Message
from worker.sinks.signing import decode_secret, generate_secret
from worker.sinks.webhook import WebhookSink

SECRET = generate_secret()
ALERT = {
    "id": "al_0123456789abcdef01234567",
    "topic": {"id": "nk-troops-kursk", "name": "North Korean troops in Kursk"},
    "article": {
        "id": "a1",
        "url": "https://news.example.org/kursk",
        "title": "Troops pulled back",
        "source": {},
    },
    "score": 2.5,
    "evidence": [],
    "snippet": "North Korean units were withdrawn from the Kursk front.",
    "matched_at": "2025-03-01T10:00:00.000Z",
}


def make_sink(url: str, allowed: tuple[str, ...] = ("127.0.0.1",), timeout: float = 5.0) -> WebhookSink:
    config = SinkConfig("desk", "webhook", (url,), decode_secret(SECRET), timeout=timeout)
    return WebhookSink(config, Fetcher.from_settings(Settings(allowed_hosts=allowed)))


def test_signed_post_with_the_alert_id_and_the_design_body(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory(secret=SECRET)
    result = make_sink(receiver.url).send(Message.single(ALERT))
    assert result.ok and result.status == 200
    (request,) = receiver.accepted
    assert request.webhook_id == ALERT["id"]
    assert request.payload == {"type": "topic.matched", "timestamp": ALERT["matched_at"], "data": ALERT}


def test_every_attempt_has_a_fresh_timestamp_and_signature(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory(secret=SECRET)
    sink = make_sink(receiver.url)
    clock = iter([1_700_000_000.0, 1_700_000_060.0])
    sink.clock = lambda: next(clock)
    sink.send(Message.single(ALERT))
    sink.send(Message.single(ALERT))
    first, second = receiver.requests  # too old for the library's 5-minute window: only headers checked here
    assert first.webhook_id == second.webhook_id == ALERT["id"]
    assert (first.headers["webhook-timestamp"], second.headers["webhook-timestamp"]) == (
        "1700000000",
        "1700000060",
    )
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert first.body == second.body


def test_a_redirect_is_not_followed(receiver_factory: Callable[..., Any]) -> None:
    target = receiver_factory(secret=SECRET)
    redirecting = receiver_factory(secret=SECRET, plan=lambda n, h, b: (307, {"location": target.url}))
    result = make_sink(redirecting.url).send(Message.single(ALERT))
    assert not result.ok and result.status == 307
    assert "not followed" in (result.error or "")
    assert target.requests == []


def test_gone_disables_and_errors_are_failures(receiver_factory: Callable[..., Any]) -> None:
    gone = receiver_factory(secret=SECRET, plan=lambda n, h, b: (410, {}))
    broken = receiver_factory(secret=SECRET, plan=lambda n, h, b: (503, {}))
    assert make_sink(gone.url).send(Message.single(ALERT)).gone
    failed = make_sink(broken.url).send(Message.single(ALERT))
    assert not failed.ok and failed.status == 503 and not failed.gone


def test_refused_connection_and_private_address_are_failures(receiver_factory: Callable[..., Any]) -> None:
    receiver = receiver_factory(secret=SECRET)
    url = receiver.url
    receiver.stop()
    refused = make_sink(url).send(Message.single(ALERT))
    assert not refused.ok and refused.status is None and "connect" in (refused.error or "")
    guarded = make_sink(url, allowed=()).send(Message.single(ALERT))
    assert not guarded.ok and "loopback" in (guarded.error or "")

"""Sink configuration: declared sinks, the default webhook from the environment, start-up errors."""

from __future__ import annotations

import pytest

from newswatch.settings import Settings
from worker.sinks.config import SinkConfigError, load_sinks, parse_duration
from worker.sinks.signing import generate_secret

SECRET = generate_secret()


def test_environment_webhook_is_the_default_sink() -> None:
    sinks = load_sinks(Settings(webhook_url="https://hooks.example.org/nw", webhook_secret=SECRET), {})
    assert sinks.defaults == ("default",)
    assert sinks["default"].url == "https://hooks.example.org/nw"
    assert sinks.route(None) == ("default",)


def test_without_any_webhook_alerts_go_to_the_console() -> None:
    sinks = load_sinks(Settings(), {})
    assert sinks.defaults == ("console",)
    assert sinks["console"].kind == "stdout"


def test_declared_sinks_with_cap_digest_and_routing() -> None:
    settings = Settings(
        extra={
            "sinks": {
                "desk-a": {
                    "url": "https://a.example.org/h",
                    "secret_env": "DESK_A",
                    "max_per_hour": 5,
                    "digest": "15m",
                },
                "chat": {"kind": "apprise", "url": "json://chat.example.org/in", "default": True},
            }
        }
    )
    sinks = load_sinks(settings, {"DESK_A": SECRET})
    assert sinks["desk-a"].max_per_hour == 5 and sinks["desk-a"].digest == 900
    assert sinks.route(["desk-a"]) == ("desk-a",)
    assert sinks.route([]) == ("chat",)
    with pytest.raises(SinkConfigError, match="'desk-b' is not declared"):
        sinks.route(["desk-b"])
    with pytest.raises(SinkConfigError, match="topic 'kursk': sink 'nope'"):
        sinks.check_topics({"kursk": ["nope"]})


@pytest.mark.parametrize(
    ("settings", "environ", "says"),
    [
        (Settings(webhook_url="https://h.example.org"), {}, "NEWSWATCH_WEBHOOK_SECRET"),
        (Settings(webhook_url="https://h.example.org", webhook_secret="whsec_??"), {}, "not valid base64"),
        (Settings(webhook_url="ftp://h.example.org", webhook_secret=SECRET), {}, "http:// or https://"),
        (
            Settings(extra={"sinks": {"a": {"url": "https://x.org", "secret_env": "A_SECRET"}}}),
            {},
            "A_SECRET",
        ),
        (Settings(extra={"sinks": {"a": {"url": "https://x.org"}}}), {}, "needs secret_env"),
        (Settings(extra={"sinks": {"a": {"kind": "pager"}}}), {}, "kind must be one of"),
        (Settings(extra={"sinks": {"a": {"kind": "stdout", "digest": "soon"}}}), {}, "a.*digest"),
        (Settings(extra={"sinks": {"a": {"kind": "stdout", "max_per_hour": 0}}}), {}, "max_per_hour"),
        (Settings(extra={"sinks": {"a": {"url": "https://x.org", "secret": SECRET}}}), {}, "secret_env"),
    ],
)
def test_configuration_mistakes_fail_at_start_up(
    settings: Settings, environ: dict[str, str], says: str
) -> None:
    with pytest.raises(SinkConfigError, match=says):
        load_sinks(settings, environ)


def test_durations() -> None:
    assert parse_duration("15m", "x") == 900
    assert parse_duration("1h", "x") == 3600
    assert parse_duration(30, "x") == 30

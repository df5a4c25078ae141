"""Delivery end to end: real Redis, real RQ workers, a real receiver checking with `standardwebhooks`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from newswatch.settings import Settings
from worker import delivery_state as state
from worker.delivery import enqueue_deliveries, now_iso, use_settings
from worker.delivery_admin import (
    deliveries_settled,
    delivery_counts,
    failed_deliveries,
    flush_open_digests,
    format_failed,
    redeliver,
    suppressed_deliveries,
)
from worker.sinks.config import SinkConfigError
from worker.sinks.signing import generate_secret

SECRET = generate_secret()
TOPICS = {
    "nk-troops-kursk": "North Korean troops in Kursk",
    "zaporizhzhia-npp": "Zaporizhzhia nuclear plant",
}
Run = Callable[..., None]
Factory = Callable[..., Any]


def make_alert(topic: str, n: int) -> dict[str, Any]:
    return {
        "id": f"al_{topic[:6]}_{n:04d}",
        "topic": {"id": topic, "name": TOPICS[topic]},
        "article": {
            "id": f"art{n}",
            "url": f"https://news.example.org/{topic}/{n}",
            "title": f"Report {n} on {TOPICS[topic]}",
            "source": {"title": "Example Wire"},
            "published": None,
            "language": "en",
        },
        "score": 1.5,
        "evidence": [],
        "snippet": f"Sentence {n} of the evidence.",
        "matched_at": now_iso(),
    }


def webhook_settings(url: str, retries: tuple[int, ...] = (0, 1), **extra: Any) -> Settings:
    return Settings(
        webhook_url=url,
        webhook_secret=SECRET,
        allowed_hosts=("127.0.0.1",),
        webhook_retries=retries,
        **extra,
    )


def flaky(
    failures: int, status: int = 503
) -> Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str]]]:
    """Fail the first `failures` requests of each webhook id, then accept."""
    seen: dict[str, int] = {}

    def plan(n: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        ident = headers["webhook-id"]
        seen[ident] = seen.get(ident, 0) + 1
        return (status, {}) if seen[ident] <= failures else (200, {})

    return plan


def test_receiver_that_fails_first_then_accepts_gets_each_alert_once(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    receiver = receiver_factory(secret=SECRET, plan=flaky(2))
    settings = use_settings(webhook_settings(receiver.url, retries=(0, 1, 1))).settings
    alerts = [make_alert("nk-troops-kursk", n) for n in range(3)]
    for alert in alerts:
        enqueue_deliveries(redis_client, alert, settings, None)
    run_deliveries()
    assert all(r.verified for r in receiver.requests)
    assert [r.webhook_id for r in receiver.accepted] == [a["id"] for a in alerts]
    assert [r.payload["data"] for r in receiver.accepted] == alerts
    counts = delivery_counts(redis_client)
    assert counts["delivered"] == 3 and counts["dead_lettered"] == 0 and counts["failed_attempts"] == 6


def test_enqueueing_twice_or_a_rerun_never_sends_twice(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    receiver = receiver_factory(secret=SECRET)
    settings = use_settings(webhook_settings(receiver.url)).settings
    alert = make_alert("nk-troops-kursk", 1)
    assert enqueue_deliveries(redis_client, alert, settings, None).outcome == {"default": "drain"}
    assert enqueue_deliveries(redis_client, alert, settings, None).outcome == {"default": "dup"}
    run_deliveries()
    # A drain job re-run after a crash between the 2xx and its bookkeeping finds the message again:
    redis_client.rpush(state.outbox("default", "nk-troops-kursk"), json.dumps({"alerts": [alert]}))
    redis_client.sadd(state.CHANNELS, state.member("default", "nk-troops-kursk"))
    from worker.delivery import start_drain

    start_drain(redis_client, "default", "nk-troops-kursk", settings)  # lock is free: no claim needed
    run_deliveries()
    assert [r.webhook_id for r in receiver.requests] == [alert["id"]]


@pytest.mark.slow
def test_receiver_down_and_back_gets_everything_once_in_order_per_topic(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    receiver = receiver_factory(secret=SECRET)
    settings = use_settings(webhook_settings(receiver.url, retries=(1, 1, 2, 2, 2, 2))).settings
    receiver.stop()  # the receiver goes down
    alerts = [make_alert(topic, n) for n in range(6) for topic in TOPICS]
    for alert in alerts[:6]:
        enqueue_deliveries(redis_client, alert, settings, None)
    run_deliveries(until=lambda: delivery_counts(redis_client)["failed_attempts"] >= 4)
    for alert in alerts[6:]:  # more alerts arrive during the outage
        enqueue_deliveries(redis_client, alert, settings, None)
    assert delivery_counts(redis_client)["retrying"] == len(alerts)
    receiver.start()  # back, on the same port
    run_deliveries(timeout=30)
    got = [r.webhook_id for r in receiver.accepted]
    assert sorted(got) == sorted(a["id"] for a in alerts)  # every alert exactly once
    for topic in TOPICS:
        expected = [a["id"] for a in alerts if a["topic"]["id"] == topic]
        assert [ident for ident in got if ident in expected] == expected  # in order per topic
    assert delivery_counts(redis_client)["dead_lettered"] == 0


def test_dead_letters_keep_every_attempt_and_redelivery_keeps_the_ids(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    answers = {"status": 500}
    receiver = receiver_factory(secret=SECRET, plan=lambda n, h, b: (answers["status"], {}))
    settings = use_settings(webhook_settings(receiver.url, retries=(0, 1))).settings
    alerts = [make_alert("nk-troops-kursk", n) for n in range(2)]
    for alert in alerts:
        enqueue_deliveries(redis_client, alert, settings, None)
    run_deliveries()
    dead = failed_deliveries(redis_client)
    assert [d["message"]["id"] for d in dead] == [a["id"] for a in alerts]
    head = dead[0]
    assert [a["status"] for a in head["attempts"]] == [500, 500, 500]  # first try + 2 retries
    assert "gave up after 3 attempts" in head["error"]
    assert dead[1]["waited_behind"] == alerts[0]["id"]  # it waited behind the failing head, never sent
    assert "3 attempt(s), last: 500" in format_failed(dead)[0]
    assert delivery_counts(redis_client)["dead_lettered"] == 2
    assert deliveries_settled(redis_client)

    answers["status"] = 200
    report = redeliver(redis_client, failed=True, settings=settings)
    assert len(report.requeued) == 2
    run_deliveries()
    assert [r.webhook_id for r in receiver.accepted] == [a["id"] for a in alerts]
    assert failed_deliveries(redis_client) == []
    # An explicit redelivery of a delivered alert sends it again, with the same webhook-id:
    redeliver(redis_client, [alerts[1]["id"]], settings=settings)
    run_deliveries()
    assert [r.webhook_id for r in receiver.accepted][-1] == alerts[1]["id"]


def test_redirect_is_a_failure_not_followed(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    target = receiver_factory(secret=SECRET)
    moved = receiver_factory(secret=SECRET, plan=lambda n, h, b: (301, {"location": target.url}))
    settings = use_settings(webhook_settings(moved.url, retries=(0,))).settings
    enqueue_deliveries(redis_client, make_alert("nk-troops-kursk", 1), settings, None)
    run_deliveries()
    (dead,) = failed_deliveries(redis_client)
    assert [a["status"] for a in dead["attempts"]] == [301, 301]
    assert target.requests == []


def test_gone_disables_the_sink_until_redelivery(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    answers = {"status": 410}
    receiver = receiver_factory(secret=SECRET, plan=lambda n, h, b: (answers["status"], {}))
    settings = use_settings(webhook_settings(receiver.url, retries=(0, 1))).settings
    enqueue_deliveries(redis_client, make_alert("nk-troops-kursk", 1), settings, None)
    run_deliveries()
    enqueue_deliveries(redis_client, make_alert("zaporizhzhia-npp", 2), settings, None)
    run_deliveries()
    assert len(receiver.requests) == 1  # the second alert was not even tried
    assert "default" in delivery_counts(redis_client)["disabled_sinks"]
    assert "disabled" in failed_deliveries(redis_client)[1]["error"]
    answers["status"] = 204
    report = redeliver(redis_client, failed=True, settings=settings)
    assert report.enabled_sinks == ["default"]
    run_deliveries()
    assert len(receiver.accepted) == 2


def test_digest_sends_one_message_per_window(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    receiver = receiver_factory(secret=SECRET)
    desk = {"url": receiver.url, "secret_env": "DESK_SECRET", "digest": 1}
    settings = use_settings(
        webhook_settings(receiver.url, extra={"sinks": {"desk": desk}}), {"DESK_SECRET": SECRET}
    ).settings
    first = [make_alert("nk-troops-kursk", n) for n in range(3)]
    outcomes = [enqueue_deliveries(redis_client, a, settings, ["desk"]).outcome["desk"] for a in first]
    assert outcomes == ["window", "digest", "digest"]
    assert delivery_counts(redis_client)["waiting_in_digest"] == 3
    run_deliveries(timeout=10)
    (digest,) = receiver.accepted
    event = digest.payload
    assert event["type"] == "topic.digest" and digest.webhook_id.startswith("dg_")
    assert [a["id"] for a in event["data"]["alerts"]] == [a["id"] for a in first]
    assert event["data"]["topic"]["id"] == "nk-troops-kursk" and event["data"]["count"] == 3
    # The next alert opens a new window; `run --once` can close it at once.
    later = make_alert("nk-troops-kursk", 9)
    assert enqueue_deliveries(redis_client, later, settings, ["desk"]).outcome["desk"] == "window"
    assert not deliveries_settled(redis_client)
    assert flush_open_digests(redis_client, settings) == 1
    run_deliveries(timeout=10)
    assert [a["id"] for a in receiver.accepted[-1].payload["data"]["alerts"]] == [later["id"]]
    assert delivery_counts(redis_client)["digested"] == 4


def test_cap_suppresses_counts_and_keeps_the_rest(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    receiver = receiver_factory(secret=SECRET)
    desk = {"url": receiver.url, "secret_env": "DESK_SECRET", "max_per_hour": 2}
    settings = use_settings(
        webhook_settings(receiver.url, extra={"sinks": {"desk": desk}}), {"DESK_SECRET": SECRET}
    ).settings
    alerts = [make_alert("nk-troops-kursk", n) for n in range(4)]
    other = make_alert("zaporizhzhia-npp", 7)  # the cap is per topic
    outcomes = [
        enqueue_deliveries(redis_client, a, settings, ["desk"]).outcome["desk"] for a in [*alerts, other]
    ]
    assert outcomes == ["drain", "queued", "capped", "capped", "drain"]
    run_deliveries()
    assert [r.webhook_id for r in receiver.accepted] == [alerts[0]["id"], alerts[1]["id"], other["id"]]
    counts = delivery_counts(redis_client)
    assert counts["suppressed_cap"] == 2 and counts["suppressed_held"] == 2
    held = suppressed_deliveries(redis_client)
    assert [h["message"]["alerts"][0]["id"] for h in held] == [alerts[2]["id"], alerts[3]["id"]]
    redeliver(redis_client, [alerts[2]["id"]], settings=settings)  # the operator wants this one after all
    run_deliveries()
    assert receiver.accepted[-1].webhook_id == alerts[2]["id"]
    assert delivery_counts(redis_client)["suppressed_held"] == 1


def test_routing_sends_to_the_topic_sinks(
    redis_client: redis.Redis, receiver_factory: Factory, run_deliveries: Run
) -> None:
    default = receiver_factory(secret=SECRET)
    desk = receiver_factory(secret=SECRET)
    sinks = {"desk-a": {"url": desk.url, "secret_env": "DESK_SECRET"}}
    settings = use_settings(
        webhook_settings(default.url, extra={"sinks": sinks}), {"DESK_SECRET": SECRET}
    ).settings
    enqueue_deliveries(redis_client, make_alert("nk-troops-kursk", 1), settings, ["desk-a"])
    enqueue_deliveries(redis_client, make_alert("zaporizhzhia-npp", 2), settings, None)
    run_deliveries()
    assert [r.payload["data"]["topic"]["id"] for r in desk.accepted] == ["nk-troops-kursk"]
    assert [r.payload["data"]["topic"]["id"] for r in default.accepted] == ["zaporizhzhia-npp"]


def test_malformed_secret_is_a_start_up_error() -> None:
    with pytest.raises(SinkConfigError, match="NEWSWATCH_WEBHOOK_SECRET"):
        use_settings(Settings(webhook_url="https://hooks.example.org/x", webhook_secret="whsec_short"))


@pytest.mark.slow
def test_stock_rq_worker_cli_delivers(
    redis_url: str, redis_client: redis.Redis, receiver_factory: Factory, tmp_path: Path
) -> None:
    """`rq worker --with-scheduler` with the documented options runs the jobs by name, JSON payloads."""
    receiver = receiver_factory(secret=SECRET, plan=flaky(1))
    settings = use_settings(webhook_settings(receiver.url, retries=(1,))).settings
    alert = make_alert("nk-troops-kursk", 1)
    enqueue_deliveries(redis_client, alert, settings, None)
    env = {
        **os.environ,
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
        "NEWSWATCH_WEBHOOK_URL": receiver.url,
        "NEWSWATCH_WEBHOOK_SECRET": SECRET,
        "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
        "NEWSWATCH_WEBHOOK_RETRIES": "1",
    }
    command = [
        sys.executable, "-m", "rq.cli", "worker", "--burst", "--with-scheduler", "--url", redis_url,
        "--serializer", "rq.serializers.JSONSerializer", "newswatch:deliveries",
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while not receiver.accepted and time.monotonic() < deadline:
        subprocess.run(command, env=env, cwd=Path(__file__).parents[2], check=True, capture_output=True)
        time.sleep(0.3)
    assert [r.webhook_id for r in receiver.accepted] == [alert["id"]]
    assert len(receiver.requests) == 2


def start_delivery_worker(redis_url: str, webhook_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """One stock `rq worker` process on the deliveries queue, sending to `webhook_url`."""
    env = {
        **os.environ,
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
        "NEWSWATCH_WEBHOOK_URL": webhook_url,
        "NEWSWATCH_WEBHOOK_SECRET": SECRET,
        "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [
        sys.executable, "-m", "rq.cli", "worker", "--url", redis_url,
        "--worker-class", "rq.worker.SimpleWorker", "--serializer", "rq.serializers.JSONSerializer",
        "newswatch:deliveries",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=Path(__file__).parents[2], stderr=subprocess.DEVNULL)


def test_alerts_in_quick_succession_go_out_through_the_running_drain_job(
    redis_url: str, redis_client: redis.Redis, receiver_factory: Factory, tmp_path: Path
) -> None:
    """A drain job lingers after its last send: the next alerts of a stream need no new job each."""
    from worker.delivery import LINGER

    receiver = receiver_factory(secret=SECRET)
    settings = use_settings(webhook_settings(receiver.url)).settings
    worker = start_delivery_worker(redis_url, receiver.url, tmp_path)
    try:
        alerts = [make_alert("nk-troops-kursk", n) for n in range(4)]
        assert enqueue_deliveries(redis_client, alerts[0], settings, None).outcome == {"default": "drain"}
        deadline = time.monotonic() + 20
        while not receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        outcomes = []
        for alert in alerts[1:3]:
            time.sleep(LINGER / 4)
            outcomes.append(enqueue_deliveries(redis_client, alert, settings, None).outcome)
            sent_at = time.monotonic()
            while len(receiver.accepted) < len(outcomes) + 1 and time.monotonic() - sent_at < 5:
                time.sleep(0.005)
            assert time.monotonic() - sent_at < 1, "an alert joining a lingering job goes out at once"
        assert outcomes == [{"default": "queued"}] * 2, "no new drain job while one lingers"

        time.sleep(LINGER * 3)  # idle: the job gives the channel up
        assert enqueue_deliveries(redis_client, alerts[3], settings, None).outcome == {"default": "drain"}
        while len(receiver.accepted) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.webhook_id for r in receiver.accepted] == [a["id"] for a in alerts]
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def test_a_lingering_drain_job_does_not_hold_up_another_topics_alert(
    redis_url: str, redis_client: redis.Redis, receiver_factory: Factory, tmp_path: Path
) -> None:
    """One delivery worker: while the job of one topic lingers for more of its alerts, an alert of another
    topic (a job waiting behind it) goes out at once, not after the linger."""
    from worker.delivery import LINGER

    receiver = receiver_factory(secret=SECRET)
    settings = use_settings(webhook_settings(receiver.url)).settings
    worker = start_delivery_worker(redis_url, receiver.url, tmp_path)
    try:
        first, other = make_alert("nk-troops-kursk", 1), make_alert("zaporizhzhia-npp", 2)
        assert enqueue_deliveries(redis_client, first, settings, None).outcome == {"default": "drain"}
        deadline = time.monotonic() + 20
        while not receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.005)
        assert receiver.accepted, "the first alert never arrived"
        # The first topic's job now lingers for LINGER seconds: the other topic's job waits behind it.
        sent_at = time.monotonic()
        assert enqueue_deliveries(redis_client, other, settings, None).outcome == {"default": "drain"}
        while len(receiver.accepted) < 2 and time.monotonic() - sent_at < 5:
            time.sleep(0.005)
        waited = time.monotonic() - sent_at
        assert [r.webhook_id for r in receiver.accepted] == [first["id"], other["id"]]
        assert waited < LINGER * 0.8, f"the other topic's alert waited {waited:.2f} s behind a linger"
    finally:
        worker.terminate()
        worker.wait(timeout=10)

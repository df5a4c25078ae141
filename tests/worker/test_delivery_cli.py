"""`alerts --failed` and `alerts redeliver` as the CLI runs them (parser pieces from worker.delivery_cli)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from newswatch.settings import Settings
from worker.delivery import enqueue_deliveries, now_iso, use_settings
from worker.delivery_admin import delivery_counts
from worker.delivery_cli import add_delivery_arguments, show_failed, status_lines
from worker.sinks.signing import generate_secret

SECRET = generate_secret()


def parser() -> argparse.ArgumentParser:
    alerts = argparse.ArgumentParser(prog="newswatch alerts")
    alerts.add_argument("--json", action="store_true")
    add_delivery_arguments(alerts)
    return alerts


def test_failed_then_redeliver_from_the_command_line(
    redis_url: str,
    redis_client: redis.Redis,
    receiver_factory: Callable[..., Any],
    run_deliveries: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    answers = {"status": 502}
    receiver = receiver_factory(secret=SECRET, plan=lambda n, h, b: (answers["status"], {}))
    for name, value in {
        "REDIS_URL": redis_url,
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
        "NEWSWATCH_WEBHOOK_URL": receiver.url,
        "NEWSWATCH_WEBHOOK_SECRET": SECRET,
        "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1",
        "NEWSWATCH_WEBHOOK_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = use_settings(
        Settings(
            webhook_url=receiver.url,
            webhook_secret=SECRET,
            allowed_hosts=("127.0.0.1",),
            webhook_retries=(0,),
        )
    ).settings
    alert = {
        "id": "al_cli000000000000000000001",
        "topic": {"id": "nk-troops-kursk", "name": "North Korean troops in Kursk"},
        "article": {"id": "a1", "url": "file:///seeds/01.txt", "title": "Units withdrawn", "source": {}},
        "score": 1.0,
        "evidence": [],
        "snippet": "",
        "matched_at": now_iso(),
    }
    enqueue_deliveries(redis_client, alert, settings, None)
    run_deliveries()

    args = parser().parse_args(["--failed", "--json"])
    assert show_failed(args) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["message"]["id"] == alert["id"] and [a["status"] for a in record["attempts"]] == [502, 502]
    assert any("1 dead-lettered" in line for line in status_lines(delivery_counts(redis_client)))

    answers["status"] = 200
    args = parser().parse_args(["redeliver", "--failed"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == f"queued {alert['id']} -> default"
    run_deliveries()
    assert [r.webhook_id for r in receiver.accepted] == [alert["id"]]
    assert show_failed(parser().parse_args(["--failed"])) == 1

    args = parser().parse_args(["redeliver", "al_nosuchalert"])
    assert args.handler(args) == 2
    assert "al_nosuchalert: no such alert" in capsys.readouterr().err
    args = parser().parse_args(["redeliver", "--since", "yesterday-ish"])
    assert args.handler(args) == 2

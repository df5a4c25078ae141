"""`newswatch run --once` as a real process: embedded Redis, producer, worker subprocesses, alerts, twice."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from newswatch.redis_server import EmbeddedServer

ROOT = Path(__file__).resolve().parents[3]

WATCHLIST = """
[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '("North Korean" OR Pyongyang) NEAR/12 Kursk'

[[topic]]
id = "grain-corridor"
name = "Black Sea grain corridor"
query = 'grain NEAR/8 (Odesa OR corridor)'
"""
ARTICLES = {
    "kursk.txt": "Kyiv says North Korean troops were withdrawn from the Kursk region after heavy losses.\n",
    "grain.md": "# Ships leave Odesa\n\nThe first grain convoy in weeks sailed from Odesa on Monday.\n",
    "weather.txt": "Forecasters expect a mild and dry week across most of central Europe.\n",
}


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in ARTICLES.items():
        (seeds / name).write_text(text, encoding="utf-8")
    (tmp_path / "watchlist.toml").write_text(WATCHLIST, encoding="utf-8")
    data_dir = tmp_path / "data"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key != "REDIS_URL" and not key.startswith("NEWSWATCH_")
    }
    environment.update(
        {
            "NEWSWATCH_DATA_DIR": str(data_dir),
            "NEWSWATCH_SEEDS_DIR": str(seeds),
            "NEWSWATCH_WATCHLIST": str(tmp_path / "watchlist.toml"),
            "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
            "PYTHONPATH": str(ROOT),
        }
    )
    yield environment
    EmbeddedServer(data_dir).stop()  # in case a failed run left it behind


def run_once(environment: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newswatch", "run", "--once", "--json", *extra],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_run_once_twice_alerts_once(environment: dict[str, str]) -> None:
    first = run_once(environment, "--workers", "2")

    assert first.returncode == 0, first.stderr
    alerts = [json.loads(line) for line in first.stdout.splitlines()]
    assert sorted(alert["topic"]["id"] for alert in alerts) == ["grain-corridor", "nk-troops-kursk"]
    assert {Path(alert["article"]["url"]).name for alert in alerts} == {"kursk.txt", "grain.md"}
    summary = first.stderr.strip().splitlines()
    assert any("3 articles, 0 duplicates, 2 alerts, 0 failures" in line for line in summary), first.stderr

    second = run_once(environment)

    assert second.returncode == 0, second.stderr
    assert second.stdout == "", "a second run over the same folder adds no alert"
    assert "0 articles, 0 duplicates, 0 alerts, 0 failures" in second.stderr


@pytest.mark.slow
def test_new_file_between_runs_gives_only_its_alert(environment: dict[str, str]) -> None:
    assert run_once(environment).returncode == 0
    seeds = Path(environment["NEWSWATCH_SEEDS_DIR"])
    (seeds / "pows.txt").write_text(
        "Two North Korean soldiers captured in the Kursk region were questioned by Ukrainian officers.\n",
        encoding="utf-8",
    )
    (seeds / "copy-of-kursk.txt").write_text(ARTICLES["kursk.txt"], encoding="utf-8")

    again = run_once(environment)

    assert again.returncode == 0, again.stderr
    [alert] = [json.loads(line) for line in again.stdout.splitlines()]
    assert Path(alert["article"]["url"]).name == "pows.txt"
    assert "1 articles, 1 duplicates, 1 alerts" in again.stderr


@pytest.mark.slow
def test_sigterm_stops_everything_without_orphans(environment: dict[str, str]) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "newswatch", "run", "--workers", "2"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert run.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(run.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while len(lines) < 2 and time.monotonic() < deadline:  # the console prints the two alerts
        time.sleep(0.2)
    descendants = psutil.Process(run.pid).children(recursive=True)  # workers and rq's scheduler process
    assert len(psutil.Process(run.pid).children()) == 3  # two article workers, one delivery worker

    run.send_signal(signal.SIGTERM)
    run.wait(timeout=120)
    reader.join(timeout=10)

    assert run.returncode == 0
    _gone, alive = psutil.wait_procs(descendants, timeout=10)
    assert not alive, "workers outlived `newswatch run`"
    assert any("[nk-troops-kursk]" in line and "kursk.txt" in line for line in lines), lines
    assert not EmbeddedServer(Path(environment["NEWSWATCH_DATA_DIR"])).ping(), "the embedded server stopped"


@pytest.mark.slow
def test_run_once_waits_until_every_alert_is_delivered(environment: dict[str, str], httpserver: Any) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    environment.update(
        {
            "NEWSWATCH_WEBHOOK_URL": httpserver.url_for("/hook"),
            "NEWSWATCH_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"k" * 24).decode(),
            "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
    )

    result = run_once(environment)

    assert result.returncode == 0, result.stderr
    delivered = [json.loads(request.get_data()) for request, _response in httpserver.log]
    assert sorted(body["data"]["topic"]["id"] for body in delivered) == ["grain-corridor", "nk-troops-kursk"]

"""`newswatch run --once` as a real process: embedded Redis, producer, worker subprocesses, alerts, twice."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from newswatch.redis_server import EmbeddedServer

Newswatch = Any  # the `embedded_newswatch` fixture of tests/conftest.py: the command, own embedded Redis

ARTICLES = {
    "kursk.txt": "Kyiv says North Korean troops were withdrawn from the Kursk region after heavy losses.\n",
    "grain.md": "# Ships leave Odesa\n\nThe first grain convoy in weeks sailed from Odesa on Monday.\n",
    "weather.txt": "Forecasters expect a mild and dry week across most of central Europe.\n",
}


@pytest.fixture
def newswatch(embedded_newswatch: Newswatch) -> Newswatch:
    """The command with the three articles in its seeds folder (CLI_WATCHLIST: Kursk and grain topics)."""
    seeds = Path(embedded_newswatch.env["NEWSWATCH_SEEDS_DIR"])
    for name, text in ARTICLES.items():
        (seeds / name).write_text(text, encoding="utf-8")
    return embedded_newswatch


def run_once(newswatch: Newswatch, *extra: str) -> subprocess.CompletedProcess[str]:
    return newswatch("run", "--once", "--json", *extra, timeout=240)


@pytest.mark.slow
def test_run_once_twice_alerts_once(newswatch: Newswatch) -> None:
    first = run_once(newswatch, "--workers", "2")

    assert first.returncode == 0, first.stderr
    alerts = [json.loads(line) for line in first.stdout.splitlines()]
    assert sorted(alert["topic"]["id"] for alert in alerts) == ["grain-corridor", "nk-troops-kursk"]
    assert {Path(alert["article"]["url"]).name for alert in alerts} == {"kursk.txt", "grain.md"}
    summary = first.stderr.strip().splitlines()
    assert any("3 articles, 0 duplicates, 2 alerts, 0 failures" in line for line in summary), first.stderr
    # Each alert is reported once: no worker log line repeats it beside the console's.
    assert '"event": "alert"' not in first.stderr and "worker starting" not in first.stderr

    second = run_once(newswatch)

    assert second.returncode == 0, second.stderr
    assert second.stdout == "", "a second run over the same folder adds no alert"
    assert "0 articles, 0 duplicates, 0 alerts, 0 failures" in second.stderr


@pytest.mark.slow
def test_new_file_between_runs_gives_only_its_alert(newswatch: Newswatch) -> None:
    assert run_once(newswatch).returncode == 0
    seeds = Path(newswatch.env["NEWSWATCH_SEEDS_DIR"])
    (seeds / "pows.txt").write_text(
        "Two North Korean soldiers captured in the Kursk region were questioned by Ukrainian officers.\n",
        encoding="utf-8",
    )
    (seeds / "copy-of-kursk.txt").write_text(ARTICLES["kursk.txt"], encoding="utf-8")

    again = run_once(newswatch)

    assert again.returncode == 0, again.stderr
    [alert] = [json.loads(line) for line in again.stdout.splitlines()]
    assert Path(alert["article"]["url"]).name == "pows.txt"
    assert "1 articles, 1 duplicates, 1 alerts" in again.stderr


@pytest.mark.slow
def test_sigterm_stops_everything_without_orphans(newswatch: Newswatch) -> None:
    run = newswatch.start("run", "--workers", "2", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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
    assert not EmbeddedServer(Path(newswatch.env["NEWSWATCH_DATA_DIR"])).ping(), "the embedded server stopped"


@pytest.mark.slow
def test_run_once_waits_until_every_alert_is_delivered(newswatch: Newswatch, httpserver: Any) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    newswatch.env.update(
        {
            "NEWSWATCH_WEBHOOK_URL": httpserver.url_for("/hook"),
            "NEWSWATCH_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"k" * 24).decode(),
            "NEWSWATCH_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
    )

    result = run_once(newswatch)

    assert result.returncode == 0, result.stderr
    delivered = [json.loads(request.get_data()) for request, _response in httpserver.log]
    assert sorted(body["data"]["topic"]["id"] for body in delivered) == ["grain-corridor", "nk-troops-kursk"]

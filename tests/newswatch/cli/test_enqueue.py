"""`newswatch enqueue` on a real Redis: files, folders, URLs, stdin, duplicates, bad input, --wait."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from newswatch import keys
from newswatch.cli import main
from newswatch.messages import Document

ROOT = Path(__file__).resolve().parents[3]

WATCHLIST = """
[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '("North Korean" OR Pyongyang) NEAR/12 Kursk'
"""
KURSK = "Officials in Kyiv said North Korean soldiers had left the Kursk region by the end of the month.\n"
GRAIN = "Grain ships left Odesa on Tuesday under a new insurance scheme backed by several governments.\n"


@pytest.fixture
def environment(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(WATCHLIST, encoding="utf-8")
    values = {
        "REDIS_URL": redis_url,
        "NEWSWATCH_WATCHLIST": str(watchlist),
        "NEWSWATCH_CONFIG": str(tmp_path / "none.toml"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    (folder / "kursk.txt").write_text(KURSK, encoding="utf-8")
    (folder / "more" / "grain.md").write_text(GRAIN, encoding="utf-8")
    return folder


def queued_documents(client: redis.Redis) -> list[Document]:
    return [Document.from_json(json.loads(raw)) for raw in client.hvals(keys.PENDING)]


def test_files_and_folders_are_enqueued_and_listed(
    environment: dict[str, str], articles: Path, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", str(articles)]) == 0

    out = capsys.readouterr().out
    assert "kursk.txt" in out and "grain.md" in out
    assert "2 enqueued in 1 jobs, 0 duplicates skipped" in out
    assert sorted(d.url.rsplit("/", 1)[1] for d in queued_documents(redis_client)) == [
        "grain.md",
        "kursk.txt",
    ]


def test_the_same_articles_again_are_duplicates(
    environment: dict[str, str], articles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["enqueue", str(articles)])
    capsys.readouterr()

    assert main(["enqueue", str(articles / "kursk.txt"), str(articles)]) == 0

    out = capsys.readouterr().out
    assert "0 enqueued in 0 jobs, 3 duplicates skipped" in out  # kursk.txt is named twice
    assert out.count("duplicate ") == 3


def test_a_url_is_enqueued_for_the_worker_to_fetch(
    environment: dict[str, str], redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "https://news.example.org/world/kursk?utm_source=feed&id=7"]) == 0

    [document] = queued_documents(redis_client)
    assert document.format == "url" and document.body == ""
    assert document.url == "https://news.example.org/world/kursk?id=7", "tracking parameters are dropped"
    assert "https://news.example.org/world/kursk?id=7" in capsys.readouterr().out


def test_stdin(
    environment: dict[str, str],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(KURSK.encode())))

    assert main(["enqueue", "-"]) == 0

    [document] = queued_documents(redis_client)
    assert document.body == KURSK
    assert "1 enqueued" in capsys.readouterr().out


def test_bad_inputs_are_named_and_the_rest_goes_on(
    environment: dict[str, str], articles: Path, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    (articles / "scan.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)

    code = main(["enqueue", str(articles), str(articles / "missing.txt")])

    captured = capsys.readouterr()
    assert code == 2
    assert "scan.txt" in captured.err and "missing.txt" in captured.err
    assert "Traceback" not in captured.err
    assert "2 enqueued" in captured.out
    assert len(queued_documents(redis_client)) == 2


def test_unreachable_redis_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], articles: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path / 'nothing.sock'}")
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(tmp_path / "none.toml"))
    from newswatch import connection

    original = connection.connect  # the real connect, with a shorter wait than the default 30 s
    monkeypatch.setattr(connection, "connect", lambda settings, **_: original(settings, wait=0.5))

    assert main(["enqueue", str(articles)]) == 2

    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("newswatch enqueue:") and "nothing.sock" in err


@pytest.mark.slow
def test_wait_prints_the_matches_once_a_worker_processed_them(
    environment: dict[str, str], articles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "newswatch", "worker"],
        cwd=ROOT,
        env={**os.environ, **environment, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        code = main(["enqueue", "--wait", "--json", "--timeout", "120", str(articles)])
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    captured = capsys.readouterr()
    assert code == 0, captured.err
    [alert] = [json.loads(line) for line in captured.out.splitlines()]
    assert alert["topic"]["id"] == "nk-troops-kursk"
    assert alert["article"]["url"].endswith("/kursk.txt")
    assert "2 enqueued" in captured.err

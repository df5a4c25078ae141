"""`newswatch producer --once` on a real Redis: one pass over the seeds folder, remembered across runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from newswatch import keys
from newswatch.cli import main


@pytest.fixture
def seeds(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "kursk.txt").write_text("North Korean units were seen near Sudzha in the Kursk region.\n")
    (folder / "blank.txt").write_text("")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("NEWSWATCH_SEEDS_DIR", str(folder))
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(tmp_path / "none.toml"))
    return folder


def test_once_enqueues_new_files_then_nothing(
    seeds: Path, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["producer", "--once"]) == 0
    first = capsys.readouterr()
    assert "enqueued 1 articles in 1 jobs; 0 duplicates skipped; 1 files refused" in first.out
    assert "blank.txt" in first.err

    assert main(["producer", "--once"]) == 0
    assert "enqueued 0 articles in 0 jobs; 0 duplicates skipped; 0 files refused" in capsys.readouterr().out
    assert redis_client.hlen(keys.PENDING) == 1


def test_bad_configuration_is_one_line(
    seeds: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSWATCH_BATCH_SIZE", "many")

    assert main(["producer", "--once"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("newswatch producer: configuration:") and "NEWSWATCH_BATCH_SIZE" in err

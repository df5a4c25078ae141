"""The seeds scanner on a real Redis: new, changed and unchanged files, restarts, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from newswatch import keys
from newswatch.settings import Settings
from producer.seeds import ScanResult, SeedsScanner

REPORT = "Kyiv says North Korean soldiers were moved to the Kursk region in late autumn.\n"
OTHER = "A ministry statement on grain exports through the Black Sea corridor.\n"


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "kursk.txt").write_text(REPORT, encoding="utf-8")
    (folder / "grain.md").write_text(OTHER, encoding="utf-8")
    return folder


def scanner(client: redis.Redis, folder: Path, **settings: object) -> SeedsScanner:
    return SeedsScanner(client, Settings(seeds_dir=folder, batch_size=10, **settings))  # type: ignore[arg-type]


def urls(result: ScanResult) -> list[str]:
    return sorted(Path(d.url.removeprefix("file://")).name for d in result.enqueued.accepted)


def test_new_files_are_enqueued_in_one_batch(redis_client: redis.Redis, seeds: Path) -> None:
    result = scanner(redis_client, seeds).scan()

    assert urls(result) == ["grain.md", "kursk.txt"]
    assert len(result.enqueued.job_ids) == 1
    assert redis_client.hlen(keys.PENDING) == 2


def test_unchanged_files_are_not_taken_again(redis_client: redis.Redis, seeds: Path) -> None:
    scanner(redis_client, seeds).scan()
    again = scanner(redis_client, seeds).scan()

    assert again.enqueued.accepted == [] and again.enqueued.duplicates == []
    assert again.unchanged == 2


def test_restart_does_not_reenqueue(redis_client: redis.Redis, seeds: Path) -> None:
    """The memory is in Redis: a new scanner (a restarted producer) after the window is not a re-enqueue."""
    scanner(redis_client, seeds).scan()
    for key in redis_client.scan_iter("newswatch:seen:*"):  # even with the dedup window long gone
        redis_client.delete(key)

    result = scanner(redis_client, seeds).scan()

    assert result.enqueued.accepted == [] and result.unchanged == 2
    assert redis_client.llen("rq:queue:newswatch:articles") == 1


def test_changed_file_is_enqueued_again(redis_client: redis.Redis, seeds: Path) -> None:
    scanner(redis_client, seeds).scan()
    (seeds / "kursk.txt").write_text(REPORT + "Update: Ukraine reports first clashes.\n", encoding="utf-8")
    (seeds / "new.txt").write_text("Fresh article about a port strike.\n", encoding="utf-8")

    result = scanner(redis_client, seeds).scan()

    assert urls(result) == ["kursk.txt", "new.txt"]


def test_touched_file_with_same_bytes_is_not_new(redis_client: redis.Redis, seeds: Path) -> None:
    scanner(redis_client, seeds).scan()
    stat = (seeds / "kursk.txt").stat()
    os.utime(seeds / "kursk.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))

    result = scanner(redis_client, seeds).scan()

    assert result.enqueued.accepted == [] and result.enqueued.duplicates == [] and result.unchanged == 2


def test_bad_file_is_named_skipped_and_not_retried(
    redis_client: redis.Redis, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (seeds / "photo.txt").write_bytes(bytes(range(256)) * 40)  # binary under a text name
    (seeds / "huge.txt").write_text("word " * 400, encoding="utf-8")

    result = scanner(redis_client, seeds, max_article_bytes=1000).scan()

    assert urls(result) == ["grain.md", "kursk.txt"], "the good files still go through"
    reasons = {bad.path.name: bad.reason for bad in result.bad}
    assert set(reasons) == {"photo.txt", "huge.txt"}
    assert "1000" in reasons["huge.txt"]
    assert reasons["photo.txt"]
    errors = {
        Path(os.fsdecode(k)).name: os.fsdecode(v) for k, v in redis_client.hgetall(keys.SEEDS_ERRORS).items()
    }
    assert set(errors) == {"photo.txt", "huge.txt"}

    again = scanner(redis_client, seeds, max_article_bytes=1000).scan()
    assert again.bad == [], "a bad file is not read again until it changes"

    (seeds / "photo.txt").write_text("Now a caption: troops crossing a river.\n", encoding="utf-8")
    fixed = scanner(redis_client, seeds, max_article_bytes=1000).scan()
    assert urls(fixed) == ["photo.txt"]
    assert Path(os.fsdecode(next(iter(redis_client.hkeys(keys.SEEDS_ERRORS))))).name == "huge.txt"


def test_hidden_and_partial_files_are_ignored(redis_client: redis.Redis, seeds: Path) -> None:
    (seeds / ".draft.txt").write_text("hidden", encoding="utf-8")
    (seeds / "copying.txt.part").write_text("half a file", encoding="utf-8")
    (seeds / "sub").mkdir()
    (seeds / "sub" / "deep.txt").write_text("An article in a subfolder.\n", encoding="utf-8")

    result = scanner(redis_client, seeds).scan()

    assert urls(result) == ["deep.txt", "grain.md", "kursk.txt"]


def test_removed_files_are_forgotten(redis_client: redis.Redis, seeds: Path) -> None:
    scanner(redis_client, seeds).scan()
    (seeds / "grain.md").unlink()

    scanner(redis_client, seeds).scan()

    assert [Path(os.fsdecode(k)).name for k in redis_client.hkeys(keys.SEEDS_FILES)] == ["kursk.txt"]


def test_progress_reports_every_file(redis_client: redis.Redis, seeds: Path) -> None:
    seen: list[tuple[int, int]] = []
    scanner(redis_client, seeds).scan(progress=lambda done, total: seen.append((done, total)))

    assert seen == [(1, 2), (2, 2)]


def test_symlinked_file_is_read_and_remembered_by_its_target(
    redis_client: redis.Redis, seeds: Path, tmp_path: Path
) -> None:
    target = tmp_path / "archive" / "linked.txt"
    target.parent.mkdir()
    target.write_text("Filed in the archive, linked into the seeds folder.\n", encoding="utf-8")
    (seeds / "linked.txt").symlink_to(target)
    (seeds / "elsewhere").symlink_to(target.parent, target_is_directory=True)  # folders are not followed

    result = scanner(redis_client, seeds).scan()

    assert urls(result) == ["grain.md", "kursk.txt", "linked.txt"]
    assert str(target.resolve()).encode() in redis_client.hkeys(keys.SEEDS_FILES)
    assert scanner(redis_client, seeds).scan().unchanged == 3


def test_take_reads_only_the_given_complete_files(redis_client: redis.Redis, seeds: Path) -> None:
    """What the watcher hands over: taken at once (no settle wait), by the scan's rules and memory."""
    fresh = scanner(redis_client, seeds)
    fresh.min_age = 60.0  # a scan would leave these just-written files alone; `take` does not wait
    result = fresh.take([seeds / "kursk.txt", seeds / ".hidden.txt", seeds / "gone.txt"])

    assert urls(result) == ["kursk.txt"]
    assert fresh.take([seeds / "kursk.txt"]).unchanged == 1, "taken once"
    assert urls(scanner(redis_client, seeds).scan()) == ["grain.md"], "the scan shares the memory"

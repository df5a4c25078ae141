"""The seeds watcher on a real folder (inotify): complete files are reported at once, files open for
writing never, however long their writer pauses."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.seeds_watch import CREATED_GRACE, SeedsWatcher, watching_supported

pytestmark = pytest.mark.skipif(not watching_supported(), reason="inotify is Linux only")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    return seeds


@pytest.fixture
def watcher(folder: Path) -> Iterator[SeedsWatcher]:
    watching = SeedsWatcher(folder)
    watching.start()
    yield watching
    watching.stop()


def ready_within(watcher: SeedsWatcher, seconds: float) -> list[str]:
    """Names of the files handed over within `seconds` (returns as soon as there are some)."""
    deadline = time.monotonic() + seconds
    while True:
        ready = watcher.take_ready()
        if ready or time.monotonic() > deadline:
            return [path.name for path in ready]
        time.sleep(0.01)


def test_file_renamed_into_place_is_ready_at_once(watcher: SeedsWatcher, folder: Path) -> None:
    (folder / ".incoming.tmp").write_text("Troops were seen near Sudzha.\n", encoding="utf-8")
    os.rename(folder / ".incoming.tmp", folder / "sudzha.txt")

    assert ready_within(watcher, 2) == ["sudzha.txt"]
    assert watcher.take_ready() == [], "each file is handed over once"


def test_file_written_in_place_is_ready_when_its_writer_closes_it(
    watcher: SeedsWatcher, folder: Path
) -> None:
    with open(folder / "report.txt", "w", encoding="utf-8") as handle:
        handle.write("First paragraph of a long dispatch.\n")
        handle.flush()
        time.sleep(0.5)  # a writer that pauses mid-file, far longer than the grace for new files
        assert watcher.take_ready() == []
        assert str((folder / "report.txt").resolve()) in watcher.writing(), "a full scan must skip it"
        handle.write("Second paragraph.\n")

    assert ready_within(watcher, 2) == ["report.txt"]
    assert watcher.writing() == set()


def test_file_moved_in_from_elsewhere_is_ready_after_the_grace(
    watcher: SeedsWatcher, folder: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "drafts" / "moved.txt"
    outside.parent.mkdir()
    outside.write_text("A wire story finished in another folder.\n", encoding="utf-8")
    os.rename(outside, folder / "moved.txt")

    assert ready_within(watcher, 2) == ["moved.txt"]


def test_a_reader_does_not_hold_a_file_back(watcher: SeedsWatcher, folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "read.txt"
    outside.write_text("Read by someone as soon as it appeared.\n", encoding="utf-8")
    os.rename(outside, folder / "read.txt")
    (folder / "read.txt").read_text(encoding="utf-8")  # a reader opens and closes it within the grace
    time.sleep(CREATED_GRACE * 2)

    assert ready_within(watcher, 2) == ["read.txt"]


def test_hidden_partial_and_nested_files(watcher: SeedsWatcher, folder: Path) -> None:
    (folder / ".hidden.txt").write_text("not an article\n", encoding="utf-8")
    (folder / "download.part").write_text("half a download\n", encoding="utf-8")
    (folder / "desk").mkdir()
    time.sleep(0.2)  # the new subfolder is watched once its creation is seen
    (folder / "desk" / "nested.txt").write_text("An article in a subfolder.\n", encoding="utf-8")

    assert ready_within(watcher, 2) == ["nested.txt"]
    time.sleep(0.2)
    assert watcher.take_ready() == []


def test_a_removed_folder_ends_the_watch(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    watching = SeedsWatcher(folder)
    watching.start()
    try:
        assert watching.alive
        folder.rmdir()
        deadline = time.monotonic() + 5
        while watching.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not watching.alive, "the producer restarts the watch on its next full pass"
    finally:
        watching.stop()


def test_a_missing_folder_cannot_be_watched(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        SeedsWatcher(tmp_path / "missing").start()

"""Watch the seeds folder with inotify (watchdog): which files are complete, the moment they are.

A file is complete when its writer closes it after writing (inotify's close-write), or when it appears
whole: renamed into place from a temporary name (the atomic way to publish a file), or moved in from
elsewhere on the same filesystem. A file that is still open for writing is never reported, however long
its writer pauses. Linux only (other systems, and network filesystems, which report no remote changes,
rely on the producer's periodic full scan).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from newswatch.logs import get_logger
from producer.seeds import is_article_path

log = get_logger(__name__)

#: Seconds a file that appeared without being opened for writing (moved or linked in) waits before it is
#: taken: an in-place writer's open follows its create at once, in the same system call.
CREATED_GRACE = 0.05
#: Seconds after its last write that a file never closed stops holding back the full scan (a lost event).
WRITING_FORGOTTEN = 600.0


class _State(Enum):
    CREATED = "created"  # appeared; no open for writing seen (yet)
    OPENED = "opened"  # opened right after it appeared, nothing written yet
    WRITING = "writing"  # written to, not closed yet


#: The events the watcher needs; the others (directory, attribute changes) are not even asked of inotify.
_EVENTS = (
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)


def watching_supported() -> bool:
    """True where inotify is there to say when a file is closed after writing."""
    try:
        from watchdog.observers.inotify import InotifyObserver  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class SeedsWatcher:
    """Follows one folder's files (recursively) from a watchdog thread; `take_ready` hands over the complete
    ones. `on_change` is called (from that thread) whenever a file became ready or may soon be."""

    def __init__(self, folder: Path, on_change: Callable[[], None] | None = None) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.on_change = on_change or (lambda: None)
        self._lock = threading.Lock()
        self._ready: dict[str, None] = {}  # insertion-ordered set: files in the order they completed
        self._state: dict[str, tuple[_State, float]] = {}  # path -> (state, monotonic time of last event)
        self._observer: BaseObserver | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching; OSError when the folder cannot be watched (missing, inotify limits)."""
        from watchdog.observers.inotify import InotifyObserver

        self.stop()
        observer = InotifyObserver()
        observer.schedule(_Handler(self), str(self.folder), recursive=True, event_filter=list(_EVENTS))
        observer.daemon = True
        observer.start()  # raises OSError here, e.g. ENOSPC when the inotify watch limit is reached
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    @property
    def alive(self) -> bool:
        """False before start, after stop, and when the watch died (the folder was removed or replaced)."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        emitters = observer.emitters
        return bool(emitters) and all(emitter.is_alive() for emitter in emitters)

    # --- what the producer asks -------------------------------------------------------------------------

    def take_ready(self, now: float | None = None) -> list[Path]:
        """The files complete since the last call, oldest first (each handed over once)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for path, (state, since) in list(self._state.items()):
                if state is _State.CREATED and now - since >= CREATED_GRACE:
                    del self._state[path]
                    if _size(path) > 0:  # an empty file that nobody opened is not an article yet
                        self._ready[path] = None
            ready, self._ready = list(self._ready), {}
        return [Path(path) for path in ready]

    def next_check(self) -> float | None:
        """The monotonic time at which `take_ready` may have a file that is not ready yet, or None."""
        with self._lock:
            created = [since for state, since in self._state.values() if state is _State.CREATED]
        return min(created) + CREATED_GRACE if created else None

    def writing(self, now: float | None = None) -> set[str]:
        """Resolved paths of files open for writing: a full scan must not read them half-written."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for path, (state, since) in list(self._state.items()):
                if state is not _State.CREATED and now - since > WRITING_FORGOTTEN:
                    del self._state[path]  # its close was lost (queue overflow): the scan decides again
            held = [path for path, (state, _since) in self._state.items() if state is not _State.CREATED]
        return {str(Path(path).resolve()) for path in held}

    # --- events (watchdog's thread) ---------------------------------------------------------------------

    def _event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = os.fsdecode(event.src_path)
        now = time.monotonic()
        changed = False
        with self._lock:
            if isinstance(event, FileMovedEvent):
                self._forget(path)
                path = os.fsdecode(event.dest_path)
                if self._wanted(path):
                    self._state.pop(path, None)
                    self._ready[path] = None  # renamed into place: complete by the writer's own word
                    changed = True
            elif not self._wanted(path):
                pass
            elif isinstance(event, FileClosedEvent):  # close after writing
                self._state.pop(path, None)
                self._ready[path] = None
                changed = True
            elif isinstance(event, FileCreatedEvent):
                self._ready.pop(path, None)
                self._state[path] = (_State.CREATED, now)
                changed = True  # the producer's next wait must end by the grace
            elif isinstance(event, FileOpenedEvent):
                state = self._state.get(path)
                if state is not None and state[0] is _State.CREATED:
                    self._state[path] = (_State.OPENED, now)  # the creator's open (a reader's is harmless)
            elif isinstance(event, FileModifiedEvent):
                self._ready.pop(path, None)
                self._state[path] = (_State.WRITING, now)
            elif isinstance(event, FileClosedNoWriteEvent):
                state = self._state.get(path)
                if state is not None and state[0] is _State.OPENED:
                    self._state[path] = (_State.CREATED, state[1])  # it was a reader after all
            elif isinstance(event, FileDeletedEvent):
                self._forget(path)
        if changed:
            self.on_change()

    def _wanted(self, path: str) -> bool:
        return is_article_path(self.folder, Path(path))

    def _forget(self, path: str) -> None:
        self._state.pop(path, None)
        self._ready.pop(path, None)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SeedsWatcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self.watcher._event(event)
        except Exception:  # a bad event must not end the watch; the full scan still covers the file
            log.exception("seeds watcher: event not handled", event=repr(event))


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0

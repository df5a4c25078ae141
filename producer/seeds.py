"""The seeds folder as a source: find new and changed files, read and enqueue them, remember them."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any

import redis

from newswatch import keys
from newswatch.documents import InputError, read_path
from newswatch.logs import get_logger
from newswatch.messages import Document
from newswatch.settings import Settings
from producer.enqueue import EnqueueResult, enqueue_documents

log = get_logger(__name__)

#: Files being edited or half-copied by tools that write beside the target, not articles.
_IGNORED_SUFFIXES = (".swp", ".swx", ".tmp", ".part", ".crdownload", "~")
#: Files read and enqueued together; bounds memory on a large folder and lets progress be shown.
READ_CHUNK = 500


@dataclass
class BadFile:
    path: Path
    reason: str


@dataclass
class ScanResult:
    """One pass over the folder: what was enqueued, skipped as duplicate, or refused (with why)."""

    enqueued: EnqueueResult = field(default_factory=EnqueueResult)
    bad: list[BadFile] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return len(self.enqueued.accepted) + len(self.enqueued.duplicates) + len(self.bad)


@dataclass(frozen=True)
class _Candidate:
    path: Path
    key: str
    signature: str  # "mtime_ns:size:sha256", what newswatch:seeds:files remembers
    data: bytes


@dataclass(frozen=True)
class _Listed:
    path: Path
    key: str  # the resolved path: what newswatch:seeds:files remembers it by
    stat: os.stat_result


def _walk(folder: Path) -> Iterator[_Listed]:
    """Regular files under folder (recursively, in name order; symlinked files followed, symlinked folders
    not), skipping hidden and partial files; with each file's key and stat. One stat per file and the
    folder resolved once: a full scan of a large folder every few seconds must stay cheap."""
    root = os.path.realpath(folder)

    def walk(directory: str, real: str) -> Iterator[_Listed]:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        folders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry)
                    continue
                if name.endswith(_IGNORED_SUFFIXES):
                    continue
                stat = entry.stat()  # follows a symlink, as Path.is_file() does
            except OSError:
                continue
            if not S_ISREG(stat.st_mode):
                continue
            key = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, name)
            yield _Listed(Path(entry.path), key, stat)
        for entry in folders:
            yield from walk(entry.path, os.path.join(real, entry.name))

    return walk(str(folder), root)


def is_article_path(folder: Path, path: Path) -> bool:
    """True for a path under folder that `_walk` would list by name: not hidden (nor under a hidden
    folder), not a partial or editor file. Whether it is a regular file is checked when it is read."""
    try:
        parts = Path(os.path.abspath(path)).relative_to(os.path.abspath(folder)).parts
    except ValueError:
        return False
    return (
        bool(parts)
        and not any(part.startswith(".") for part in parts)
        and not parts[-1].endswith(_IGNORED_SUFFIXES)
    )


def file_signature(stat: os.stat_result, sha256: str) -> str:
    return f"{stat.st_mtime_ns}:{stat.st_size}:{sha256}"


class SeedsScanner:
    """Scans one folder; what it took is remembered in Redis (newswatch:seeds:files) across restarts."""

    def __init__(
        self,
        connection: redis.Redis,
        settings: Settings,
        *,
        folder: Path | None = None,
        min_age: float = 0.0,
    ) -> None:
        self.connection = connection
        self.settings = settings
        self.folder = Path(folder or settings.seeds_dir)
        #: Files modified less than this many seconds ago wait for the next scan (a copy in progress).
        self.min_age = min_age

    def scan(
        self, progress: Callable[[int, int], None] | None = None, *, skip: Collection[str] = ()
    ) -> ScanResult:
        """Enqueue every new or changed file; `progress(done, total)` is called as files are handled.

        `skip`: resolved paths known to be open for writing (the watcher saw them written, not closed).
        """
        result = ScanResult()
        if not self.folder.is_dir():
            log.warning("seeds folder missing", folder=str(self.folder))
            return result
        listed = list(_walk(self.folder))
        remembered = {
            _text(path): _text(signature)
            for path, signature in self.connection.hgetall(keys.SEEDS_FILES).items()
        }
        self._forget_removed(remembered, {file.key for file in listed})
        now_ns = time.time_ns()
        candidates: list[_Candidate] = []
        for done, file in enumerate(listed, 1):
            candidate = None
            if file.key not in skip:
                candidate = self._examine(file, remembered, now_ns, result, self.min_age)
            if candidate is not None:
                candidates.append(candidate)
            if len(candidates) >= READ_CHUNK:
                self._take(candidates, result)
                candidates = []
            if progress is not None:
                progress(done, len(listed))
        self._take(candidates, result)
        return result

    def take(self, paths: Iterable[Path]) -> ScanResult:
        """Enqueue these files (known complete: the watcher saw them closed or moved in) if new or changed.

        The same rules as `scan` (names, size limit, memory of what was taken), for just these paths and
        without waiting for `min_age`: the whole folder is not listed and only their memory is read.
        """
        result = ScanResult()
        wanted = {str(path.resolve()): path for path in paths if is_article_path(self.folder, path)}
        if not wanted:
            return result
        signatures: list[Any] = self.connection.hmget(keys.SEEDS_FILES, list(wanted))
        remembered = {key: _text(value) for key, value in zip(wanted, signatures, strict=True) if value}
        now_ns = time.time_ns()
        candidates: list[_Candidate] = []
        for key, path in wanted.items():
            try:
                stat = path.stat()
            except OSError:
                continue  # gone again
            if not S_ISREG(stat.st_mode):
                continue
            candidate = self._examine(_Listed(path, key, stat), remembered, now_ns, result, min_age=0.0)
            if candidate is not None:
                candidates.append(candidate)
            if len(candidates) >= READ_CHUNK:
                self._take(candidates, result)
                candidates = []
        self._take(candidates, result)
        return result

    def _examine(
        self, file: _Listed, remembered: dict[str, str], now_ns: int, result: ScanResult, min_age: float
    ) -> _Candidate | None:
        """The file's content if it is new or changed since it was taken, else None."""
        path, key, stat = file.path, file.key, file.stat
        if 0 <= now_ns - stat.st_mtime_ns < min_age * 1e9:
            return None  # (a clock-skewed mtime in the future does not hold a file back forever)
        before = remembered.get(key, "")
        if before.rsplit(":", 1)[0] == f"{stat.st_mtime_ns}:{stat.st_size}":
            result.unchanged += 1
            return None
        if stat.st_size > self.settings.max_article_bytes:
            reason = (
                f"{stat.st_size} bytes, over the limit of {self.settings.max_article_bytes} "
                "(NEWSWATCH_MAX_ARTICLE_BYTES)"
            )
            self._refuse(path, key, file_signature(stat, "-"), reason, result)
            return None
        try:
            data = path.read_bytes()
        except OSError as error:
            if error.errno == errno.ENOENT:
                return None  # removed between listing and now
            self._refuse(path, key, file_signature(stat, "-"), error.strerror or str(error), result)
            return None
        signature = file_signature(stat, hashlib.sha256(data).hexdigest())
        if before and before.rsplit(":", 1)[-1] == signature.rsplit(":", 1)[-1]:
            # Touched or copied over with the same bytes: nothing new to read.
            self.connection.hset(keys.SEEDS_FILES, key, signature)
            result.unchanged += 1
            return None
        return _Candidate(path, key, signature, data)

    def _take(self, candidates: list[_Candidate], result: ScanResult) -> None:
        """Read the candidates into documents, enqueue them, then remember them as taken."""
        documents: list[Document] = []
        taken: dict[str, str] = {}
        for candidate in candidates:
            try:
                documents.append(read_path(candidate.path, self.settings.max_article_bytes))
            except InputError as error:
                self._refuse(candidate.path, candidate.key, candidate.signature, error.reason, result)
                continue
            taken[candidate.key] = candidate.signature
        if documents:
            result.enqueued.merge(
                enqueue_documents(self.connection, documents, self.settings, source="seeds")
            )
        if taken:
            # Remembered only once enqueued: a crash in between means a re-scan, and the duplicate check
            # (content hash) turns that re-scan into a no-op.
            with self.connection.pipeline(transaction=True) as pipe:
                for path, signature in taken.items():
                    pipe.hset(keys.SEEDS_FILES, path, signature)
                pipe.hdel(keys.SEEDS_ERRORS, *taken)
                pipe.execute()

    def _refuse(self, path: Path, key: str, signature: str, reason: str, result: ScanResult) -> None:
        """Log a bad file once and remember it, so it is not read again until it changes."""
        log.error("seed file refused", path=str(path), reason=reason)
        result.bad.append(BadFile(path, reason))
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.SEEDS_FILES, key, signature)
            pipe.hset(keys.SEEDS_ERRORS, key, reason)
            pipe.execute()

    def _forget_removed(self, remembered: dict[str, str], present: set[str]) -> None:
        """Drop the memory of files under this folder that are gone, so the hash does not grow forever."""
        root = str(self.folder.resolve()) + os.sep
        gone = [path for path in remembered if path.startswith(root) and path not in present]
        if gone:
            self.connection.hdel(keys.SEEDS_FILES, *gone)
            self.connection.hdel(keys.SEEDS_ERRORS, *gone)
            for path in gone:
                del remembered[path]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value

"""The seeds folder as a source: find new and changed files, read and enqueue them, remember them."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
    signature: str  # "mtime_ns:size:sha256", what newswatch:seeds:files remembers
    data: bytes


def list_files(folder: Path) -> Iterator[Path]:
    """Regular files under folder (recursively, in name order), skipping hidden and partial files."""
    for root, directories, names in os.walk(folder):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                continue
            path = Path(root, name)
            if path.is_file():
                yield path


def is_article_path(folder: Path, path: Path) -> bool:
    """True for a path under folder that `list_files` would list by name: not hidden (nor under a hidden
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
        paths = list(list_files(self.folder))
        remembered = {
            _text(path): _text(signature)
            for path, signature in self.connection.hgetall(keys.SEEDS_FILES).items()
        }
        self._forget_removed(remembered, {str(path.resolve()) for path in paths})
        now_ns = time.time_ns()
        candidates: list[_Candidate] = []
        for done, path in enumerate(paths, 1):
            candidate = None
            if not skip or str(path.resolve()) not in skip:
                candidate = self._examine(path, remembered, now_ns, result, self.min_age)
            if candidate is not None:
                candidates.append(candidate)
            if len(candidates) >= READ_CHUNK:
                self._take(candidates, result)
                candidates = []
            if progress is not None:
                progress(done, len(paths))
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
        for path in wanted.values():
            if not path.is_file():
                continue  # gone again, or a folder
            candidate = self._examine(path, remembered, now_ns, result, min_age=0.0)
            if candidate is not None:
                candidates.append(candidate)
            if len(candidates) >= READ_CHUNK:
                self._take(candidates, result)
                candidates = []
        self._take(candidates, result)
        return result

    def _examine(
        self, path: Path, remembered: dict[str, str], now_ns: int, result: ScanResult, min_age: float
    ) -> _Candidate | None:
        """The file's content if it is new or changed since it was taken, else None."""
        key = str(path.resolve())
        try:
            stat = path.stat()
        except OSError:
            return None  # removed between listing and now
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
            self._refuse(path, file_signature(stat, "-"), reason, result)
            return None
        try:
            data = path.read_bytes()
        except OSError as error:
            self._refuse(path, file_signature(stat, "-"), error.strerror or str(error), result)
            return None
        signature = file_signature(stat, hashlib.sha256(data).hexdigest())
        if before and before.rsplit(":", 1)[-1] == signature.rsplit(":", 1)[-1]:
            # Touched or copied over with the same bytes: nothing new to read.
            self.connection.hset(keys.SEEDS_FILES, key, signature)
            result.unchanged += 1
            return None
        return _Candidate(path, signature, data)

    def _take(self, candidates: list[_Candidate], result: ScanResult) -> None:
        """Read the candidates into documents, enqueue them, then remember them as taken."""
        documents: list[Document] = []
        taken: dict[str, str] = {}
        for candidate in candidates:
            try:
                documents.append(read_path(candidate.path, self.settings.max_article_bytes))
            except InputError as error:
                self._refuse(candidate.path, candidate.signature, error.reason, result)
                continue
            taken[str(candidate.path.resolve())] = candidate.signature
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

    def _refuse(self, path: Path, signature: str, reason: str, result: ScanResult) -> None:
        """Log a bad file once and remember it, so it is not read again until it changes."""
        log.error("seed file refused", path=str(path), reason=reason)
        result.bad.append(BadFile(path, reason))
        key = str(path.resolve())
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

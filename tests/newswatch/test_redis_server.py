"""The embedded valkey-server: started on demand, shared by processes of one data dir, AOF on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from newswatch.connection import connect
from newswatch.redis_server import EmbeddedServer, embedded_server
from newswatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose embedded server (if any test started one) is stopped afterwards: no orphans."""
    directory = tmp_path / "data"
    yield directory
    server = embedded_server(directory)
    server.release()
    server.stop()
    assert server.pid() is None


def other_process(data_dir: Path, code: str, *, wait: bool = True) -> subprocess.Popen[str]:
    """A second Python process using the same data dir through newswatch.connection.connect."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from newswatch.connection import connect
        from newswatch.redis_server import embedded_server
        from newswatch.settings import Settings
        data_dir = Path({str(data_dir)!r})
        client = connect(Settings(data_dir=data_dir))
        server = embedded_server(data_dir)
        """
    ) + textwrap.dedent(code)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if wait:
        process.stdin.close()  # type: ignore[union-attr]
        process.wait(timeout=30)
    return process


def test_connect_starts_the_server_with_aof_and_a_private_unix_socket(data_dir: Path) -> None:
    client = connect(Settings(data_dir=data_dir))
    client.set("greeting", "hello")
    server = embedded_server(data_dir)
    assert server.socket_path.is_socket()
    assert oct(server.socket_path.stat().st_mode & 0o777) == "0o700"
    config = client.config_get("appendonly") | client.config_get("appendfsync") | client.config_get("port")
    assert config == {"appendonly": "yes", "appendfsync": "everysec", "port": "0"}
    aof_files = list((data_dir / "redis" / "appendonlydir").iterdir())
    assert any(path.name.endswith(".incr.aof") for path in aof_files)
    assert server.pid() is not None


def test_data_survives_a_stop_and_a_kill(data_dir: Path) -> None:
    client = connect(Settings(data_dir=data_dir))
    client.set("kept", "1")
    server = embedded_server(data_dir)
    assert server.stop()
    assert connect(Settings(data_dir=data_dir)).get("kept") == b"1"
    client = connect(Settings(data_dir=data_dir))
    client.set("kept-after-kill", "2")
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # The same client reconnects: its connection starts the server again from the AOF (a write reaches
    # the AOF file before the reply, so a killed process loses nothing acknowledged).
    assert client.get("kept-after-kill") == b"2"
    assert server.pid() not in (None, pid)


def test_a_second_process_uses_the_running_server(data_dir: Path) -> None:
    connect(Settings(data_dir=data_dir)).set("from-first", "yes")
    pid = embedded_server(data_dir).pid()
    second = other_process(data_dir, "print(server.pid(), client.get('from-first').decode())")
    assert second.returncode == 0, second.stderr.read()  # type: ignore[union-attr]
    assert second.stdout.read().split() == [str(pid), "yes"]  # type: ignore[union-attr]
    # the second process left, we still use the server: it keeps running
    assert embedded_server(data_dir).pid() == pid


def test_the_last_process_to_leave_stops_the_server(data_dir: Path) -> None:
    other = other_process(
        data_dir, "import sys; print(server.pid(), flush=True); sys.stdin.read()", wait=False
    )
    line = other.stdout.readline()  # type: ignore[union-attr]
    pid = int(line)
    ours = connect(Settings(data_dir=data_dir))
    assert embedded_server(data_dir).pid() == pid
    embedded_server(data_dir).release()  # we leave first: the other process still uses it
    assert psutil.pid_exists(pid) and embedded_server(data_dir).ping()
    other.terminate()  # SIGTERM kills python without atexit: the server must still be reusable
    other.wait(timeout=10)
    assert ours.ping()
    # a process that exits normally while being the only user turns the server off
    last = other_process(data_dir, "print(server.pid())")
    assert last.returncode == 0
    assert int(last.stdout.read()) == pid  # type: ignore[union-attr]
    assert not embedded_server(data_dir).ping()
    assert not embedded_server(data_dir).socket_path.exists()


def test_concurrent_starts_make_one_server(data_dir: Path) -> None:
    # Each process stays a user until every one has reported, so no last user stops the server early.
    code = "import sys\nprint(server.pid(), flush=True)\nsys.stdin.read()"
    processes = [other_process(data_dir, code, wait=False) for _ in range(3)]
    pids = {process.stdout.readline().strip() for process in processes}  # type: ignore[union-attr]
    for process in processes:
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    assert len(pids) == 1 and "" not in pids


def test_stale_pidfile_and_socket_are_cleared(data_dir: Path) -> None:
    server = EmbeddedServer(data_dir)
    server.directory.mkdir(parents=True)
    server.pid_file.write_text(str(os.getpid()))  # a live pid that is not a valkey-server
    server.socket_path.write_text("")  # a leftover file where the socket goes
    client = connect(Settings(data_dir=data_dir))
    assert client.ping()
    assert embedded_server(data_dir).pid() not in (None, os.getpid())


def test_a_deep_data_dir_puts_the_socket_in_the_temp_dir(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["nested-directory-name"] * 6))
    server = embedded_server(deep)
    try:
        assert len(str(server.socket_path)) < 100
        assert connect(Settings(data_dir=deep)).ping()
    finally:
        server.release()
        server.stop()
    started = time.monotonic()
    assert not server.ping() and time.monotonic() - started < 5

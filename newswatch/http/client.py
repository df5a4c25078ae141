"""Bounded, SSRF-guarded HTTP fetch on httpx: pinned addresses, timeouts, deadline, decoded-size cap.

Every request goes through a transport whose network backend connects only to the address the guard
checked for that host (the URL keeps its host name, so the Host header and TLS SNI/verification stay
right), and clamps every socket read and write to the time left before the fetch's overall deadline, so
a server that trickles bytes (headers included) cannot hold a fetch longer than the deadline.
Bodies are read raw and decompressed here with an output limit (httpx decompresses a whole chunk at
once), so a gzip or brotli bomb is cut at the cap. Redirects are followed by hand, each one checked again.
"""

from __future__ import annotations

import ssl
import time
import typing
import zlib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import brotli
import httpcore
import httpx

from newswatch.http.ssrf import AddressGuard, GuardError, IPAddress

USER_AGENT = "newswatch/0.1 (+https://github.com/newswatch/newswatch)"
ACCEPT_ENCODING = "gzip, deflate, br"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class FetchError(Exception):
    """A fetch that gave no usable response; `reason` says why in words, `url` is the URL asked for."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of one fetch. `deadline` covers everything: resolution, redirects, headers and body."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5


@dataclass(frozen=True)
class FetchResult:
    """A response: status, headers, the final URL after redirects, and the decoded body."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    redirects: tuple[str, ...] = ()
    elapsed: float = 0.0

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


# The address checked for each (host, port) of the request running in this thread, and its deadline.
_pins: ContextVar[Mapping[tuple[str, int], IPAddress] | None] = ContextVar(
    "newswatch_http_pins", default=None
)
_deadline: ContextVar[float | None] = ContextVar("newswatch_http_deadline", default=None)


def _time_left(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("deadline exceeded")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(
            ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the address the guard checked for the host, never to a fresh DNS answer."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        address = (_pins.get() or {}).get((host.lower(), port))
        if address is None:
            raise httpcore.ConnectError(f"{host}:{port} was not checked by the address guard")
        timeout = _time_left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable through the guarded client")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool that uses the pinned, deadline-bound backend."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=None,
            max_keepalive_connections=20,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            network_backend=_PinnedBackend(),
        )


class _BodyReader:
    """Decodes a response body incrementally (identity, gzip, deflate, br), never past `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.kind = {"": "identity", "identity": "identity", "gzip": "gzip", "x-gzip": "gzip"}.get(
            encoding, encoding
        )
        if self.kind not in ("identity", "gzip", "deflate", "br"):
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        self._zlib: typing.Any = None
        if self.kind == "gzip":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self.kind == "deflate":
            self._zlib = zlib.decompressobj()
            self._deflate_started = False
        elif self.kind == "br":
            self._brotli = brotli.Decompressor()

    def feed(self, data: bytes) -> None:
        if self.kind == "identity":
            self._add(data)
        elif self.kind == "br":
            self._feed_brotli(data)
        else:
            self._feed_zlib(data)

    def _room(self) -> int:
        return self.limit - self.size + 1  # one byte more than allowed tells "too large"

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise OverflowError(f"body larger than {self.limit} bytes")
        self.parts.append(data)

    def _feed_zlib(self, data: bytes) -> None:
        if self.kind == "deflate" and not self._deflate_started and data:
            self._deflate_started = True
            try:  # "deflate" should be zlib-wrapped, but many servers send a raw stream
                self._add(self._zlib.decompress(data, self._room()))
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            else:
                data = self._zlib.unconsumed_tail
                if not data:
                    return
        while data:
            self._add(self._zlib.decompress(data, self._room()))
            data = self._zlib.unconsumed_tail
            if not data and self._zlib.eof and self._zlib.unused_data and self.kind == "gzip":
                data = self._zlib.unused_data  # another gzip member follows
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def _feed_brotli(self, data: bytes) -> None:
        self._add(self._brotli.process(data, output_buffer_limit=self._room()))
        while not self._brotli.can_accept_more_data():
            more = self._brotli.process(b"", output_buffer_limit=self._room())
            if not more:
                break
            self._add(more)

    def body(self) -> bytes:
        return b"".join(self.parts)


def _default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


@dataclass
class Fetcher:
    """Makes guarded, bounded requests. Thread-safe; share one per process (it pools connections)."""

    guard: AddressGuard = field(default_factory=AddressGuard)
    limits: FetchLimits = field(default_factory=FetchLimits)
    user_agent: str = USER_AGENT
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            transport=_GuardedTransport(self.ssl_context or _default_ssl_context()),
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def from_settings(cls, settings: typing.Any, **limits: typing.Any) -> Fetcher:
        """A fetcher allowing Settings.allowed_hosts; `limits` overrides FetchLimits fields."""
        base = FetchLimits(max_bytes=settings.max_article_bytes)
        return cls(guard=AddressGuard(settings.allowed_hosts), limits=replace(base, **limits))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        follow_redirects: bool = True,
        limits: FetchLimits | None = None,
    ) -> FetchResult:
        """GET `url`; any status is returned (the caller decides), FetchError when there is no response."""
        return self.request("GET", url, headers, follow_redirects=follow_redirects, limits=limits)

    def post(
        self,
        url: str,
        content: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        follow_redirects: bool = False,
        limits: FetchLimits | None = None,
    ) -> FetchResult:
        """POST `content` (webhooks: redirects are not followed unless asked)."""
        return self.request(
            "POST", url, headers, content=content, follow_redirects=follow_redirects, limits=limits
        )

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        content: bytes | None = None,
        follow_redirects: bool = True,
        limits: FetchLimits | None = None,
    ) -> FetchResult:
        limits = limits or self.limits
        started = time.monotonic()
        deadline = started + limits.deadline
        token = _deadline.set(deadline)
        try:
            current = url
            visited: list[str] = []
            while True:
                try:
                    result = self._one_hop(method, current, headers, content, limits, deadline, started)
                except FetchError as error:
                    if not visited:
                        raise
                    raise FetchError(url, f"redirected to {current}: {error.reason}") from None
                location = result.headers.get("location")
                if not (follow_redirects and result.status in REDIRECT_STATUSES and location):
                    return replace(result, redirects=tuple(visited), elapsed=time.monotonic() - started)
                if len(visited) >= limits.max_redirects:
                    raise FetchError(url, f"too many redirects (more than {limits.max_redirects})")
                visited.append(current)
                try:
                    current = str(httpx.URL(current).join(location.strip()))
                except (httpx.InvalidURL, ValueError) as error:
                    raise FetchError(url, f"bad redirect Location {location!r} ({error})") from None
                if result.status == 303 or (result.status in (301, 302) and method == "POST"):
                    method, content = "GET", None
        finally:
            _deadline.reset(token)

    def _one_hop(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        limits: FetchLimits,
        deadline: float,
        started: float,
    ) -> FetchResult:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as error:
            raise FetchError(url, f"invalid URL ({error})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FetchError(url, "only http and https URLs with a host can be fetched")
        host = parsed.raw_host.decode("ascii").lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = self.guard.resolve(
                host, port, timeout=min(limits.connect_timeout, max(0.0, deadline - time.monotonic()))
            )
        except GuardError as error:
            raise FetchError(url, error.reason) from None
        request_headers = {
            "User-Agent": self.user_agent,
            "Accept-Encoding": ACCEPT_ENCODING,
            **(headers or {}),
        }
        last_error: Exception | None = None
        for address in addresses:
            token = _pins.set({(host, port): address})
            try:
                return self._exchange(method, url, request_headers, content, limits, deadline, started)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                last_error = error  # try the host's next checked address
            finally:
                _pins.reset(token)
        if time.monotonic() >= deadline:
            raise FetchError(url, f"deadline of {limits.deadline:g}s exceeded")
        raise FetchError(url, f"cannot connect ({_describe(last_error)})")

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        limits: FetchLimits,
        deadline: float,
        started: float,
    ) -> FetchResult:
        timeout = httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.read_timeout,
            pool=limits.connect_timeout,
        )
        try:
            with self._client.stream(
                method, url, headers=headers, content=content, timeout=timeout
            ) as response:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise FetchError(
                        url, f"body larger than {limits.max_bytes} bytes (Content-Length {declared})"
                    )
                try:
                    reader = _BodyReader(
                        response.headers.get("content-encoding", "").strip().lower(), limits.max_bytes
                    )
                except ValueError as error:
                    raise FetchError(url, str(error)) from None
                if method != "HEAD" and response.status_code not in REDIRECT_STATUSES:
                    for chunk in response.iter_raw(_CHUNK):
                        reader.feed(chunk)
                return FetchResult(
                    url=url,
                    status=response.status_code,
                    headers=response.headers,
                    body=reader.body(),
                    elapsed=time.monotonic() - started,
                )
        except OverflowError as error:
            raise FetchError(url, f"{error} (decoded)") from None
        except (zlib.error, brotli.error) as error:
            raise FetchError(url, f"cannot decode the compressed body ({error})") from None
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if time.monotonic() >= deadline:
                raise FetchError(url, f"deadline of {limits.deadline:g}s exceeded") from None
            raise
        except httpx.TimeoutException as error:
            if time.monotonic() >= deadline - 0.01:
                raise FetchError(url, f"deadline of {limits.deadline:g}s exceeded") from None
            raise FetchError(url, f"timed out ({_describe(error)})") from None
        except httpx.HTTPError as error:
            raise FetchError(url, f"{type(error).__name__}: {_describe(error)}") from None


def _describe(error: Exception | None) -> str:
    if error is None:
        return "no address"
    return str(error) or type(error).__name__

"""A real, threaded HTTP server on 127.0.0.1 serving test feeds, and settings that allow reaching it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from newswatch.settings import Settings


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[dict[str, str]], Reply]


class FeedServer:
    """Serves registered paths; records every request and how many ran at once (overall and per Host)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()
        self.max_active = 0
        self.max_active_by_host: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                host = headers.get("host", "").split(":")[0]
                with server.lock:
                    server.requests.append((self.path, headers))
                    server.active[host] += 1
                    server.max_active = max(server.max_active, sum(server.active.values()))
                    server.max_active_by_host[host] = max(
                        server.max_active_by_host[host], server.active[host]
                    )
                try:
                    route = server.routes.get(self.path)
                    reply = route(headers) if route else Reply(404, b"not found")
                    time.sleep(reply.delay)
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.status not in (204, 304):
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if reply.status not in (204, 304):
                        self.wfile.write(reply.body)
                finally:
                    with server.lock:
                        server.active[host] -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    reply = Reply

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, content_type: str = "application/rss+xml", **reply: Any) -> str:
        headers = {"Content-Type": content_type, **reply.pop("headers", {})}
        fixed = Reply(body=body, headers=headers, **reply)
        self.routes[path] = lambda _headers: fixed
        return self.url(path)

    def route(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for requested, _ in self.requests if requested == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(allowed_hosts=("127.0.0.1",), batch_size=50, dedup_window=3600, job_timeout=60)

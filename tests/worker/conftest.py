"""Fixtures for delivery tests: a real webhook receiver on 127.0.0.1 that checks every request with the
`standardwebhooks` library, and a loop that runs real RQ workers (SimpleWorker, burst, with scheduler)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from newswatch.queues import DELIVERIES_QUEUE

#: Answer for the n-th request (0-based): (status, extra headers).
Plan = Callable[[int, dict[str, str], bytes], tuple[int, dict[str, str]]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    verified: bool
    error: str = ""

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Receiver:
    """An HTTP receiver; `secret` set: verifies Standard Webhooks signatures with the library from PyPI."""

    secret: str | None = None
    plan: Plan = lambda n, headers, body: (200, {})
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Received]:
        """Requests that passed verification and were answered 2xx."""
        return [r for r in self.requests if r.verified and 200 <= r.status < 300]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, error = True, ""
                if receiver.secret is not None:
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                    except WebhookVerificationError as problem:
                        verified, error = False, str(problem)
                with receiver._lock:
                    number = len(receiver.requests)
                    status, extra = receiver.plan(number, headers, body) if verified else (401, {})
                    receiver.requests.append(Received(headers, body, time.time(), status, verified, error))
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**options: Any) -> Receiver:
        receiver = Receiver(**options).start()
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()


def run_delivery_workers(
    client: redis.Redis, timeout: float = 20.0, until: Callable[[], bool] | None = None
) -> None:
    """Run burst SimpleWorkers (with the scheduler) until `until()`, or until nothing is left to do."""
    from worker.delivery_admin import deliveries_settled

    queue = Queue(DELIVERIES_QUEUE, connection=client, serializer=JSONSerializer)
    scheduled = ScheduledJobRegistry(queue=queue)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        SimpleWorker([queue], connection=client, serializer=JSONSerializer).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )
        if until is not None:
            if until():
                return
        elif not len(queue) and not scheduled.count and deliveries_settled(client):
            return
        time.sleep(0.05)
    raise AssertionError("deliveries did not settle in time")


@pytest.fixture
def run_deliveries(redis_client: redis.Redis) -> Callable[..., None]:
    def run(timeout: float = 20.0, until: Callable[[], bool] | None = None) -> None:
        run_delivery_workers(redis_client, timeout, until)

    return run

"""The webhook sink: a Standard Webhooks POST through the SSRF-guarded client, redirects never followed.

Every attempt carries `webhook-id` = the message id (the alert id), a fresh `webhook-timestamp` and the
signature over that timestamp; the body is the same bytes on every attempt. A 2xx is success, 410 Gone
disables the sink, anything else (3xx included: a redirect is not followed) or no answer is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from newswatch.http import Fetcher, FetchError, FetchLimits
from worker.sinks.base import SendResult
from worker.sinks.config import SinkConfig
from worker.sinks.message import Message
from worker.sinks.signing import signature_headers

#: A receiver's answer is not read for anything but its status: keep what we accept small.
MAX_RESPONSE_BYTES = 256 * 1024


def webhook_limits(timeout: float) -> FetchLimits:
    """Bounds of one attempt: `timeout` for connecting and for each read, and for the whole attempt."""
    return FetchLimits(
        connect_timeout=min(timeout, 10.0),
        read_timeout=timeout,
        deadline=timeout,
        max_bytes=MAX_RESPONSE_BYTES,
        max_redirects=0,
    )


class WebhookSink:
    def __init__(self, config: SinkConfig, fetcher: Fetcher, clock: Callable[[], float] = time.time) -> None:
        if config.key is None or config.url is None:
            raise ValueError(f"sink {config.name!r}: a webhook sink needs a url and a secret")
        self.name = config.name
        self.url = config.url
        self.key = config.key
        self.limits = webhook_limits(config.timeout)
        self.fetcher = fetcher
        self.clock = clock

    def send(self, message: Message) -> SendResult:
        body = message.body()
        headers = {
            "content-type": "application/json",
            **signature_headers(self.key, message.id, int(self.clock()), body),
        }
        try:
            response = self.fetcher.post(self.url, body, headers, follow_redirects=False, limits=self.limits)
        except FetchError as error:
            return SendResult(False, error=error.reason)
        status = response.status
        if 200 <= status < 300:
            return SendResult(True, status)
        if status == 410:
            return SendResult(False, status, "410 Gone: the receiver asked to stop sending", gone=True)
        if 300 <= status < 400:
            where = response.headers.get("location", "")
            return SendResult(False, status, f"HTTP {status} redirect to {where!r} not followed")
        return SendResult(False, status, f"HTTP {status}{_excerpt(response.body)}")

    def close(self) -> None:
        pass


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    return f": {' '.join(text.split())}" if text else ""

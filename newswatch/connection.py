"""The Redis client every newswatch process uses: REDIS_URL when set, else the embedded server.

`connect(settings)` waits (with backoff and a log line per failed try) until Redis answers. The client
retries commands on connection errors with exponential backoff, checks idle connections before use
(health_check_interval), and, for the embedded server, starts it again from its AOF when it has died.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.connection import UnixDomainSocketConnection
from redis.retry import Retry

from newswatch.logs import get_logger
from newswatch.redis_server import EmbeddedServer, embedded_server, ensure_embedded
from newswatch.settings import Settings

log = get_logger(__name__)
T = TypeVar("T")

#: Retries of one command on a connection error: 0.1 s doubling to 5 s, about 40 s in all, which covers
#: a Redis restart (AOF load included) without hiding a Redis that is really gone.
COMMAND_RETRIES = 12
HEALTH_CHECK_INTERVAL = 15
CONNECT_TIMEOUT = 5.0


class RedisUnavailable(ConnectionError):
    """Redis did not answer within the wait; the message names the server."""


def describe_url(url: str) -> str:
    """The URL without its password, for log lines and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class LoggingRetry(Retry):
    """redis-py's Retry that writes one log line per failed try, so an outage is visible."""

    def __init__(
        self, target: str, retries: int = COMMAND_RETRIES, on_recover: Callable[[], None] | None = None
    ) -> None:
        super().__init__(ExponentialWithJitterBackoff(base=0.1, cap=5.0), retries)
        self.target = target
        #: Called once Redis answers again after failed tries (connect() records it for `status`).
        self.on_recover = on_recover

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def logged_fail(error: Exception, failures: int) -> None:
            log.warning(
                "redis unreachable, retrying", redis=self.target, error=str(error) or type(error).__name__,
                attempt=failures, of=self._retries,
            )  # fmt: skip
            if with_failure_count:
                fail(error, failures)
            else:
                fail(error)

        failed_at: list[float] = []

        def noted_fail(error: Exception, failures: int) -> None:
            failed_at.append(time.monotonic())
            logged_fail(error, failures)

        result = super().call_with_retry(do, noted_fail, is_retryable, with_failure_count=True)
        if failed_at:
            log.warning(
                "redis reachable again", redis=self.target, attempts=len(failed_at),
                seconds=round(time.monotonic() - failed_at[0], 2),
            )  # fmt: skip
            if self.on_recover is not None:
                try:
                    self.on_recover()
                except Exception as error:  # a statistic must never fail the command that succeeded
                    log.debug("reconnect not recorded", error=str(error))
        return result


class EmbeddedConnection(UnixDomainSocketConnection):
    """A connection to the embedded server that starts it again (from its AOF) when it is gone."""

    def _connect(self) -> Any:
        try:
            return super()._connect()
        except (FileNotFoundError, ConnectionRefusedError):
            server = _embedded_by_socket.get(self.path)
            if server is None:
                raise
            log.warning("embedded redis is not running; starting it", socket=self.path)
            server.start()
            return super()._connect()


_embedded_by_socket: dict[str, EmbeddedServer] = {}


def _client_options(target: str, retry: LoggingRetry | None = None) -> dict[str, Any]:
    return {
        "retry": retry or LoggingRetry(target),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "socket_connect_timeout": CONNECT_TIMEOUT,
    }


def redis_target(settings: Settings) -> str:
    """What `connect` talks to, for messages: the URL without password, or the embedded socket."""
    if settings.redis_url:
        return describe_url(settings.redis_url)
    return embedded_server(settings.data_dir).url + " (embedded)"


def connect(settings: Settings, *, wait: float = 30.0) -> redis.Redis:
    """A client for REDIS_URL (password, rediss:// TLS, /db honoured) or the embedded server.

    Waits up to `wait` seconds for Redis to answer and raises RedisUnavailable after that.
    """
    # The client, for the retry's recovery callback (redis-py deep-copies the Retry into each
    # connection, which keeps this list shared: functions and their closures are not copied).
    made: list[redis.Redis] = []
    if settings.redis_url:
        target = describe_url(settings.redis_url)
        try:
            tcp = {} if settings.redis_url.startswith("unix:") else {"socket_keepalive": True}
            retry = LoggingRetry(target, on_recover=lambda: _record_recovery(made))
            client = redis.Redis.from_url(settings.redis_url, **tcp, **_client_options(target, retry))
            probe = redis.Redis.from_url(
                settings.redis_url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=CONNECT_TIMEOUT
            )
        except ValueError as error:  # a malformed URL
            raise RedisUnavailable(f"REDIS_URL {target}: {error}") from None
        try:
            wait_until_reachable(probe, target, wait)
        finally:
            probe.close()
    else:
        server = ensure_embedded(settings.data_dir)
        target = server.url
        _embedded_by_socket[str(server.socket_path)] = server
        retry = LoggingRetry(target, on_recover=lambda: _record_recovery(made))
        pool = redis.ConnectionPool(
            connection_class=EmbeddedConnection,
            path=str(server.socket_path),
            **_client_options(target, retry),
        )
        client = redis.Redis(connection_pool=pool)
    made.append(client)
    return client


def _record_recovery(made: list[redis.Redis]) -> None:
    """Note in Redis when this process got it back, so that `newswatch status` can say so."""
    import os
    import sys

    from newswatch.metrics import record_reconnect

    process = f"{os.path.basename(sys.argv[0]) or 'python'} {' '.join(sys.argv[1:3])} (pid {os.getpid()})"
    if made:
        record_reconnect(made[0], time.time(), process.strip())


def wait_until_reachable(client: redis.Redis, target: str, wait: float) -> None:
    """Ping until Redis answers, one log line per failed try; RedisUnavailable after `wait` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            client.ping()
            return
        except redis.exceptions.AuthenticationError as error:
            raise RedisUnavailable(f"Redis at {target} refused the credentials: {error}") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            if time.monotonic() + delay > deadline:
                raise RedisUnavailable(f"cannot reach Redis at {target}: {error}") from None
            log.warning(
                "redis unreachable, waiting", redis=target, error=str(error), retry_in=round(delay, 2)
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        except redis.exceptions.ResponseError as error:  # e.g. NOAUTH, WRONGPASS
            raise RedisUnavailable(f"Redis at {target} refused the connection: {error}") from None

"""Helpers of every command that reads the configuration or talks to Redis (producer, enqueue, run, feeds,
status, alerts): a user's mistake is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from newswatch.settings import Settings


class CommandError(Exception):
    """A problem the user can fix (configuration, unreachable Redis); printed as one line, exit 2."""


def load_configuration(log_level: str = "INFO") -> Settings:
    """Settings, and logging at `log_level` (WARNING for commands whose output is data); CommandError on
    bad configuration."""
    from newswatch.logs import configure_logging
    from newswatch.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        raise CommandError(f"configuration: {error}") from None
    configure_logging(log_level)
    return settings


def open_connection(settings: Settings, *, wait: float = 30.0) -> redis.Redis:
    """The Redis client (REDIS_URL or the embedded server), waiting up to `wait` seconds for it to answer;
    CommandError when it cannot be reached."""
    from newswatch.connection import RedisUnavailable, connect
    from newswatch.redis_server import EmbeddedServerError

    try:
        return connect(settings, wait=wait)
    except (RedisUnavailable, EmbeddedServerError) as error:
        raise CommandError(str(error)) from None


def start_metrics(connection: redis.Redis, settings: Settings) -> None:
    """Serve Prometheus metrics when NEWSWATCH_METRICS_PORT (Settings.metrics_port) is set, on
    NEWSWATCH_METRICS_ADDRESS (Settings.metrics_address, loopback by default)."""
    if not settings.metrics_port:
        return
    from newswatch.metrics import serve_metrics
    from newswatch.settings import Settings

    address = settings.metrics_address or Settings.metrics_address  # set but empty: the default
    try:
        serve_metrics(connection, settings.metrics_port, address)
    except OSError as error:
        reason = error.strerror or error
        raise CommandError(f"metrics port {address}:{settings.metrics_port}: {reason}") from None


def reports_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a CommandError into a one-line message on stderr and exit status 2."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CommandError as error:
            print(f"newswatch {args.command}: {error}", file=sys.stderr)
            return 2

    return wrapped


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (Ctrl-C), so loops end cleanly; handlers restored afterwards."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def file_progress(label: str, *, minimum: int = 50) -> Iterator[Callable[[int, int], None]]:
    """A progress callback: a rich progress bar on a terminal once there are `minimum` files, else silent."""
    if not sys.stderr.isatty():
        yield lambda _done, _total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task: Any = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if total < minimum:
            return
        if task is None:
            progress.start()
            task = progress.add_task(label, total=total)
        progress.update(task, completed=done)

    try:
        yield update
    finally:
        if task is not None:
            progress.stop()

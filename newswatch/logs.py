"""Logging for every newswatch process: structlog, JSON lines off a terminal, readable console on one.

Job code binds `job_id`, `article_id` and `topic` with `bind_contextvars` (structlog.contextvars), so every
line written while an article is processed carries them. Standard-library loggers (rq, httpx) go through
the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False

if not structlog.is_configured():
    # Until configure_logging runs, log lines go to stderr (structlog's default is stdout, where
    # commands like `newswatch alerts --json` write their data).
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str | int = "INFO", *, json: bool | None = None) -> None:
    """Route structlog and stdlib logging to stderr; JSON unless stderr is a terminal (or `json` says)."""
    global _configured
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests (and `newswatch run`) reconfigure logging after loggers were first used.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_newswatch", False):
            root.removeHandler(old)
    handler._newswatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    _configured = True


def _identity(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; works before configure_logging (structlog's defaults) and after."""
    return structlog.get_logger(name)

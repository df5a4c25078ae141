"""Configuration: environment first, then newswatch.toml, then defaults (12-factor)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_WEBHOOK_RETRIES = (5, 300, 1800, 7200, 18000, 36000, 36000)


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable or key."""


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    data_dir: Path = Path(".newswatch")
    watchlist: Path = Path("watchlist.toml")
    seeds_dir: Path = Path("seeds")
    feeds: Path | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    webhook_retries: tuple[int, ...] = DEFAULT_WEBHOOK_RETRIES
    max_article_bytes: int = 10 * 1024 * 1024
    batch_size: int = 100  # bench/pipeline.py: the per-job cost is under 5% of a batch from here on
    dedup_window: int = 30 * 24 * 3600
    job_timeout: int = 120
    alert_log_maxlen: int = 100_000
    metrics_port: int | None = None
    #: The address the metrics port listens on: loopback unless set (0.0.0.0 in a container, so that
    #: Prometheus in another container can scrape it).
    metrics_address: str = "127.0.0.1"
    #: Raw tables of newswatch.toml that other parts interpret (e.g. [sinks.*]).
    extra: Mapping[str, Any] = field(default_factory=dict)


# Environment variable -> field name. Everything is also settable in newswatch.toml by field name.
ENVIRONMENT = {
    "REDIS_URL": "redis_url",
    "NEWSWATCH_DATA_DIR": "data_dir",
    "NEWSWATCH_WATCHLIST": "watchlist",
    "NEWSWATCH_SEEDS_DIR": "seeds_dir",
    "NEWSWATCH_FEEDS": "feeds",
    "NEWSWATCH_WEBHOOK_URL": "webhook_url",
    "NEWSWATCH_WEBHOOK_SECRET": "webhook_secret",
    "NEWSWATCH_ALLOWED_HOSTS": "allowed_hosts",
    "NEWSWATCH_WEBHOOK_RETRIES": "webhook_retries",
    "NEWSWATCH_MAX_ARTICLE_BYTES": "max_article_bytes",
    "NEWSWATCH_BATCH_SIZE": "batch_size",
    "NEWSWATCH_DEDUP_WINDOW": "dedup_window",
    "NEWSWATCH_JOB_TIMEOUT": "job_timeout",
    "NEWSWATCH_ALERT_LOG_MAXLEN": "alert_log_maxlen",
    "NEWSWATCH_METRICS_PORT": "metrics_port",
    "NEWSWATCH_METRICS_ADDRESS": "metrics_address",
}
_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _convert(name: str, value: Any, origin: str) -> Any:
    kind = str(_FIELD_TYPES[name])
    try:
        if "tuple[int" in kind:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(int(str(x).strip()) for x in items if str(x).strip())
        if "tuple[str" in kind:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(x).strip() for x in items if str(x).strip())
        if "Path" in kind:
            return Path(str(value)).expanduser() if str(value) else None
        if kind.startswith("int"):
            return int(value)
        return str(value) if value != "" else None
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{origin}: cannot use {value!r} ({error})") from None


def load_settings(environ: Mapping[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Settings from the environment, then newswatch.toml (NEWSWATCH_CONFIG or ./newswatch.toml)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or Path(environ.get("NEWSWATCH_CONFIG", "newswatch.toml"))
    extra: dict[str, Any] = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingsError(f"{path}: {error}") from None
        for key, value in table.items():
            if key in _FIELD_TYPES and key != "extra":
                values[key] = _convert(key, value, f"{path}: {key}")
            else:
                extra[key] = value
    for variable, name in ENVIRONMENT.items():
        if variable in environ:
            values[name] = _convert(name, environ[variable], variable)
    return Settings(**values, extra=extra)

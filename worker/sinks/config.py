"""Sink configuration: `[sinks.NAME]` tables of newswatch.toml and the default webhook from the environment.

    [sinks.desk-a]
    kind = "webhook"            # "webhook" (default) | "apprise" | "stdout"
    url = "https://desk-a.example.org/hooks/newswatch"
    secret_env = "DESK_A_SECRET"  # the variable holding its whsec_ secret (never the secret itself here)
    max_per_hour = 20           # optional cap per topic; the rest is suppressed, counted and kept
    digest = "15m"              # optional: one message per topic per window, listing each article
    default = false             # true: topics without `sinks` also go here

`NEWSWATCH_WEBHOOK_URL` + `NEWSWATCH_WEBHOOK_SECRET` declare the sink "default". Topics that name no
sinks go to the sinks marked `default = true`, else to "default" when it exists, else to the console
("console", kind stdout). Every problem is a SinkConfigError raised by `load_sinks` at start-up.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from newswatch.settings import Settings
from worker.sinks.signing import SecretError, decode_secret

SinkKind = Literal["webhook", "apprise", "stdout"]
KINDS: tuple[str, ...] = ("webhook", "apprise", "stdout")
DEFAULT_WEBHOOK_SINK = "default"
CONSOLE_SINK = "console"
DEFAULT_TIMEOUT = 10.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_KNOWN_KEYS = {"kind", "url", "urls", "secret_env", "max_per_hour", "digest", "default", "timeout"}


class SinkConfigError(ValueError):
    """A sink declaration that cannot be used; the message names the sink and the key."""


@dataclass(frozen=True)
class SinkConfig:
    """One declared sink. `key` is the decoded webhook secret (kept out of repr)."""

    name: str
    kind: SinkKind
    urls: tuple[str, ...] = ()
    key: bytes | None = field(default=None, repr=False)
    max_per_hour: int | None = None
    digest: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    default: bool = False

    @property
    def url(self) -> str | None:
        return self.urls[0] if self.urls else None

    @property
    def fingerprint(self) -> str:
        """Where the sink sends to: a sink disabled by 410 Gone stays disabled until this changes."""
        return hashlib.sha256("\n".join((self.kind, *self.urls)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sinks:
    """All sinks by name, and the ones used for topics that name none."""

    by_name: Mapping[str, SinkConfig]
    defaults: tuple[str, ...]

    def __getitem__(self, name: str) -> SinkConfig:
        return self.by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def route(self, topic_sinks: Iterable[str] | None) -> tuple[str, ...]:
        """The sink names an alert of a topic goes to (its `sinks`, else the defaults)."""
        names = tuple(dict.fromkeys(topic_sinks or ()))
        for name in names:
            if name not in self.by_name:
                known = ", ".join(sorted(self.by_name))
                raise SinkConfigError(f"sink {name!r} is not declared (known: {known})")
        return names or self.defaults

    def check_topics(self, topic_sinks: Mapping[str, Iterable[str] | None]) -> None:
        """Start-up check that every sink a watchlist topic names is declared."""
        for topic, names in topic_sinks.items():
            unknown = [name for name in names or () if name not in self.by_name]
            if unknown:
                raise SinkConfigError(
                    f"topic {topic!r}: sink {unknown[0]!r} is not declared in [sinks] "
                    f"(known: {', '.join(sorted(self.by_name))})"
                )


def parse_duration(value: Any, origin: str) -> int:
    """Seconds of "15m", "1h", "30s", "2d" or a plain number of seconds."""
    if isinstance(value, bool):
        raise SinkConfigError(f"{origin}: expected a duration like '15m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise SinkConfigError(f"{origin}: expected a duration like '15m', '1h' or '30s', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise SinkConfigError(f"{origin}: a duration must be at least 1 second, got {value!r}")
    return int(seconds)


def _webhook_url(url: Any, origin: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise SinkConfigError(f"{origin}: a webhook sink needs `url`")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SinkConfigError(f"{origin}: url must be an http:// or https:// URL, got {url!r}")
    return url.strip()


def _secret(environ: Mapping[str, str], variable: str, origin: str) -> bytes:
    value = environ.get(variable)
    if value is None or not value.strip():
        raise SinkConfigError(f"{origin}: the webhook secret variable {variable} is not set")
    try:
        return decode_secret(value.strip(), name=variable)
    except SecretError as error:
        raise SinkConfigError(f"{origin}: {error}") from None


def _positive_int(value: Any, origin: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SinkConfigError(f"{origin}: expected a whole number >= 1, got {value!r}")
    return value


def _declared(name: str, table: Any, environ: Mapping[str, str]) -> SinkConfig:
    origin = f"[sinks.{name}]"
    if not _NAME.match(name):
        raise SinkConfigError(f"{origin}: a sink name uses letters, digits, '-', '_' and '.' only")
    if not isinstance(table, Mapping):
        raise SinkConfigError(f"{origin}: expected a table")
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if "secret" in unknown:
        raise SinkConfigError(f"{origin}: put the secret in an environment variable, named by secret_env")
    if unknown:
        known = ", ".join(sorted(_KNOWN_KEYS))
        raise SinkConfigError(f"{origin}: unknown key {unknown[0]!r} (known: {known})")
    kind = table.get("kind", "webhook")
    if kind not in KINDS:
        raise SinkConfigError(f"{origin}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    urls: tuple[str, ...] = ()
    key = None
    if kind == "webhook":
        urls = (_webhook_url(table.get("url"), f"{origin} url"),)
        if "secret_env" not in table:
            raise SinkConfigError(f"{origin}: a webhook sink needs secret_env (the variable with its secret)")
        key = _secret(environ, str(table["secret_env"]), f"{origin} secret_env")
    elif kind == "apprise":
        raw = table.get("urls", table.get("url"))
        items = [raw] if isinstance(raw, str) else list(raw or [])
        urls = tuple(str(item).strip() for item in items if str(item).strip())
        if not urls:
            raise SinkConfigError(
                f"{origin}: an apprise sink needs `url` (an Apprise URL such as ntfy://topic)"
            )
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise SinkConfigError(f"{origin} timeout: expected seconds > 0, got {timeout!r}")
    return SinkConfig(
        name=name,
        kind=kind,
        urls=urls,
        key=key,
        max_per_hour=_positive_int(table["max_per_hour"], f"{origin} max_per_hour")
        if "max_per_hour" in table
        else None,
        digest=parse_duration(table["digest"], f"{origin} digest") if "digest" in table else None,
        timeout=float(timeout),
        default=bool(table.get("default", False)),
    )


def load_sinks(settings: Settings, environ: Mapping[str, str] | None = None) -> Sinks:
    """Every sink of the configuration, validated; SinkConfigError names the first problem."""
    environ = os.environ if environ is None else environ
    tables = settings.extra.get("sinks", {})
    if not isinstance(tables, Mapping):
        raise SinkConfigError("[sinks]: expected tables like [sinks.desk-a]")
    by_name: dict[str, SinkConfig] = {name: _declared(name, table, environ) for name, table in tables.items()}
    if settings.webhook_url:
        if DEFAULT_WEBHOOK_SINK in by_name:
            raise SinkConfigError(
                f"[sinks.{DEFAULT_WEBHOOK_SINK}] clashes with NEWSWATCH_WEBHOOK_URL; rename the table"
            )
        url = _webhook_url(settings.webhook_url, "NEWSWATCH_WEBHOOK_URL")
        if not settings.webhook_secret:
            raise SinkConfigError("NEWSWATCH_WEBHOOK_URL needs NEWSWATCH_WEBHOOK_SECRET (a whsec_ key)")
        try:
            key = decode_secret(settings.webhook_secret, name="NEWSWATCH_WEBHOOK_SECRET")
        except SecretError as error:
            raise SinkConfigError(str(error)) from None
        by_name[DEFAULT_WEBHOOK_SINK] = SinkConfig(DEFAULT_WEBHOOK_SINK, "webhook", (url,), key)
    elif settings.webhook_secret and DEFAULT_WEBHOOK_SINK not in by_name:
        raise SinkConfigError("NEWSWATCH_WEBHOOK_SECRET is set but NEWSWATCH_WEBHOOK_URL is not")
    defaults = tuple(name for name, sink in by_name.items() if sink.default)
    if not defaults:
        if DEFAULT_WEBHOOK_SINK in by_name:
            defaults = (DEFAULT_WEBHOOK_SINK,)
        else:
            by_name.setdefault(CONSOLE_SINK, SinkConfig(CONSOLE_SINK, "stdout"))
            defaults = (CONSOLE_SINK,)
    return Sinks(by_name, defaults)

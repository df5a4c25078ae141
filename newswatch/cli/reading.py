"""The connection of the commands that read the running system (status, alerts): one line on failure."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


def connect_or_report(command: str, *, wait: float = 5) -> redis.Redis | None:
    """Redis for `newswatch COMMAND`, or None after one line on stderr (bad configuration, no Redis)."""
    from newswatch.connection import RedisUnavailable, connect
    from newswatch.logs import configure_logging
    from newswatch.settings import SettingsError, load_settings

    configure_logging("WARNING")
    try:
        return connect(load_settings(), wait=wait)
    except (SettingsError, RedisUnavailable) as error:
        print(f"newswatch {command}: {error}", file=sys.stderr)
        return None

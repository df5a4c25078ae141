"""The Apprise sink (kind "apprise", optional extra `newswatch[apprise]`): Slack, Teams, email, ntfy and more.

Sends a readable notification: the topic and the article's title as the title; source, snippet and link
(for a digest, one block per article) as the body.

Apprise makes its own requests, so the SSRF guard checks its targets here: a service whose host the user
names (json://, ntfy://host, gotify://, mailto:// ...) may only point where webhooks may (public addresses,
or NEWSWATCH_ALLOWED_HOSTS). A literal refused address is a start-up error; a host name is resolved and
checked before each send (a refused one fails the send, and the delivery is retried and dead-lettered as
usual). Services with a fixed public endpoint (Slack, Telegram, Discord) have no user host to check. The
check and Apprise's own lookup are two lookups, so unlike webhooks this does not stop DNS rebinding.
"""

from __future__ import annotations

from typing import Any

from newswatch.http.ssrf import AddressGuard, GuardError, parse_ip
from worker.sinks.base import SendResult
from worker.sinks.config import SinkConfig, SinkConfigError
from worker.sinks.message import Message


def load_apprise(sink_name: str) -> Any:
    """The apprise module, or a SinkConfigError saying how to install it."""
    try:
        import apprise
    except ImportError:
        raise SinkConfigError(
            f"[sinks.{sink_name}]: kind apprise needs the optional extra: pip install 'newswatch[apprise]'"
        ) from None
    return apprise


def _user_host(service: Any) -> str:
    """The host a service's URL names, if the service talks to a host of the user's choice ("" if not)."""
    if "host" not in getattr(type(service), "template_tokens", {}):
        return ""  # a fixed endpoint; `host` holds a token or an id there
    host = getattr(service, "host", "")
    return host if isinstance(host, str) else ""


class AppriseSink:
    def __init__(self, config: SinkConfig, guard: AddressGuard | None = None) -> None:
        apprise = load_apprise(config.name)
        self.name = config.name
        self._apprise = apprise
        self._guard = guard or AddressGuard()
        self._notifier = apprise.Apprise()
        for url in config.urls:
            if not self._notifier.add(url):
                # Apprise refuses a URL it cannot parse; the URL may hold a token, so do not echo it.
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise SinkConfigError(
                    f"[sinks.{config.name}]: Apprise does not understand the {scheme}:// URL"
                )
        self._hosts = sorted({host for service in self._notifier if (host := _user_host(service))})
        for host in self._hosts:
            address = parse_ip(host)
            problem = self._guard.problem(host, address) if address is not None else None
            if problem:
                raise SinkConfigError(
                    f"[sinks.{config.name}]: refused {host}: {problem} (allow it in NEWSWATCH_ALLOWED_HOSTS)"
                )

    def send(self, message: Message) -> SendResult:
        for host in self._hosts:
            try:
                self._guard.resolve(host, 443)
            except GuardError as error:
                return SendResult(False, error=str(error))
        with self._apprise.LogCapture(level=self._apprise.logging.WARNING) as captured:
            ok = self._notifier.notify(title=message.title(), body=message.text())
        if ok:
            return SendResult(True)
        lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        return SendResult(False, error=lines[-1] if lines else "Apprise could not deliver the notification")

    def close(self) -> None:
        pass

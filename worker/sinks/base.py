"""What every sink has in common: `send(message) -> SendResult`, never raising for a delivery failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from worker.sinks.message import Message


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt. `gone` (410 Gone) means: stop sending to this sink."""

    ok: bool
    status: int | None = None
    error: str | None = None
    gone: bool = False


class Sink(Protocol):
    name: str

    def send(self, message: Message) -> SendResult: ...

    def close(self) -> None: ...

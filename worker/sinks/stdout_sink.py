"""The console sink (kind "stdout"): one line per alert on standard output."""

from __future__ import annotations

import sys
from typing import TextIO

from worker.sinks.base import SendResult
from worker.sinks.config import SinkConfig
from worker.sinks.message import Message


class StdoutSink:
    def __init__(self, config: SinkConfig, stream: TextIO | None = None) -> None:
        self.name = config.name
        self.stream = stream

    def send(self, message: Message) -> SendResult:
        stream = self.stream or sys.stdout  # looked up per call: the CLI may swap sys.stdout
        try:
            stream.write("".join(line + "\n" for line in message.lines()))
            stream.flush()
        except (OSError, ValueError) as error:  # a closed pipe or stream
            return SendResult(False, error=f"cannot write to standard output: {error}")
        return SendResult(True)

    def close(self) -> None:
        pass

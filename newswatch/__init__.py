"""newswatch: the shared contract and wiring of producer and worker (settings, messages, Redis, logging, CLI)."""

__version__ = "0.1.0"

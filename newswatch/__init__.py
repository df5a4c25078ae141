"""newswatch: the contract and wiring shared by producer and worker (settings, messages, Redis, logs, CLI)."""

__version__ = "0.1.0"

"""Errors of the query language, with the position in the query where the problem is."""

from __future__ import annotations


class QueryError(ValueError):
    """A query that cannot be parsed or is meaningless. `offset` is 0-based within the query string."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    @property
    def column(self) -> int:
        """1-based column within the query string (the query's first line)."""
        return self.offset + 1

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"

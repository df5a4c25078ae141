"""The watchlist query language: parse a query string into a tree of terms and operators."""

from worker.core.query.errors import QueryError
from worker.core.query.parser import parse_alias_term, parse_query
from worker.core.query.tree import And, Near, Node, Not, Or, Term

__all__ = ["And", "Near", "Node", "Not", "Or", "QueryError", "Term", "parse_alias_term", "parse_query"]

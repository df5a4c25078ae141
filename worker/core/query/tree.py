"""The query tree: what a parsed topic query is made of (immutable dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Field: TypeAlias = Literal["title"] | None
FIELDS = ("title",)


@dataclass(frozen=True, slots=True)
class Term:
    """One searchable unit.

    kind "word": one token, matched by stem (`troops` finds troop, troops, troop's).
    kind "phrase": consecutive tokens matched exactly (folded, not stemmed) within one sentence; the last
    one is a prefix when `prefix` is set (`troop*` is a one-token prefix phrase). With `slop`, the tokens
    may stand apart: Lucene's sloppy phrase, see `Term.slop`.
    """

    kind: Literal["word", "phrase"]
    words: tuple[str, ...]
    prefix: bool = False
    slop: int | None = None
    field: Field = None
    text: str = ""  # as written in the query (or the alias term)
    alias: str | None = None  # the alias it came from, if any
    offset: int = 0  # 0-based position in the query string

    @property
    def key(self) -> tuple[str, tuple[str, ...], bool, int | None]:
        """Identity for matching (field and provenance aside)."""
        return (self.kind, self.words, self.prefix, self.slop)

    @property
    def clause(self) -> str:
        """How the term reads in an explanation: the alias reference or the term as written."""
        return f"@{self.alias}" if self.alias else self.text


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    text: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    text: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    text: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Near:
    """left and right within `distance` words of each other, either order (spans must not overlap)."""

    left: Node
    right: Node
    distance: int
    text: str = ""
    offset: int = 0


Node: TypeAlias = Term | And | Or | Not | Near


def terms(node: Node, negated: bool = False) -> list[tuple[Term, bool]]:
    """Every term of a tree with whether it sits under a NOT."""
    if isinstance(node, Term):
        return [(node, negated)]
    if isinstance(node, Not):
        return terms(node.child, not negated)
    if isinstance(node, Near):
        return terms(node.left, negated) + terms(node.right, negated)
    out: list[tuple[Term, bool]] = []
    for child in node.children:
        out.extend(terms(child, negated))
    return out


def is_positive(node: Node) -> bool:
    """True if every document the node matches contains at least one of its non-negated terms."""
    if isinstance(node, Term):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, Near):
        return True
    if isinstance(node, And):
        return any(is_positive(c) for c in node.children)
    return all(is_positive(c) for c in node.children)


def render(node: Node) -> str:
    """A canonical text form of a tree (fully parenthesised where it matters)."""
    if isinstance(node, Term):
        return node.clause if node.alias else node.text
    if isinstance(node, Not):
        return f"NOT {render(node.child)}"
    if isinstance(node, Near):
        return f"({render(node.left)} NEAR/{node.distance} {render(node.right)})"
    if (
        isinstance(node, Or)
        and node.text.startswith("@")
        and all(isinstance(c, Term) and c.alias == node.text[1:] for c in node.children)
    ):
        return node.text
    op = " AND " if isinstance(node, And) else " OR "
    parts = [render(c) for c in node.children]
    if isinstance(node, Or):
        # An alias OR-ed with other terms is flattened into one OR: show "@name" once, not once a term.
        parts = list(dict.fromkeys(parts))
        if len(parts) == 1:
            return parts[0]
    return "(" + op.join(parts) + ")"

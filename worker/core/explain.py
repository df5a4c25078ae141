"""Walk a topic's query tree over an article's term hits: which clauses fired with which words, and why not.

Used for a match's evidence (matched topics only) and for `newswatch match --explain`. The fast
decision itself is made by the compiled closures of matcher.py; this walk gives the same answer.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.core.analysis import Prepared
from worker.core.hits import BODY, FIELD_NAMES, TITLE, Hits, Span, slop_spans
from worker.core.query.tree import And, Near, Node, Not, Or, Term, render

# An occurrence of a term: (term, field index, first token, last token).
Item = tuple[Term, int, int, int]


@dataclass(slots=True)
class Result:
    """The outcome of one node of the tree."""

    node: Node
    ok: bool
    items: list[Item] = field(default_factory=list)
    spans: list[tuple[Span, tuple[Item, ...]]] = field(default_factory=list)
    children: list[Result] = field(default_factory=list)


class Walker:
    """Evaluates query trees over one article's hits. `base_of(term)` gives a term's base ids."""

    def __init__(
        self, hits: Hits, base_of: Callable[[Term], int], words_of: Callable[[Term], list[int]]
    ) -> None:
        self.hits = hits
        self.base_of = base_of
        self.words_of = words_of

    def walk(self, node: Node) -> Result:
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            child = self.walk(node.child)
            return Result(node, not child.ok, children=[child])
        if isinstance(node, Near):
            return self.near(node)
        children = [self.walk(c) for c in node.children]
        if isinstance(node, And):
            ok = all(c.ok for c in children)
            items = (
                [i for c in children if c.ok and not isinstance(c.node, Not) for i in c.items] if ok else []
            )
            return Result(node, ok, items, children=children)
        assert isinstance(node, Or)
        ok = any(c.ok for c in children)
        items = [i for c in children if c.ok for i in c.items]
        spans = [s for c in children if c.ok for s in c.spans]
        return Result(node, ok, items, spans, children)

    def term(self, term: Term) -> Result:
        fields = (TITLE,) if term.field == "title" else (TITLE, BODY)
        spans: list[tuple[Span, tuple[Item, ...]]] = []
        for f in fields:
            if term.slop is not None:
                occurrences = [self.hits.positions(b, f) for b in self.words_of(term)]
                found = slop_spans(occurrences, term.slop, f, self.hits)
            else:
                width = len(term.words) - 1
                found = [(f, p, p + width) for p in self.hits.positions(self.base_of(term), f)]
            spans.extend((s, ((term, s[0], s[1], s[2]),)) for s in found)
        items = [i for _, its in spans for i in its]
        return Result(term, bool(spans), items, spans)

    def near(self, node: Near) -> Result:
        left = self.walk(node.left)
        right = self.walk(node.right)
        spans: list[tuple[Span, tuple[Item, ...]]] = []
        if left.ok and right.ok:
            # Each right span once, sorted, with the items of its first occurrence; pairs are found by
            # bisection, so a long article full of hits costs O(hits x distance), not O(hits^2).
            first_items: dict[Span, tuple[Item, ...]] = {}
            for rs, ritems in right.spans:
                first_items.setdefault(rs, ritems)
            ordered = sorted(first_items)
            starts = [(f, a) for f, a, _ in ordered]
            longest = max(b - a for _, a, b in ordered)
            for (f, a, b), litems in left.spans:
                lo = bisect_left(starts, (f, a - node.distance - longest))
                hi = bisect_right(starts, (f, b + node.distance))
                for rf, ra, rb in ordered[lo:hi]:
                    if rf != f:
                        continue
                    gap = a - rb if rb < a else ra - b if b < ra else 0
                    if 0 < gap <= node.distance:
                        spans.append(((f, min(a, ra), max(b, rb)), litems + first_items[(rf, ra, rb)]))
        items: list[Item] = []
        seen: set[tuple[int, int, int, str]] = set()
        for _, its in spans:
            for item in its:
                key = (item[1], item[2], item[3], item[0].text)
                if key not in seen:
                    seen.add(key)
                    items.append(item)
        return Result(node, bool(spans), items, spans, [left, right])


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a topic matched an article, or why it nearly did."""

    topic_id: str
    topic_name: str
    matched: bool
    score: float | None
    lines: tuple[str, ...]  # the clause tree, one clause per line, indented
    reasons: tuple[str, ...]  # for a near miss: what was absent or what excluded it

    def render(self) -> str:
        head = f"{self.topic_id} ({self.topic_name}): "
        if self.matched:
            head += f"MATCH, score {self.score:.2f}" if self.score is not None else "MATCH"
        else:
            head += "no match — " + "; ".join(self.reasons)
        return "\n".join([head, *("  " + line for line in self.lines)])

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic_id,
            "name": self.topic_name,
            "matched": self.matched,
            "score": self.score,
            "clauses": list(self.lines),
            "reasons": list(self.reasons),
        }


def describe(result: Result, fields: tuple[Prepared, Prepared], depth: int = 0) -> list[str]:
    """The result tree as text lines: ✓/✗, the clause, and the words that fired (with their offsets)."""
    node = result.node
    mark = "✓" if result.ok else "✗"
    pad = "  " * depth
    if isinstance(node, Not):
        child = result.children[0]
        found = _found(child.items, fields)
        state = f"excluded: found {found}" if child.ok else "absent (good)"
        return [f"{pad}{mark} NOT {render(node.child)}: {state}"]
    if isinstance(node, Term) or _is_alias_group(node):
        found = _found(result.items, fields) if result.ok else "absent"
        return [f"{pad}{mark} {render(node)}: {found}"]
    if isinstance(node, Near):
        found = _found(result.items, fields) if result.ok else "no pair close enough"
        lines = [f"{pad}{mark} NEAR/{node.distance}: {found}"]
    else:
        lines = [f"{pad}{mark} {'AND' if isinstance(node, And) else 'OR'}"]
    for group in _alias_runs(result.children):
        if len(group) == 1:
            lines.extend(describe(group[0], fields, depth + 1))
            continue
        # An alias flattened into its parent OR is one clause to the reader: one line, not one per term.
        ok = any(child.ok for child in group)
        items = [item for child in group if child.ok for item in child.items]
        found = _found(items, fields) if ok else "absent"
        lines.append(f"{pad}  {'✓' if ok else '✗'} {render(group[0].node)}: {found}")
    return lines


def _alias_runs(children: list[Result]) -> list[list[Result]]:
    """Children in order, with consecutive terms of the same alias (same clause text, "@name") grouped."""
    runs: list[list[Result]] = []
    for child in children:
        node = child.node
        clause = render(node) if isinstance(node, Term) else ""
        previous = runs[-1][0].node if runs else None
        if clause.startswith("@") and isinstance(previous, Term) and render(previous) == clause:
            runs[-1].append(child)
        else:
            runs.append([child])
    return runs


def missing(result: Result) -> list[str]:
    """For a failed result: the required parts that were absent and the NOTs that excluded it."""
    node = result.node
    if result.ok:
        return []
    if isinstance(node, Not):
        return [f"excluded by NOT {render(node.child)}"]
    if isinstance(node, Term) or _is_alias_group(node) or isinstance(node, Or):
        return [f"absent: {render(node)}"]
    if isinstance(node, Near):
        if not result.children[0].ok:
            return missing(result.children[0])
        if not result.children[1].ok:
            return missing(result.children[1])
        return [f"{render(node.left)} and {render(node.right)} not within {node.distance} words"]
    out: list[str] = []
    for child in result.children:
        out.extend(missing(child))
    return out


def _is_alias_group(node: Node) -> bool:
    return (
        isinstance(node, Or) and node.text.startswith("@") and all(isinstance(c, Term) for c in node.children)
    )


def _found(items: list[Item], fields: tuple[Prepared, Prepared], limit: int = 4) -> str:
    if not items:
        return "—"
    shown = []
    for _term, f, first, last in sorted(items, key=lambda i: (i[1], i[2]))[:limit]:
        start, end = fields[f].span(first)[0], fields[f].span(last)[1]
        shown.append(f'"{fields[f].original[start:end]}" ({FIELD_NAMES[f]} {start}-{end})')
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(shown) + more

"""The gate before analysis: can any topic match this article? Decided on the folded text alone.

Most of a news stream matches no topic of a watchlist. Preparing an article (sentences, tokens,
stems) costs several times what folding it and one scan for short strings costs, so the matcher asks
the gate first and prepares only the articles it admits. The gate may admit an article that then
matches nothing; it never turns away one that matches (the matcher's property test checks this).

Every token of a prepared text is a substring of the folded text (analysis.py). So a topic gives a
conjunction of clauses, each a set of "probes" of which an article that matches the topic contains at
least one in its folded title or text:

- a term: one clause per word, of one probe: the word itself for an exact word or phrase (the prefix
  for the last word of a prefix), analysis.stem_probe of the stem for a stemmed word;
- AND and NEAR: the clauses of their positive parts (a NOT only narrows, it gives none);
- OR: one clause, the union of the strongest clause of each alternative.

A probe shorter than MIN_PROBE characters counts as always present (nearly every text holds it, and
the scan would report each occurrence): its clause is left out. A topic left without clauses opens
the gate for every article.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

import ahocorasick_rs

from worker.core.analysis import fold, stem, stem_probe
from worker.core.query.tree import And, Near, Node, Not, Term

MIN_PROBE = 3

Clause = frozenset[str]
_pattern = itemgetter(0)


def clauses(node: Node) -> list[Clause]:
    """The clauses of a query (see the module docstring): each must have a probe in the article."""
    if isinstance(node, Term):
        probes = [stem_probe(stem(node.words[0]))] if node.kind == "word" else list(node.words)
        return [frozenset((probe,)) for probe in probes if len(probe) >= MIN_PROBE]
    if isinstance(node, Not):
        return []
    if isinstance(node, Near):
        return clauses(node.left) + clauses(node.right)
    if isinstance(node, And):
        return [clause for child in node.children for clause in clauses(child)]
    alternatives = [clauses(child) for child in node.children]
    if not all(alternatives):
        return []  # one alternative needs nothing the gate can see: neither does the OR
    return [frozenset().union(*(max(alternative, key=_strength) for alternative in alternatives))]


def _strength(clause: Clause) -> int:
    """How rarely a clause holds, by proxy: the length of its shortest probe."""
    return min(map(len, clause))


class Gate:
    """The compiled gate of a watchlist: one automaton of all probes (a probe's id is its index), each
    topic's clauses as sets of probe ids, and the topics indexed by the probes of their strongest clause."""

    def __init__(self, trees: Iterable[Node]) -> None:
        ids: dict[str, int] = {}
        self._clauses: list[tuple[frozenset[int], ...]] = []
        self._anchored: dict[int, list[int]] = {}
        self.open = False  # a topic without clauses: every article is admitted
        for tree in trees:
            found = clauses(tree)
            if not found:
                self.open = True
                continue
            as_ids = tuple(frozenset(ids.setdefault(p, len(ids)) for p in clause) for clause in found)
            self._clauses.append(as_ids)
            strongest = max(range(len(found)), key=lambda i: _strength(found[i]))
            for probe in as_ids[strongest]:
                self._anchored.setdefault(probe, []).append(len(self._clauses) - 1)
        # ahocorasick_rs, not pyahocorasick: an overlapping scan of a folded text is 2-3x faster, and here
        # the scan is most of the gate's cost.
        self._automaton: ahocorasick_rs.AhoCorasick | None = None
        if ids and not self.open:
            self._automaton = ahocorasick_rs.AhoCorasick(list(ids))

    def admits(self, title: str, text: str) -> bool:
        """False when no topic can match an article with this title and text."""
        if self.open:
            return True
        automaton = self._automaton
        if automaton is None:
            return False  # no topics
        found: set[int] = set()
        for field in (title, text):
            if field:
                found.update(map(_pattern, automaton.find_matches_as_indexes(fold(field), overlapping=True)))
        topic_clauses = self._clauses
        for probe in found.intersection(self._anchored):
            for topic in self._anchored[probe]:
                if all(not clause.isdisjoint(found) for clause in topic_clauses[topic]):
                    return True
        return False

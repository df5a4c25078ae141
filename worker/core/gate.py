"""The gate before analysis: can any topic match this article? Decided on the folded text alone.

Most of a news stream matches no topic of a watchlist. Preparing an article (sentences, tokens,
stems) costs several times what folding it and one scan for short strings costs, so the matcher asks
the gate first and prepares only the articles it admits. The gate may admit an article that then
matches nothing; it never turns away one that matches (the matcher's property test checks this).

The gate scans the folded text with separators and apostrophes as spaces (and a space at either
end): there every token of the prepared text stands between two spaces (split at its apostrophes).
So a topic gives a conjunction of clauses, each a set of "probes" of which an article that matches
the topic contains at least one:

- a term: one clause per word, of one probe: " word " for an exact word, " prefix" for the prefix
  at the end of a prefix term, " " + analysis.stem_probe(stem) for a stemmed word (every word with
  that stem begins with it);
- AND and NEAR: the clauses of their positive parts (a NOT only narrows, it gives none);
- OR: one clause, the union of the strongest clause of each alternative.

A probe shorter than MIN_WORD characters (a whole word) or MIN_START (the start of a word) counts as
always present (the scan would report it nearly everywhere): its clause is left out. A topic left
without clauses opens the gate for every article.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

import ahocorasick_rs

from worker.core.analysis import fold, stem, stem_probe
from worker.core.query.tree import And, Near, Node, Not, Term

# Asking the gate pays while it turns articles away: see GateBudget.
WINDOW = 50  # articles asked per measurement
MAX_ADMITTED = 0.6  # share admitted above which the gate tends to cost more than it saves
SKIP = 450  # articles not asked after such a window

MIN_WORD = 2  # characters of an exact word
MIN_START = 3  # characters of the start of a word (a prefix, a stem's probe)

Clause = frozenset[str]
_pattern = itemgetter(0)


def clauses(node: Node) -> list[Clause]:
    """The clauses of a query (see the module docstring): each must have a probe in the article."""
    if isinstance(node, Term):
        return [frozenset((probe,)) for probe in _term_probes(node) if probe]
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


def open_topics(trees: Iterable[Node]) -> list[int]:
    """The indices of the topics without clauses: each keeps the gate open for every article."""
    return [index for index, tree in enumerate(trees) if not clauses(tree)]


def _term_probes(term: Term) -> list[str | None]:
    """A probe per word of a term (None where the word is too short to be worth a probe)."""
    if term.kind == "word":
        return [_probe(stem_probe(stem(term.words[0])), whole=False)]
    last = len(term.words) - 1
    return [_probe(word, whole=not (term.prefix and i == last)) for i, word in enumerate(term.words)]


def _probe(part: str, whole: bool) -> str | None:
    """The probe of a whole word or of a word's start. The scanned text has apostrophes as spaces: a
    word with one is looked for by what comes before it, which is then a whole word."""
    if "'" in part:
        part, whole = part[: part.index("'")], True
    if len(part) < (MIN_WORD if whole else MIN_START):
        return None
    return f" {part} " if whole else f" {part}"


# Letters, digits and "_" stay; every other ASCII character (apostrophes and NUL too) becomes a space;
# bytes >= 0x80 (UTF-8 of the non-ASCII word characters that fold() leaves) stay.
_SPACED_TABLE = bytes(c if c >= 128 or chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(256))


def _spaced(field: str) -> str:
    """The folded field with every separator (and apostrophe) as a space, and a space at either end:
    each token of the prepared field stands there between two spaces, split at its apostrophes."""
    return " " + fold(field).encode("utf-8").translate(_SPACED_TABLE).decode("utf-8") + " "


def _strength(clause: Clause) -> int:
    """How rarely a clause holds, by proxy: the length of its shortest probe (spaces included: a
    whole word is rarer than a word's start)."""
    return min(map(len, clause))


class Gate:
    """The compiled gate of a watchlist: one automaton of all probes (a probe's id is its index), each
    topic's clauses as sorted tuples of probe ids, and the topics indexed by the probes of their strongest
    clause."""

    def __init__(self, trees: Iterable[Node]) -> None:
        ids: dict[str, int] = {}
        # Only whether SOME topic may match matters: topics with the same clauses are one entry, and
        # equal clauses one tuple (a watchlist of 100,000 topics repeats names and context words).
        entries: dict[tuple[tuple[int, ...], ...], int] = {}
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._clauses: list[tuple[tuple[int, ...], ...]] = []
        self._anchored: dict[int, list[int]] = {}
        self.open = False
        for tree in trees:
            found = clauses(tree)
            if not found:
                # One topic without clauses admits every article: the rest would be built for nothing
                # (half of the matcher's compile time at 10,000 generated topics, one of which is such).
                # open_topics() names them all for `watchlist check`.
                self.open = True
                self._clauses, self._anchored = [], {}
                break
            as_ids = tuple(
                shared.setdefault(key, key)
                for clause in found
                for key in (tuple(sorted({ids.setdefault(probe, len(ids)) for probe in clause})),)
            )
            if as_ids in entries:
                continue
            entries[as_ids] = entry = len(self._clauses)
            self._clauses.append(as_ids)
            strongest = max(range(len(found)), key=lambda i: _strength(found[i]))
            for probe_id in as_ids[strongest]:
                self._anchored.setdefault(probe_id, []).append(entry)
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
                found.update(
                    map(_pattern, automaton.find_matches_as_indexes(_spaced(field), overlapping=True))
                )
        topic_clauses = self._clauses
        isdisjoint = found.isdisjoint
        for probe_id in found.intersection(self._anchored):
            for entry in self._anchored[probe_id]:
                if not any(map(isdisjoint, topic_clauses[entry])):
                    return True
        return False


class GateBudget:
    """Whether to ask the gate for the next article. A gate that admits nearly every article (a large
    watchlist: some topic can match almost anything) costs its scan and saves nothing, so after a window
    of WINDOW asked articles of which more than MAX_ADMITTED were admitted, the next SKIP articles go
    straight to full matching; then another window is measured. The answer never changes a match, only
    what it costs."""

    def __init__(self) -> None:
        self._asked = 0
        self._admitted = 0
        self._skip = 0

    def ask(self) -> bool:
        """Ask the gate for this article?"""
        if self._skip:
            self._skip -= 1
            return False
        return True

    def record(self, admitted: bool) -> None:
        """What the gate answered for an article it was asked about."""
        self._asked += 1
        self._admitted += admitted
        if self._asked == WINDOW:
            if self._admitted > MAX_ADMITTED * WINDOW:
                self._skip = SKIP
            self._asked = self._admitted = 0

"""Where the terms of a watchlist occur in one article: positions, spans, sloppy phrases, NEAR pairs.

Shared by the matcher's fast path (presence sets and closures), its evidence and its explanations.
A span is (field, first token, last token); field 0 is the title, 1 the body.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from worker.core.analysis import Prepared

TITLE, BODY = 0, 1
FIELD_NAMES = ("title", "body")
Span = tuple[int, int, int]
_SENTENCE_GAP = re.compile("  +")
_NONE: list[int] = []  # no positions (shared: callers never change a positions list)


@dataclass(slots=True)
class Lexicon:
    """The matcher's compiled terms ("bases"), as the hits of one article are read back: base b is the
    automaton key of length lengths[b], found in the token stream, or if stems[b] is not empty a
    stemmed word, found among the stems of the article's distinct tokens."""

    lengths: list[int] = field(default_factory=list)
    stems: list[str] = field(default_factory=list)
    stem_bases: dict[str, int] = field(default_factory=dict)  # stems[b] -> b, for the stemmed words


class _Counts(dict[int, int]):
    """Occurrences per presence id. The stemmed words are counted on the first lookup of one (only a
    match's score asks), all at once, from the positions of every watched stem (one pass per field).

    It holds what counting needs, never the Hits that own it: a reference cycle would keep every
    article's hits (hundreds of tuples) alive until the cyclic GC ran, and make each collection
    traverse them (~10% of the match time at 100,000 topics)."""

    __slots__ = ("_stem_index", "_stems_counted", "fields", "lexicon", "sorted_bases", "stems")
    fields: tuple[Prepared, Prepared]
    lexicon: Lexicon
    stems: tuple[frozenset[str], frozenset[str]]
    sorted_bases: tuple[list[int], list[int]]
    _stem_index: dict[int, dict[str, list[int]]]
    _stems_counted: bool

    def __missing__(self, key: int) -> int:
        if not self._stems_counted and self.lexicon.stems[-key - 1 if key < 0 else key]:
            self._count_stems()
            if key in self:
                return self[key]
        count = self.count
        n = count(-key - 1, TITLE) if key < 0 else count(key, TITLE) + count(key, BODY)
        self[key] = n
        return n

    def count(self, base: int, field_index: int) -> int:
        """How often a base occurs in a field."""
        stem = self.lexicon.stems[base]
        if stem:
            return len(self.stem_index(field_index).get(stem, ()))
        values = self.sorted_bases[field_index]
        return bisect_right(values, base) - bisect_left(values, base)

    def _count_stems(self) -> None:
        """Enter the counts of every watched stem found (a base: both fields; -(base + 1): title)."""
        self._stems_counted = True
        stem_bases = self.lexicon.stem_bases
        for stem, positions in self.stem_index(BODY).items():
            self[stem_bases[stem]] = len(positions)
        for stem, positions in self.stem_index(TITLE).items():
            base = stem_bases[stem]
            self[-(base + 1)] = len(positions)
            self[base] = self.get(base, 0) + len(positions)

    def stem_index(self, field_index: int) -> dict[str, list[int]]:
        """Watched stem -> the sorted token indices where it occurs in the field."""
        index = self._stem_index.get(field_index)
        if index is None:
            index = self.fields[field_index].stem_positions(self.stems[field_index])
            self._stem_index[field_index] = index
        return index


@dataclass(slots=True)
class Hits:
    """Automaton hits in one article, per field sorted by base: (end offset, base), and the watched
    stems found in each field.

    `present` holds every base found anywhere, and -(base + 1) for those found in the title;
    `counts` how often each occurs (a base: in both fields; -(base + 1): in the title); `title_bases`
    the bases found in the title.
    """

    fields: tuple[Prepared, Prepared]
    lexicon: Lexicon
    found: tuple[list[tuple[int, int]], list[tuple[int, int]]]
    values: tuple[list[int], list[int]]
    stems: tuple[frozenset[str], frozenset[str]]
    present: set[int]
    counts: dict[int, int]
    title_bases: set[int] = field(default_factory=set)  # the bases found in the title
    _positions: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    _breaks: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts = _Counts(self.counts)
        counts.fields, counts.lexicon, counts.stems, counts.sorted_bases = (
            self.fields,
            self.lexicon,
            self.stems,
            self.values,
        )
        counts._stem_index = {}
        counts._stems_counted = False
        self.counts = counts

    def _range(self, base: int, field_index: int) -> list[tuple[int, int]]:
        values = self.values[field_index]
        return self.found[field_index][bisect_left(values, base) : bisect_right(values, base)]

    def count(self, base: int, field_index: int) -> int:
        """How often a base occurs in a field."""
        return cast(_Counts, self.counts).count(base, field_index)

    def positions(self, base: int, field_index: int) -> list[int]:
        """Sorted token indices where base `base` starts in a field."""
        stem = self.lexicon.stems[base]
        if stem:
            return cast(_Counts, self.counts).stem_index(field_index).get(stem, _NONE)
        cached = self._positions.get((base, field_index))
        if cached is None:
            shift = 2 - self.lexicon.lengths[base]
            token_at = self.fields[field_index].token_at
            cached = sorted({token_at(end + shift) for end, _ in self._range(base, field_index)})
            self._positions[(base, field_index)] = cached
        return cached

    def sentence_of(self, field_index: int, token: int) -> int:
        """The sentence number of a token (sentences are separated by 2+ spaces in the stream)."""
        breaks = self._breaks.get(field_index)
        prepared = self.fields[field_index]
        if breaks is None:
            breaks = [m.start() for m in _SENTENCE_GAP.finditer(prepared.stream, 1, len(prepared.stream) - 1)]
            self._breaks[field_index] = breaks
        return bisect_right(breaks, prepared.starts[token])


def near_spans(left: list[Span], right: list[Span], distance: int, first_only: bool = False) -> list[Span]:
    """Covering spans of every (left, right) pair that does not overlap and is at most `distance` apart.

    Distance counts words: adjacent words are 1 apart. Either order; same field only.
    """
    out: list[Span] = []
    if not left or not right:
        return out
    ordered = sorted(right)
    starts = [(f, s) for f, s, _ in ordered]
    longest = max(e - s for _, s, e in ordered)
    for f, s, e in left:
        lo = bisect_left(starts, (f, s - distance - longest))
        hi = bisect_right(starts, (f, e + distance))
        for i in range(lo, hi):
            rf, rs, re_ = ordered[i]
            if rf != f:
                continue
            if re_ < s:
                gap = s - re_
            elif e < rs:
                gap = rs - e
            else:
                continue
            if gap <= distance:
                out.append((f, min(s, rs), max(e, re_)))
                if first_only:
                    return out
    return out


def slop_spans(
    occurrences: list[list[int]], slop: int, field_index: int, hits: Hits, first_only: bool = False
) -> list[Span]:
    """Lucene's sloppy phrase: word i at position p_i (all distinct, one sentence) with
    max(p_i - i) - min(p_i - i) <= slop. `occurrences[i]` are the sorted positions of word i."""
    if any(not o for o in occurrences):
        return []
    adjusted = sorted({p - i for i, occ in enumerate(occurrences) for p in occ})
    out: set[Span] = set()
    for low in adjusted:
        choices = []
        for i, occ in enumerate(occurrences):
            a = bisect_left(occ, low + i)
            b = bisect_right(occ, low + i + slop)
            if a == b:
                break
            choices.append(occ[a:b])
        else:
            for combo in _distinct_combinations(choices, 0, ()):
                if len({hits.sentence_of(field_index, p) for p in combo}) == 1:
                    out.add((field_index, min(combo), max(combo)))
                    if first_only:
                        return list(out)
                    break  # one per window is enough for evidence
    return sorted(out)


def _distinct_combinations(
    choices: list[list[int]], i: int, taken: tuple[int, ...]
) -> Iterator[tuple[int, ...]]:
    if i == len(choices):
        yield taken
        return
    for p in choices[i]:
        if p not in taken:
            yield from _distinct_combinations(choices, i + 1, (*taken, p))

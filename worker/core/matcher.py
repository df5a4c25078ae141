"""Match articles against a watchlist: one automaton pass for all topics, then only candidate topics.

In the spirit of Lucene Monitor's presearcher:

1. Compile: every distinct exact term of every topic is one key of ONE pyahocorasick automaton,
   matched against the token stream of a prepared text (analysis.py): an exact word or phrase is
   " a b " (word boundaries hold; two spaces between sentences, so a phrase never crosses one), a
   prefix is " troop". A stemmed word is its stem, found by intersecting the watched stems with the
   stems of the text's distinct tokens (no per-token work). Terms with the same key share an id
   ("base"). Each topic gets a minimal anchor set: a term gives itself, OR the union of
   its children, AND and NEAR the child whose anchors are rarest (weighed by how many topics use a
   term and by its length, as Lucene's TermWeightor does), NOT nothing. Every matching article holds
   an anchor of the topic (the parser refuses queries without a positive part), so a topic none of
   whose anchors occurred is never looked at. Each query becomes closures over the set of bases
   present (C-level set operations for AND/OR/NOT of terms; positions only for NEAR and ~n).
2. Match: match() first asks the gate (gate.py) whether any topic can match the article's folded text
   at all, and returns no matches for the articles it turns away, unprepared; match_prepared() is
   the rest. The automaton runs over each field's token stream; hits are sorted and turned into the set of
   bases present without a Python loop; candidates come from the anchors present; only they are
   evaluated. A match's score is computed at once (min_score needs it); its evidence (clauses, terms,
   offsets in the original text, a sentence snippet) when first read.

Score (0.4 to 1.0, compared with a topic's min_score): 0.4 for matching at all, + 0.2 if a positive
term (one not under NOT) occurs in the title, + up to 0.2 for distinct positive terms found beyond
the first (full at 4), + up to 0.2 for their occurrences beyond the first (full at 5).
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

import ahocorasick

from worker.core.analysis import Prepared, prepare, stem
from worker.core.article import Article
from worker.core.bulk import paused_gc
from worker.core.explain import Explanation, Item, Result, Walker, describe, missing
from worker.core.gate import Gate, GateBudget
from worker.core.hits import BODY, FIELD_NAMES, TITLE, Hits, Lexicon, Span, near_spans, slop_spans
from worker.core.query.tree import And, Near, Node, Not, Or, Term, terms
from worker.core.watchlist import Example, Topic, Watchlist

MAX_EVIDENCE = 20
STEM_MARK = "\x01"  # starts the key of a stemmed word (never a key of the automaton)
FREEZE_AT = 1000  # topics
SNIPPET_CHARS = 320

Check = Callable[[Hits], bool]
# A topic check evaluated inline: (required ids, a group of ids one of which must be present or None,
# excluded ids); see Matcher._topic_check.
Plain = tuple[tuple[int, ...], tuple[int, ...] | None, tuple[int, ...]]
# The score's view of a topic: its positive presence ids, or (those ids, their bases) with title: terms.
Scoring = tuple[int, ...] | tuple[tuple[int, ...], tuple[int, ...]]
Spans = Callable[[Hits], list[Span]]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One occurrence of a term that made a topic match."""

    clause: str  # the clause of the query: the alias reference (@nk) or the term as written
    term: str  # the term (for an alias: which of its terms)
    field: str  # "title" or "body"
    start: int  # character offsets in the original title or text
    end: int
    text: str  # the matched original text

    def to_json(self) -> dict[str, Any]:
        return {
            "clause": self.clause,
            "term": self.term,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "text": self.text,
        }


class Match:
    """A topic that matched an article. Evidence and snippet are worked out on first use (an alert
    needs them, a count of matches does not), from the article's hits kept until then: a match holds
    (matcher, topic index, hits), not a closure, so that building one costs one small object."""

    __slots__ = ("_details", "_hits", "_index", "_matcher", "score", "topic_id", "topic_name")

    def __init__(
        self,
        topic_id: str,
        topic_name: str,
        score: float,
        evidence: tuple[Evidence, ...] = (),
        snippet: str = "",
        source: tuple[Matcher, int, Hits] | None = None,
    ) -> None:
        self.topic_id = topic_id
        self.topic_name = topic_name
        self.score = score
        if source is None:
            self._matcher: Matcher | None = None
            self._details: tuple[tuple[Evidence, ...], str] | None = (evidence, snippet)
        else:
            self._matcher, self._index, self._hits = source
            self._details = None

    def _get(self) -> tuple[tuple[Evidence, ...], str]:
        if self._details is None:
            assert self._matcher is not None
            self._details = self._matcher._details(self._index, self._hits)
            self._matcher = None
            del self._hits
        return self._details

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """The occurrences that made it match (clause, term, field, offsets in the original, text)."""
        return self._get()[0]

    @property
    def snippet(self) -> str:
        """The sentence of the first body evidence (or the title), from the original text."""
        return self._get()[1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Match(topic_id={self.topic_id!r}, score={self.score}, evidence={len(self.evidence)} items)"

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic_id,
            "name": self.topic_name,
            "score": self.score,
            "snippet": self.snippet,
            "evidence": [e.to_json() for e in self.evidence],
        }


class _Found(Match):
    """A Match as match_prepared builds it, by a constructor without choices (dozens per article)."""

    __slots__ = ()

    def __init__(
        self, topic_id: str, topic_name: str, score: float, matcher: Matcher, index: int, hits: Hits
    ):
        self.topic_id = topic_id
        self.topic_name = topic_name
        self.score = score
        self._matcher = matcher
        self._index = index
        self._hits = hits
        self._details = None


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """A watchlist example that did not come out as declared."""

    topic_id: str
    expected: str  # "match" or "no_match"
    example: Example
    explanation: str

    def __str__(self) -> str:
        text = self.example.text if len(self.example.text) <= 80 else self.example.text[:77] + "..."
        verb = "should match but does not" if self.expected == "match" else "should not match but does"
        return f"topic {self.topic_id!r}: example {verb}: {text!r}"


class Matcher:
    """A compiled watchlist. `match(article)` returns the topics it matches, with evidence."""

    def __init__(self, watchlist: Watchlist | Iterable[Topic]) -> None:
        with paused_gc():
            self._compile(watchlist)
        if len(self.topics) >= FREEZE_AT:
            # A big compiled watchlist lives as long as the process: move it out of the cyclic GC's
            # sight, or every full collection during matching re-scans it (2x slower at 10,000 topics).
            gc.freeze()

    def _compile(self, watchlist: Watchlist | Iterable[Topic]) -> None:
        self.topics: tuple[Topic, ...] = tuple(watchlist)
        self._bases: dict[str, int] = {}
        self._lexicon = Lexicon()
        self._sizes: list[int] = []  # characters of a term's form: longer is rarer
        self._user_counts: list[int] = []  # base -> how many topics use it (anchor choice)
        self._users: dict[int, tuple[int, ...]] | None = None  # base -> topics using it (for explain)
        # (kind, words, prefix) -> base, while compiling (terms are repeated across topics)
        self._base_cache: dict[tuple[str, tuple[str, ...], bool], int] = {}
        self._shared: dict[frozenset[int], frozenset[int]] = {}  # one object per distinct id set
        self._shared_tuples: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._compiling = True
        last_user: list[int] = []
        for index, topic in enumerate(self.topics):
            for term in _all_terms(topic.tree):
                for base in self._term_bases(term):
                    while len(last_user) <= base:
                        last_user.append(-1)
                        self._user_counts.append(0)
                    if last_user[base] != index:
                        last_user[base] = index
                        self._user_counts[base] += 1
        del last_user
        self._automaton = self._build_automaton()
        self._checks: list[Check | Plain] = []
        self._scoring: list[Scoring] = []
        anchors: dict[int, list[int]] = {}
        for index, topic in enumerate(self.topics):
            self._checks.append(self._topic_check(topic.tree))
            self._scoring.append(self._score_sets(topic.tree))
            for base in self._anchors(topic.tree):
                anchors.setdefault(base, []).append(index)
        self._anchor_topics = {v: tuple(t) for v, t in anchors.items()}
        self._gate = Gate(topic.tree for topic in self.topics)
        self._gate_budget = GateBudget()
        self._min_scores = [t.min_score for t in self.topics]
        self._ranks = [0] * len(self.topics)
        for rank, index in enumerate(sorted(range(len(self.topics)), key=lambda i: self.topics[i].id)):
            self._ranks[index] = rank
        self._by_id = {t.id: i for i, t in enumerate(self.topics)}
        self._base_cache.clear()
        self._shared.clear()
        self._shared_tuples.clear()
        self._compiling = False

    # --- compile ----------------------------------------------------------------------------------

    def _base(self, term: Term) -> int:
        """The id of a term's automaton key (a slop phrase has none: see _word_bases).

        An exact word or phrase is " a b " and a prefix " a b" (found in the token stream); a stemmed
        word is STEM_MARK + its stem (found among the article's stems, not by the automaton). Terms
        with the same key share an id.
        """
        cache_key = (term.kind, term.words, term.prefix)
        known = self._base_cache.get(cache_key)
        if known is not None:
            return known
        if term.kind == "word":
            key = STEM_MARK + stem(term.words[0])
        else:
            key = " " + " ".join(term.words) + ("" if term.prefix else " ")
        base = self._bases.get(key)
        if base is None:
            base = len(self._sizes)
            self._bases[key] = base
            self._sizes.append(len(key.strip(" " + STEM_MARK)))
            self._lexicon.lengths.append(len(key))
            self._lexicon.stems.append(key[1:] if term.kind == "word" else "")
        if self._compiling:
            self._base_cache[cache_key] = base
        return base

    def _word_bases(self, term: Term) -> list[int]:
        """A slop phrase's words, each an exact word (the last a prefix if the phrase ends with *)."""
        last = len(term.words) - 1
        return [
            self._base(Term(kind="phrase", words=(w,), prefix=term.prefix and i == last, text=w))
            for i, w in enumerate(term.words)
        ]

    def _term_bases(self, term: Term) -> list[int]:
        return self._word_bases(term) if term.slop is not None else [self._base(term)]

    def _build_automaton(self) -> ahocorasick.Automaton:
        automaton = ahocorasick.Automaton()
        self._stem_bases = self._lexicon.stem_bases
        for key, base in self._bases.items():
            if key[0] == STEM_MARK:
                self._stem_bases[key[1:]] = base
            else:
                automaton.add_word(key, base)
        self._stem_keys = frozenset(self._stem_bases)
        if len(automaton):
            automaton.make_automaton()
        return automaton

    def _weight(self, base: int) -> float:
        """How likely a term occurs in an article, by proxy: topics that use it, and shortness."""
        counts = self._user_counts
        return (1 + (counts[base] if base < len(counts) else 0)) / self._sizes[base]

    def _anchors(self, node: Node) -> frozenset[int]:
        if isinstance(node, Term):
            bases = self._term_bases(node)
            return frozenset({min(bases, key=self._weight)})
        if isinstance(node, Or):
            return frozenset().union(*(self._anchors(c) for c in node.children))
        if isinstance(node, Near):
            options = [self._anchors(node.left), self._anchors(node.right)]
        elif isinstance(node, And):
            options = [self._anchors(c) for c in node.children if not isinstance(c, Not) and _positive(c)]
        else:
            return frozenset()
        return min(options, key=lambda bases: sum(self._weight(b) for b in bases))

    def _presence_id(self, term: Term) -> int:
        base = self._base(term)
        return -(base + 1) if term.field == "title" else base

    def _ids(self, ids: Iterable[int]) -> frozenset[int]:
        """A frozenset of presence ids, one shared object per distinct set (less memory, warmer caches)."""
        key = frozenset(ids)
        return self._shared.setdefault(key, key)

    def _tuple(self, ids: Iterable[int]) -> tuple[int, ...]:
        """A sorted tuple of ids, one shared object per distinct tuple (a tuple is half a frozenset's
        size, and set methods take it as well)."""
        key = tuple(sorted(set(ids)))
        return self._shared_tuples.setdefault(key, key)

    def _topic_check(self, node: Node) -> Check | Plain:
        """A topic's check: for the usual shapes (a term; an AND of terms, at most one OR group of
        terms and excluded terms) a Plain tuple that match_prepared evaluates inline, else a closure."""
        if isinstance(node, Term) and node.slop is None:
            return (self._tuple((self._presence_id(node),)), None, ())
        if isinstance(node, And):
            required: list[int] = []
            excluded: list[int] = []
            groups: list[tuple[int, ...]] = []
            for child in node.children:
                if isinstance(child, Term) and child.slop is None:
                    required.append(self._presence_id(child))
                elif isinstance(child, Not) and _simple_terms(child.child):
                    excluded.extend(self._presence_id(t) for t in _all_terms(child.child))
                elif isinstance(child, Or) and _simple_terms(child):
                    groups.append(self._tuple(self._presence_id(t) for t in _all_terms(child)))
                else:
                    break
            else:
                if len(groups) <= 1:
                    return (self._tuple(required), groups[0] if groups else None, self._tuple(excluded))
        return self._check(node)

    def _check(self, node: Node) -> Check:
        """A closure deciding the node from the hits: C-level set operations on the terms present,
        positions only for NEAR and ~n. An AND is flattened into one closure: required terms, groups
        of alternatives (an OR of terms), excluded terms, and only then nested checks."""
        if isinstance(node, Term):
            if node.slop is not None:
                spans = self._spans(node)
                return lambda h: bool(spans(h))
            pid = self._presence_id(node)
            return lambda h: pid in h.present
        if isinstance(node, Not):
            inner = self._check(node.child)
            return lambda h: not inner(h)
        if isinstance(node, Near):
            if _simple_terms(node.left) and _simple_terms(node.right):
                return self._near_check(node)
            left, right = self._spans(node.left), self._spans(node.right)
            distance = node.distance
            left_present, right_present = self._check(node.left), self._check(node.right)
            return lambda h: (
                left_present(h) and right_present(h) and bool(near_spans(left(h), right(h), distance, True))
            )
        if isinstance(node, Or):
            ids = self._ids(
                self._presence_id(c) for c in node.children if isinstance(c, Term) and c.slop is None
            )
            rest = tuple(
                self._check(c) for c in node.children if not (isinstance(c, Term) and c.slop is None)
            )
            if not rest:
                return lambda h: not ids.isdisjoint(h.present)
            return lambda h: not ids.isdisjoint(h.present) or any(f(h) for f in rest)
        required: set[int] = set()
        excluded: set[int] = set()
        groups: list[frozenset[int]] = []
        nested: list[Check] = []
        for child in node.children:
            if isinstance(child, Term) and child.slop is None:
                required.add(self._presence_id(child))
            elif isinstance(child, Not) and _simple_terms(child.child):
                excluded.update(self._presence_id(t) for t in _all_terms(child.child))
            elif isinstance(child, Or) and _simple_terms(child):
                groups.append(self._ids(self._presence_id(t) for t in _all_terms(child)))
            else:
                nested.append(self._check(child))
        return _and_check(self._ids(required), self._ids(excluded), tuple(groups), tuple(nested))

    def _near_check(self, node: Near) -> Check:
        """NEAR between two terms or OR groups (no slop): for each left occurrence, a bisection in the
        sorted positions of each right term; no span lists."""
        sides = []
        for side in (node.left, node.right):
            side_terms = _all_terms(side)
            sides.append(
                (
                    self._ids(self._presence_id(t) for t in side_terms),
                    tuple(
                        (base, len(t.words) - 1, -(base + 1), None if t.field == "title" else base)
                        for t in side_terms
                        for base in (self._base(t),)
                    ),
                )
            )
        (left_ids, left), (right_ids, right) = sides
        distance = node.distance

        def near(h: Hits) -> bool:
            present = h.present
            if left_ids.isdisjoint(present) or right_ids.isdisjoint(present):
                return False
            positions = h.positions
            # A term is looked for in the title if found there (its -(base + 1) is present), in the body
            # if found anywhere and not a title: term (None is never present).
            for field in (TITLE, BODY):
                for l_base, l_width, l_in_title, l_anywhere in left:
                    if (l_in_title if field == TITLE else l_anywhere) not in present:
                        continue
                    l_positions = positions(l_base, field)
                    if not l_positions:
                        continue
                    for r_base, r_width, r_in_title, r_anywhere in right:
                        if (r_in_title if field == TITLE else r_anywhere) not in present:
                            continue
                        r_positions = positions(r_base, field)
                        if r_positions and _close(l_positions, l_width, r_positions, r_width, distance):
                            return True
            return False

        return near

    def _spans(self, node: Node) -> Spans:
        if isinstance(node, Term):
            fields = (TITLE,) if node.field == "title" else (TITLE, BODY)
            if node.slop is not None:
                words = self._word_bases(node)
                slop = node.slop

                def sloppy(h: Hits) -> list[Span]:
                    out: list[Span] = []
                    for f in fields:
                        out.extend(
                            slop_spans([h.positions(b, f) for b in words], slop, f, h, first_only=False)
                        )
                    return out

                return sloppy
            base, width = self._base(node), len(node.words) - 1
            return lambda h: [(f, p, p + width) for f in fields for p in h.positions(base, f)]
        if isinstance(node, Or):
            parts = [self._spans(c) for c in node.children]
            return lambda h: [s for part in parts for s in part(h)]
        if isinstance(node, Near):
            left, right, distance = self._spans(node.left), self._spans(node.right), node.distance
            return lambda h: near_spans(left(h), right(h), distance)
        raise AssertionError("the parser allows only terms, OR and NEAR under NEAR")

    # --- match ------------------------------------------------------------------------------------

    def _hits(self, article: Article) -> Hits:
        return self._hits_prepared((prepare(article.title or ""), prepare(article.text or "")))

    def _hits_prepared(self, fields: tuple[Prepared, Prepared]) -> Hits:
        """One automaton pass over each field's token stream, one set intersection for the stems."""
        automaton = self._automaton if len(self._automaton) else None
        found: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        values: tuple[list[int], list[int]] = ([], [])
        stems: list[frozenset[str]] = [frozenset(), frozenset()]
        present: set[int] = set()
        title_bases: set[int] = set()
        counts: Counter[int] = Counter()
        stem_keys, stem_bases = self._stem_keys, self._stem_bases
        for index, prepared in enumerate(fields):
            if not prepared.distinct:
                continue
            if automaton is not None:
                hits = found[index]
                hits.extend(automaton.iter(prepared.stream))
                if hits:
                    hits.sort(key=_second)
                    keys = values[index]
                    keys.extend(map(_second, hits))
                    counts.update(keys)
                    if index == TITLE:
                        counts.update({-(k + 1): n for k, n in Counter(keys).items()})
                        title_bases.update(keys)
            watched = stem_keys.intersection(prepared.stems)
            if watched:
                stems[index] = watched
                bases = list(map(stem_bases.__getitem__, watched))
                present.update(bases)
                if index == TITLE:
                    present.update([-(b + 1) for b in bases])
                    title_bases.update(bases)
        present.update(counts)
        return Hits(fields, self._lexicon, found, values, (stems[0], stems[1]), present, counts, title_bases)

    def match(self, article: Article) -> list[Match]:
        """The topics the article matches (at or above their min_score), best score first. The gate
        (GateBudget permitting) spares preparing an article that no topic can match."""
        title, text = article.title or "", article.text or ""
        budget = self._gate_budget
        if budget.ask():
            admitted = self._gate.admits(title, text)
            budget.record(admitted)
            if not admitted:
                return []
        return self.match_prepared(prepare(title), prepare(text))

    def match_prepared(self, title: Prepared, body: Prepared) -> list[Match]:
        """match() on an article already prepared by analysis.prepare (title, body)."""
        hits = self._hits_prepared((title, body))
        candidates: set[int] = set()
        for anchored in filter(None, map(self._anchor_topics.get, hits.present)):
            candidates.update(anchored)
        checks, scoring, min_scores, ranks = self._checks, self._scoring, self._min_scores, self._ranks
        present, counts, in_title = hits.present, hits.counts, hits.title_bases
        issuperset, isdisjoint = present.issuperset, present.isdisjoint
        found = []
        for index in candidates:
            check = checks[index]
            if check.__class__ is tuple:
                required, group, excluded = check
                if not issuperset(required) or (group is not None and isdisjoint(group)):
                    continue
                if excluded and not isdisjoint(excluded):
                    continue
            elif not check(hits):  # type: ignore[operator]
                continue
            score = _score_of(scoring[index], present, in_title, counts)
            if score >= min_scores[index]:
                found.append((-score, ranks[index], index))
        found.sort()  # best score first, then by topic id (ranks follow the ids' order)
        topics = self.topics
        out: list[Match] = []
        for negated, _, index in found:
            topic = topics[index]
            out.append(_Found(topic.id, topic.name, -negated, self, index, hits))
        return out

    def _walker(self, hits: Hits) -> Walker:
        return Walker(hits, self._term_base, self._word_bases)

    def _term_base(self, term: Term) -> int:
        return self._base(term)

    def _details(self, index: int, hits: Hits) -> tuple[tuple[Evidence, ...], str]:
        """A match's evidence and snippet (see Match)."""
        items = _unique(self._walker(hits).walk(self.topics[index].tree).items)
        return _evidence_items(items, hits.fields), _snippet(items, hits.fields)

    def _score(self, index: int, hits: Hits) -> float:
        return _score_of(self._scoring[index], hits.present, hits.title_bases, hits.counts)

    def _score_sets(self, node: Node) -> Scoring:
        """The presence ids of the distinct terms outside any NOT (a ~n phrase: its words), and their
        bases (a positive term found in the title raises the score) when these differ (title:)."""
        pairs = {
            (base, term.field == "title")
            for term, negated in terms(node)
            if not negated
            for base in self._term_bases(term)
        }
        positive = self._tuple(-(base + 1) if title_only else base for base, title_only in pairs)
        bases = self._tuple(base for base, _ in pairs)
        return positive if bases == positive else (positive, bases)

    def explain(self, article: Article) -> list[Explanation]:
        """For every topic that matched, the clauses that fired with their words; for a near miss (some
        positive term occurred), what was absent or which NOT excluded it. Matches first."""
        hits = self._hits(article)
        users = self._term_users()
        touched: set[int] = set()
        for base in hits.present:
            touched.update(users.get(base, ()))
        walker = self._walker(hits)
        out = []
        for index in sorted(touched):
            topic = self.topics[index]
            result = walker.walk(topic.tree)
            if not result.ok and not _any_positive_found(result):
                continue
            lines = tuple(describe(result, hits.fields))
            if result.ok:
                score = self._score(index, hits)
                if score >= topic.min_score:
                    out.append(Explanation(topic.id, topic.name, True, score, lines, ()))
                else:
                    reason = f"score {score:.2f} is below the topic's min_score {topic.min_score:.2f}"
                    out.append(Explanation(topic.id, topic.name, False, score, lines, (reason,)))
            else:
                out.append(Explanation(topic.id, topic.name, False, None, lines, tuple(missing(result))))
        out.sort(key=lambda e: (not e.matched, e.topic_id))
        return out

    def _term_users(self) -> dict[int, tuple[int, ...]]:
        """base -> the topics that use it (built on first use: only explanations need it)."""
        if self._users is None:
            users: dict[int, set[int]] = {}
            for index, topic in enumerate(self.topics):
                for term in _all_terms(topic.tree):
                    for base in self._term_bases(term):
                        users.setdefault(base, set()).add(index)
            self._users = {b: tuple(sorted(t)) for b, t in users.items()}
        return self._users

    @property
    def gate(self) -> Gate:
        """The gate that match() asks before preparing an article (see gate.py)."""
        return self._gate

    def topic_index(self, topic_id: str) -> int:
        return self._by_id[topic_id]

    @property
    def automaton(self) -> ahocorasick.Automaton:
        """The compiled automaton (benchmarks compare the matcher with one pass of it)."""
        return self._automaton


def check_examples(watchlist: Watchlist, matcher: Matcher | None = None) -> list[ExampleFailure]:
    """Run every topic's examples; return those that do not come out as declared."""
    matcher = matcher or Matcher(watchlist)
    failures = []
    for topic in watchlist.topics:
        for expected, examples in (("match", topic.examples_match), ("no_match", topic.examples_no_match)):
            for example in examples:
                article = Article(id=f"example:{topic.id}", url="", title=example.title, text=example.text)
                matched = any(m.topic_id == topic.id for m in matcher.match(article))
                if matched != (expected == "match"):
                    explained = [e for e in matcher.explain(article) if e.topic_id == topic.id]
                    text = explained[0].render() if explained else f"{topic.id}: none of its terms occur"
                    failures.append(ExampleFailure(topic.id, expected, example, text))
    return failures


# --- helpers -------------------------------------------------------------------------------------


_second = itemgetter(1)


def _all_terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return _all_terms(node.child)
    if isinstance(node, Near):
        return _all_terms(node.left) + _all_terms(node.right)
    return [t for c in node.children for t in _all_terms(c)]


def _score_table() -> tuple[tuple[tuple[float, ...], ...], ...]:
    """[in title][distinct terms, capped at 4][occurrences, capped at 5] -> score (module docstring)."""

    def score(in_title: bool, distinct: int, occurrences: int) -> float:
        raw = (
            0.4 + 0.2 * in_title + 0.2 * min(1.0, (distinct - 1) / 3) + 0.2 * min(1.0, (occurrences - 1) / 4)
        )
        return round(min(1.0, raw), 3)

    return tuple(
        tuple(tuple(score(in_title, distinct, occ) for occ in range(6)) for distinct in range(5))
        for in_title in (False, True)
    )


_SCORES = _score_table()


def _score_of(scoring: Scoring, present: set[int], title_bases: set[int], counts: dict[int, int]) -> float:
    """See the module docstring: from the positive (non-negated) terms of the topic found.

    scoring is the positive terms' presence ids (a base, or -(base + 1) when title-only), whose counts
    cover the fields they may occur in; with a title-only term, (those ids, their bases). In the title
    means one of the bases is among the bases found in the title."""
    if scoring and scoring[0].__class__ is tuple:
        positive, bases = cast(tuple[tuple[int, ...], tuple[int, ...]], scoring)
    else:
        positive = bases = cast(tuple[int, ...], scoring)
    found = present.intersection(positive)
    distinct = len(found)
    if not distinct:
        return 0.4
    # Both parts of the score are full from 4 distinct terms and 5 occurrences: no need to count more.
    occurrences = 5 if distinct >= 5 else min(5, sum(map(counts.__getitem__, found)))
    in_title = bool(title_bases) and not title_bases.isdisjoint(bases)
    return _SCORES[in_title][min(distinct, 4)][occurrences]


def _and_check(
    required: frozenset[int],
    excluded: frozenset[int],
    groups: tuple[frozenset[int], ...],
    nested: tuple[Check, ...],
) -> Check:
    """One closure for an AND, specialised for the usual shapes (fewer calls per candidate)."""
    if not nested and len(groups) == 1:
        group = groups[0]
        if not excluded:
            return lambda h: required <= h.present and not group.isdisjoint(h.present)
        return lambda h: (
            required <= h.present and not group.isdisjoint(h.present) and excluded.isdisjoint(h.present)
        )
    if not nested and not groups:
        return lambda h: required <= h.present and excluded.isdisjoint(h.present)

    def check(h: Hits) -> bool:
        present = h.present
        if not required <= present or not excluded.isdisjoint(present):
            return False
        for group in groups:
            if group.isdisjoint(present):
                return False
        return all(f(h) for f in nested)

    return check


def _close(left: list[int], left_width: int, right: list[int], right_width: int, distance: int) -> bool:
    """Is a left occurrence (p .. p + left_width) at most `distance` words from a right one, without
    overlapping? Both position lists are sorted; one bisection per left occurrence."""
    end = len(right)
    for p in left:
        i = bisect_left(right, p - distance - right_width)
        last = p + left_width + distance
        while i < end:
            q = right[i]
            if q > last:
                break
            if q + right_width < p or q > p + left_width:
                return True
            i += 1
    return False


def _simple_terms(node: Node) -> bool:
    """A term, or an OR of terms, without slop: decidable from the presence set alone."""
    if isinstance(node, Term):
        return node.slop is None
    return isinstance(node, Or) and all(isinstance(c, Term) and c.slop is None for c in node.children)


def _positive(node: Node) -> bool:
    from worker.core.query.tree import is_positive

    return is_positive(node)


def _any_positive_found(result: Result) -> bool:
    if isinstance(result.node, Not):
        return False
    if isinstance(result.node, Term):
        return result.ok
    return any(_any_positive_found(c) for c in result.children)


def _unique(items: list[Item]) -> list[Item]:
    seen: set[tuple[str, int, int, int]] = set()
    out = []
    for item in sorted(items, key=lambda i: (i[1], i[2], i[3])):
        key = (item[0].text, item[1], item[2], item[3])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _evidence_items(items: list[Item], fields: tuple[Prepared, Prepared]) -> tuple[Evidence, ...]:
    out = []
    for term, f, first, last in items[:MAX_EVIDENCE]:
        prepared = fields[f]
        start, end = prepared.span(first)[0], prepared.span(last)[1]
        out.append(Evidence(term.clause, term.text, FIELD_NAMES[f], start, end, prepared.original[start:end]))
    return tuple(out)


def _snippet(items: list[Item], fields: tuple[Prepared, Prepared]) -> str:
    body = [i for i in items if i[1] == BODY]
    if not body and not items:
        return ""
    prepared = fields[BODY if body else items[0][1]]
    # The sentence with the most distinct evidence terms tells best why the topic fired (the first hit
    # alone is often a dateline or a headline-like fragment); ties go to the earliest sentence.
    best: tuple[int, int, int, int] | None = None  # (-distinct terms, lo, hi, start)
    by_sentence: dict[tuple[int, int], tuple[set[str], int]] = {}
    for item in body or items[:1]:
        item_start = prepared.span(item[2])[0]
        bounds = prepared.sentence_bounds(item_start)
        terms, first = by_sentence.setdefault(bounds, (set(), item_start))
        terms.add(item[0].text)
    for (s_lo, s_hi), (terms, first) in by_sentence.items():
        candidate = (-len(terms), s_lo, s_hi, first)
        if best is None or candidate < best:
            best = candidate
    assert best is not None
    _, lo, hi, start = best
    text = prepared.original[lo:hi]
    if len(text) > SNIPPET_CHARS:
        middle = start - lo
        cut = max(0, min(len(text) - SNIPPET_CHARS, middle - SNIPPET_CHARS // 3))
        text = ("…" if cut else "") + text[cut : cut + SNIPPET_CHARS] + "…"
    return " ".join(text.split())

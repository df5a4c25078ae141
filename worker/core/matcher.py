"""Match articles against a watchlist: one automaton pass for all topics, then only candidate topics.

In the spirit of Lucene Monitor's presearcher:

1. Compile: every distinct term of every topic becomes keys of ONE pyahocorasick automaton over the
   prepared "stream" of analysis.py (" tok tok  tok ", two spaces between sentences):
   an exact word or phrase is " a b " (so word boundaries hold and a phrase never crosses a
   sentence), a prefix is " troop", a stemmed word is its stem's surface prefix (" armi" -> " arm")
   whose hits are verified by stemming the hit token (cached).
   Each topic gets a minimal anchor set: a term gives itself, OR the union of its children, AND and
   NEAR the child whose anchors are rarest (weighed by how many topics use a term and by its length,
   as Lucene's TermWeightor does), NOT nothing. Every matching article contains an anchor of the topic
   (the parser refuses queries without a positive part), so a topic whose anchors did not occur is
   skipped without a look. Each topic's query is compiled into closures over the set of terms present
   (set operations in C for the common AND/OR/NOT-of-terms shapes; positions only for NEAR and ~n).
2. Match: prepare title and body, one automaton pass over each, collect candidates from the anchors
   hit, evaluate only those. Evidence (terms, offsets in the original text, a sentence snippet) is
   computed for the matched topics only.

Score (0.4 to 1.0, shown with a match and compared with a topic's min_score):
0.4 for matching at all, + 0.2 if a term occurs in the title, + up to 0.2 for distinct terms
beyond the first (full at 4), + up to 0.2 for occurrences beyond the first (full at 5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

from worker.core.analysis import _STEM_CACHE, Prepared, prepare, stem, stem_surface_prefixes
from worker.core.article import Article
from worker.core.explain import Explanation, Item, Result, Walker, describe, missing
from worker.core.hits import BODY, FIELD_NAMES, TITLE, Hits, Span, near_spans, slop_spans
from worker.core.query.tree import And, Near, Node, Not, Or, Term
from worker.core.watchlist import Example, Topic, Watchlist

MAX_EVIDENCE = 20
SNIPPET_CHARS = 320

Check = Callable[[Hits], bool]
Spans = Callable[[Hits], list[Span]]
BaseKey = tuple[str, tuple[str, ...], bool]


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


@dataclass(frozen=True, slots=True)
class Match:
    topic_id: str
    topic_name: str
    score: float
    evidence: tuple[Evidence, ...]
    snippet: str

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic_id,
            "name": self.topic_name,
            "score": self.score,
            "snippet": self.snippet,
            "evidence": [e.to_json() for e in self.evidence],
        }


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
        self.topics: tuple[Topic, ...] = tuple(watchlist)
        self._bases: dict[BaseKey, int] = {}
        self._base_terms: list[Term] = []
        self._users: dict[int, set[int]] = {}
        for index, topic in enumerate(self.topics):
            for term in _all_terms(topic.tree):
                for base in self._term_bases(term):
                    self._users.setdefault(base, set()).add(index)
        self._automaton = self._build_automaton()
        self._checks: list[Check] = []
        anchors: dict[int, list[int]] = {}
        for index, topic in enumerate(self.topics):
            self._checks.append(self._check(topic.tree))
            for base in self._anchors(topic.tree):
                anchors.setdefault(base, []).append(index)
        self._anchor_topics = {b: tuple(t) for b, t in anchors.items()}
        self._by_id = {t.id: i for i, t in enumerate(self.topics)}

    # --- compile ----------------------------------------------------------------------------------

    def _base(self, term: Term) -> int:
        """The id of a term's automaton form (a slop phrase has none: see _word_bases)."""
        key: BaseKey = (term.kind, term.words, term.prefix)
        base = self._bases.get(key)
        if base is None:
            base = len(self._base_terms)
            self._bases[key] = base
            self._base_terms.append(
                Term(kind=term.kind, words=term.words, prefix=term.prefix, text=term.text)
            )
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
        keys: dict[str, list[tuple[int, str | None, int]]] = {}
        for base, term in enumerate(self._base_terms):
            if term.kind == "word":
                word = term.words[0]
                for prefix in stem_surface_prefixes(word):
                    key = " " + prefix
                    keys.setdefault(key, []).append((base, stem(word), len(key)))
            else:
                key = " " + " ".join(term.words) + ("" if term.prefix else " ")
                keys.setdefault(key, []).append((base, None, len(key)))
        automaton = ahocorasick.Automaton()
        for key, entries in keys.items():
            automaton.add_word(key, tuple(entries))
        if keys:
            automaton.make_automaton()
        return automaton

    def _weight(self, base: int) -> float:
        """How likely a term occurs in an article, by proxy: topics that use it, and shortness."""
        term = self._base_terms[base]
        length = sum(len(w) for w in term.words) + len(term.words) - 1
        return (1 + len(self._users.get(base, ()))) / length

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

    def _check(self, node: Node) -> Check:
        """A closure deciding the node from the hits (presence sets first, positions only if needed)."""
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
            left, right = self._spans(node.left), self._spans(node.right)
            distance = node.distance
            left_present, right_present = self._check(node.left), self._check(node.right)
            return lambda h: (
                left_present(h) and right_present(h) and bool(near_spans(left(h), right(h), distance, True))
            )
        simple = [c for c in node.children if isinstance(c, Term) and c.slop is None]
        rest = [self._check(c) for c in node.children if not (isinstance(c, Term) and c.slop is None)]
        ids = frozenset(self._presence_id(c) for c in simple)
        if isinstance(node, Or):
            if not rest:
                return lambda h: not ids.isdisjoint(h.present)
            return lambda h: not ids.isdisjoint(h.present) or any(f(h) for f in rest)
        # AND: required terms, excluded terms (NOT of a term or of an OR of terms), then the rest.
        excluded: set[int] = set()
        others: list[Check] = []
        for child in node.children:
            if isinstance(child, Not) and _simple_terms(child.child):
                excluded.update(self._presence_id(t) for t in _all_terms(child.child))
            elif not (isinstance(child, Term) and child.slop is None):
                others.append(self._check(child))
        banned = frozenset(excluded)
        if not others:
            return lambda h: ids <= h.present and banned.isdisjoint(h.present)
        return lambda h: ids <= h.present and banned.isdisjoint(h.present) and all(f(h) for f in others)

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
        fields = (prepare(article.title or ""), prepare(article.text or ""))
        automaton = self._automaton
        raw: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})
        present: set[int] = set()
        if len(automaton):
            cache = _STEM_CACHE
            for index, prepared in enumerate(fields):
                stream = prepared.stream
                found = raw[index]
                for end, entries in automaton.iter(stream):
                    for base, wanted, length in entries:
                        start = end - length + 2
                        if wanted is not None:
                            token = stream[start : stream.find(" ", start)]
                            got = cache.get(token)
                            if got is None:
                                got = stem(token)
                            if got != wanted:
                                continue
                        occurrences = found.get(base)
                        if occurrences is None:
                            found[base] = [start]
                        else:
                            occurrences.append(start)
            present.update(raw[BODY])
            present.update(raw[TITLE])
            present.update(-(b + 1) for b in raw[TITLE])
        return Hits(fields, raw, present)

    def match(self, article: Article) -> list[Match]:
        """The topics the article matches (at or above their min_score), best score first."""
        hits = self._hits(article)
        candidates: set[int] = set()
        anchor_topics = self._anchor_topics
        for raw in hits.raw:
            for base in raw:
                topics = anchor_topics.get(base)
                if topics:
                    candidates.update(topics)
        checks = self._checks
        matches = []
        for index in sorted(candidates):
            if checks[index](hits):
                match = self._evidence(index, hits)
                if match is not None:
                    matches.append(match)
        matches.sort(key=lambda m: (-m.score, m.topic_id))
        return matches

    def _walker(self, hits: Hits) -> Walker:
        return Walker(hits, self._base, self._word_bases)

    def _evidence(self, index: int, hits: Hits) -> Match | None:
        topic = self.topics[index]
        result = self._walker(hits).walk(topic.tree)
        items = _unique(result.items)
        score = _score(items)
        if score < topic.min_score:
            return None
        return Match(
            topic.id, topic.name, score, _evidence_items(items, hits.fields), _snippet(items, hits.fields)
        )

    def explain(self, article: Article) -> list[Explanation]:
        """For every topic that matched, the clauses that fired with their words; for a near miss (some
        positive term occurred), what was absent or which NOT excluded it. Matches first."""
        hits = self._hits(article)
        touched: set[int] = set()
        for raw in hits.raw:
            for base in raw:
                touched.update(self._users.get(base, ()))
        walker = self._walker(hits)
        out = []
        for index in sorted(touched):
            topic = self.topics[index]
            result = walker.walk(topic.tree)
            if not result.ok and not _any_positive_found(result):
                continue
            lines = tuple(describe(result, hits.fields))
            if result.ok:
                score = _score(_unique(result.items))
                if score >= topic.min_score:
                    out.append(Explanation(topic.id, topic.name, True, score, lines, ()))
                else:
                    reason = f"score {score:.2f} is below the topic's min_score {topic.min_score:.2f}"
                    out.append(Explanation(topic.id, topic.name, False, score, lines, (reason,)))
            else:
                out.append(Explanation(topic.id, topic.name, False, None, lines, tuple(missing(result))))
        out.sort(key=lambda e: (not e.matched, e.topic_id))
        return out

    def topic_index(self, topic_id: str) -> int:
        return self._by_id[topic_id]


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


def _all_terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return _all_terms(node.child)
    if isinstance(node, Near):
        return _all_terms(node.left) + _all_terms(node.right)
    return [t for c in node.children for t in _all_terms(c)]


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


def _score(items: list[Item]) -> float:
    if not items:
        return 0.4
    distinct = len({(t.kind, t.words, t.prefix, t.slop) for t, _, _, _ in items})
    in_title = any(f == TITLE for _, f, _, _ in items)
    score = 0.4 + 0.2 * in_title + 0.2 * min(1.0, (distinct - 1) / 3) + 0.2 * min(1.0, (len(items) - 1) / 4)
    return round(min(1.0, score), 3)


def _evidence_items(items: list[Item], fields: tuple[Prepared, Prepared]) -> tuple[Evidence, ...]:
    out = []
    for term, f, first, last in items[:MAX_EVIDENCE]:
        prepared = fields[f]
        start, end = prepared.span(first)[0], prepared.span(last)[1]
        out.append(Evidence(term.clause, term.text, FIELD_NAMES[f], start, end, prepared.original[start:end]))
    return tuple(out)


def _snippet(items: list[Item], fields: tuple[Prepared, Prepared]) -> str:
    body = [i for i in items if i[1] == BODY]
    chosen = body[0] if body else (items[0] if items else None)
    if chosen is None:
        return ""
    prepared = fields[chosen[1]]
    start = prepared.span(chosen[2])[0]
    lo, hi = prepared.sentence_bounds(start)
    text = prepared.original[lo:hi]
    if len(text) > SNIPPET_CHARS:
        middle = start - lo
        cut = max(0, min(len(text) - SNIPPET_CHARS, middle - SNIPPET_CHARS // 3))
        text = ("…" if cut else "") + text[cut : cut + SNIPPET_CHARS] + "…"
    return " ".join(text.split())

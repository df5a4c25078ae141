"""A deliberately simple evaluator of query trees: tokens from analysis.py, a tree walk, no shortcuts.

No automaton, no presearch, no caching: every term is looked for at every position. It defines what
the fast matcher must answer (the property test compares the two) and is far too slow for production.
"""

from __future__ import annotations

from itertools import product

from worker.core.analysis import prepare, stem
from worker.core.query.tree import And, Near, Node, Not, Or, Term

Span = tuple[int, int, int]  # (field, first token, last token); field 0 = title, 1 = body


class Document:
    """An article as the reference sees it: per field, its tokens and each token's sentence number."""

    def __init__(self, title: str, text: str) -> None:
        self.tokens: list[list[str]] = []
        self.sentence: list[list[int]] = []
        for field_text in (title, text):
            tokens: list[str] = []
            sentence: list[int] = []
            for number, words in enumerate(prepare(field_text).sentences()):
                tokens.extend(words)
                sentence.extend([number] * len(words))
            self.tokens.append(tokens)
            self.sentence.append(sentence)


def matches(tree: Node, title: str, text: str) -> bool:
    """Does a query tree match an article with this title and text?"""
    return evaluate(tree, Document(title, text))


def evaluate(node: Node, doc: Document) -> bool:
    if isinstance(node, Term):
        return bool(spans(node, doc))
    if isinstance(node, Not):
        return not evaluate(node.child, doc)
    if isinstance(node, And):
        return all(evaluate(child, doc) for child in node.children)
    if isinstance(node, Or):
        return any(evaluate(child, doc) for child in node.children)
    return bool(spans(node, doc))


def spans(node: Node, doc: Document) -> list[Span]:
    """Where a term, an OR of spans or a NEAR occurs."""
    if isinstance(node, Term):
        return _term_spans(node, doc)
    if isinstance(node, Or):
        return [s for child in node.children for s in spans(child, doc)]
    if isinstance(node, Near):
        out = []
        for lf, ls, le in spans(node.left, doc):
            for rf, rs, re_ in spans(node.right, doc):
                if lf != rf:
                    continue
                if le < rs:
                    gap = rs - le
                elif re_ < ls:
                    gap = ls - re_
                else:
                    continue  # overlapping spans are not "near"
                if gap <= node.distance:
                    out.append((lf, min(ls, rs), max(le, re_)))
        return out
    raise ValueError("only terms, OR and NEAR have spans")


def _term_spans(term: Term, doc: Document) -> list[Span]:
    fields = [0] if term.field == "title" else [0, 1]
    out: list[Span] = []
    for f in fields:
        tokens = doc.tokens[f]
        sentence = doc.sentence[f]
        if term.kind == "word":
            wanted = stem(term.words[0])
            out.extend((f, i, i) for i, token in enumerate(tokens) if stem(token) == wanted)
        elif term.slop is None:
            k = len(term.words)
            for i in range(len(tokens) - k + 1):
                if (
                    all(_word_at(term, j, tokens[i + j]) for j in range(k))
                    and sentence[i] == sentence[i + k - 1]
                ):
                    out.append((f, i, i + k - 1))
        else:
            places = [
                [i for i, token in enumerate(tokens) if _word_at(term, j, token)]
                for j in range(len(term.words))
            ]
            found = set()
            for combo in product(*places):
                if len(set(combo)) != len(combo) or len({sentence[p] for p in combo}) != 1:
                    continue
                adjusted = [p - j for j, p in enumerate(combo)]
                if max(adjusted) - min(adjusted) <= term.slop:
                    found.add((f, min(combo), max(combo)))
            out.extend(sorted(found))
    return out


def _word_at(term: Term, j: int, token: str) -> bool:
    """Does the token fit word j of an exact (or prefix) phrase?"""
    if term.prefix and j == len(term.words) - 1:
        return token.startswith(term.words[j])
    return token == term.words[j]

"""Parse a topic query (grammar.lark, LALR with lark) into the tree of tree.py, expanding @aliases.

The language (Lucene and the boolean searches of monitoring tools):

- `word`            the word and its inflections (Snowball stem: `troops` finds troop, troops, troop's)
- `"exact phrase"`  these words in a row, folded but not stemmed, within one sentence; `"kursk"` is
                    one exact word; `"north kor*"` ends with a prefix
- `troop*`          words starting with "troop" (at least two characters before the *)
- `North-Korean`    a word with hyphens (or other inner punctuation) is the phrase "north korean"
- `a AND b`, `a b`  both (adjacent terms mean AND)
- `a OR b`          either
- `NOT a`, `-a`     excludes; a query, and every OR alternative, needs a positive (non-negated) part
- `A NEAR/n B`      A and B at most n words apart (adjacent words are 1 apart), either order, same field;
                    A and B are words, phrases, prefixes, aliases, OR groups or NEARs (not AND/NOT)
- `"a b"~n`         sloppy phrase (Lucene): the words within one sentence, out of place by at most n
                    positions in total (`"a b"~1` allows one word between them; `"a b"~2` also "b a")
- `title:x`         x (a term, alias or parenthesised group) only in the title
- `@name`           the alias's terms, OR-ed: a single word is stemmed, several words are a phrase,
                    a trailing * makes a prefix, double quotes make it exact

Precedence, tightest first: NOT / -, then NEAR/n, then AND (explicit or implied), then OR.
So `a b OR c` is `(a AND b) OR c` and `-a NEAR/3 b` is `(NOT a) NEAR/3 b` (an error: NEAR needs
positive operands). Operators are upper case; `and`, `or`, `not` in lower case are ordinary words.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from worker.core.analysis import tokenize
from worker.core.query.errors import QueryError
from worker.core.query.tree import FIELDS, And, Near, Node, Not, Or, Term, is_positive

_PARSER = Lark(
    (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    lexer="basic",
    maybe_placeholders=False,
)

# A scanner with the grammar's terminals in the order of lark's basic lexer (priority, then as listed):
# the parse tree depends only on the sequence of token types, so trees are cached by that "shape" and
# lark runs once per shape (a watchlist of 100,000 topics has a few dozen). Anything the scanner does
# not recognise goes to lark itself, which reports the error.
_SCAN = re.compile(
    r"""(?P<_OR>OR(?=[\s()"]|$))|(?P<_AND>AND(?=[\s()"]|$))|(?P<_NOT>NOT(?=[\s()"]|$))"""
    r"""|(?P<NEAR>NEAR(\/\d+)?(?=[\s()"]|$))|(?P<MINUS>-(?=[^\s-]))|(?P<FIELD>[A-Za-z_]+:(?=[^\s]))"""
    r"""|(?P<ALIAS>@[^\s()"~:@*]+)|(?P<PHRASE>"[^"]*")|(?P<SLOP>~\d+)|(?P<_LPAR>\()|(?P<_RPAR>\))"""
    r"""|(?P<WORD>[^\s()"~@\-:][^\s()"~:]*)|(?P<WS>\s+)"""
)
_SHAPES: dict[tuple[str, ...], Tree] = {}


class _Tok:
    """A scanned token: what the builder reads of a lark Token, for less."""

    __slots__ = ("end_pos", "start_pos", "type", "value")

    def __init__(self, kind: str, value: str, start: int, end: int) -> None:
        self.type = kind
        self.value = value
        self.start_pos = start
        self.end_pos = end


def _scan(query: str) -> list[Any] | None:
    tokens = []
    position = 0
    for match in _SCAN.finditer(query):
        start = match.start()
        if start != position:
            return None  # a character no terminal accepts: lark will say which
        position = match.end()
        kind = match.lastgroup or ""
        if kind != "WS":
            tokens.append(_Tok(kind, match.group(), start, position))
    return tokens if position == len(query) else None


def _parse_tree(query: str) -> Tree:
    """lark's parse tree of a query, from the shape cache when this sequence of token types was seen."""
    tokens = _scan(query)
    if tokens is None:
        return _PARSER.parse(query)
    shape = tuple(t.type for t in tokens)
    template = _SHAPES.get(shape)
    if template is None:
        tree = _PARSER.parse(query)
        index = {(t.start_pos, t.type): i for i, t in enumerate(tokens)}
        try:
            template = _template(tree, index)
        except KeyError:  # the scanner and lark disagree: never cache what we cannot reproduce
            return tree
        if len(_SHAPES) < 10_000:
            _SHAPES[shape] = template
        return tree
    return _instantiate(template, tokens)


def _template(tree: Tree, index: dict[tuple[int | None, str], int]) -> Tree:
    children: list[Tree | int] = []
    for child in tree.children:
        if isinstance(child, Token):
            children.append(index[(child.start_pos, child.type)])
        else:
            children.append(_template(child, index))
    return Tree(tree.data, children)


def _instantiate(template: Tree, tokens: list[Token]) -> Tree:
    return Tree(
        template.data,
        [tokens[c] if isinstance(c, int) else _instantiate(c, tokens) for c in template.children],
    )


_WORD = object()  # marks the word cache's keys in _Builder.shared

_TOKEN_NAMES = {
    "_OR": "OR",
    "_AND": "AND",
    "_NOT": "NOT",
    "NEAR": "NEAR/n",
    "MINUS": "-",
    "FIELD": "a field such as title:",
    "ALIAS": "an @alias",
    "PHRASE": 'a "phrase"',
    "SLOP": "~n",
    "WORD": "a word",
    "_LPAR": "(",
    "_RPAR": ")",
    "$END": "the end of the query",
}
MIN_PREFIX = 2


def parse_query(
    query: str, aliases: Mapping[str, Sequence[str]] | None = None, shared: dict[Any, Any] | None = None
) -> Node:
    """Parse one query. Raises QueryError (with the offset in `query`) on any problem.

    `shared`: a dict kept across the queries of one watchlist, so that equal terms (and their words)
    are one object: a watchlist of 100,000 topics repeats its context words many times."""
    if not query.strip():
        raise QueryError("the query is empty", 0)
    try:
        tree = _parse_tree(query)
    except UnexpectedInput as error:
        raise _syntax_error(query, error) from None
    node = _Builder(query, aliases or {}, shared).build(tree)
    if not is_positive(node):
        raise QueryError(
            "the query needs a term that is not negated (NOT x alone matches almost anything)", 0
        )
    return node


def parse_alias_term(text: str, alias: str, offset: int = 0) -> Term:
    """One term of an alias list: a word (stemmed), several words (a phrase), `x*` (prefix), `"x"` exact."""
    raw = text.strip()
    quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
    inner = raw[1:-1].strip() if quoted else raw
    prefix = inner.endswith("*")
    words = tuple(tokenize(inner.rstrip("*")))
    if not words:
        raise QueryError(f"alias @{alias}: the term {text!r} has no letters or digits", offset)
    if prefix and len(words[-1]) < MIN_PREFIX:
        raise QueryError(f"alias @{alias}: the prefix {text!r} is too short", offset)
    kind: Literal["word", "phrase"] = "word" if len(words) == 1 and not quoted and not prefix else "phrase"
    return Term(kind=kind, words=words, prefix=prefix, text=raw, alias=alias, offset=offset)


def _syntax_error(query: str, error: UnexpectedInput) -> QueryError:
    offset = getattr(error, "pos_in_stream", None)
    if isinstance(error, UnexpectedEOF) or offset is None:
        return QueryError(
            "the query ends too early (an operator or a parenthesis is missing its other side)", len(query)
        )
    if isinstance(error, UnexpectedCharacters):
        char = query[offset] if offset < len(query) else ""
        if char == '"':
            return QueryError('a phrase is missing its closing "', offset)
        if char == "*":
            return QueryError("* goes at the end of a word (troop*)", offset)
        if char == "~":
            return QueryError('~n goes right after a phrase ("a b"~3)', offset)
        return QueryError(f"unexpected character {char!r}", offset)
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            return QueryError(
                "the query ends too early (an operator or a parenthesis is missing its other side)",
                len(query),
            )
        expected = sorted({_TOKEN_NAMES.get(name, name) for name in error.expected})
        what = _TOKEN_NAMES.get(token.type, token.type)
        shown = (
            f"{what} {token.value!r}"
            if token.type in ("WORD", "PHRASE", "ALIAS", "FIELD")
            else repr(token.value)
        )
        if token.type == "_RPAR":
            return QueryError("unexpected ')' (unbalanced parentheses or an empty group)", offset)
        return QueryError(f"unexpected {shown}; expected {', '.join(expected)}", offset)
    return QueryError(str(error).splitlines()[0], offset)


class _Builder:
    def __init__(
        self, query: str, aliases: Mapping[str, Sequence[str]], shared: dict[Any, Any] | None = None
    ) -> None:
        self.query = query
        self.aliases = aliases
        self.shared: dict[Any, Any] = {} if shared is None else shared

    def share(self, value: Any) -> Any:
        """The equal object seen before in this watchlist, or this one (then remembered)."""
        return self.shared.setdefault(value, value)

    def term(self, **fields: Any) -> Term:
        fields["words"] = self.share(tuple(self.share(w) for w in fields["words"]))
        fields["text"] = self.share(fields["text"])
        term: Term = self.share(Term(**fields))
        return term

    def text_of(self, tree: Tree | Token) -> tuple[str, int]:
        """The query text a subtree covers (from its first to its last token) and where it starts."""
        first = last = tree
        while isinstance(first, Tree):
            first = first.children[0]
        while isinstance(last, Tree):
            last = last.children[-1]
        start = first.start_pos or 0
        end = last.end_pos or start
        return self.query[start:end], start

    def build(self, tree: Tree | Token) -> Node:
        if not isinstance(tree, Tree):
            # A lone token only appears for rules whose alias keeps it (word, alias) — handled below.
            raise QueryError(f"unexpected {tree.value!r}", tree.start_pos or 0)
        # Compound nodes keep only their offset (their text is rebuilt by tree.render when shown).
        text, offset = "", 0
        rule = tree.data
        children = tree.children
        if rule == "or_expr":
            nodes = tuple(self.build(c) for c in children)
            for child, node in zip(children, nodes, strict=True):
                if not is_positive(node):
                    raise QueryError(
                        "each OR alternative needs a term that is not negated "
                        "(OR NOT x matches almost anything)",
                        self.text_of(child)[1],
                    )
            return Or(_flatten(Or, nodes), text, offset)
        if rule == "and_expr":
            nodes = tuple(self.build(c) for c in children)
            return And(_flatten(And, nodes), text, offset)
        if rule == "near_expr":
            return self.near(children)
        if rule == "negation":
            child = children[-1]
            return Not(self.build(child), text, offset)
        if rule == "field":
            token = _token(children[0])
            name = str(token.value)[:-1].lower()
            if name not in FIELDS:
                raise QueryError(f"unknown field {name!r} (only title: exists)", token.start_pos or 0)
            return _with_field(self.build(children[1]), "title")
        if rule == "phrase":
            return self.phrase(children)
        if rule == "word":
            return self.word(_token(children[0]))
        if rule == "alias":
            return self.alias(_token(children[0]))
        raise QueryError(f"unexpected {rule!r}", self.text_of(tree)[1])  # pragma: no cover

    def near(self, children: list[Tree | Token]) -> Node:
        left_tree = children[0]
        left = self.near_operand(left_tree)
        for i in range(1, len(children), 2):
            token = children[i]
            assert not isinstance(token, Tree)
            match = re.fullmatch(r"NEAR/(\d+)", str(token.value))
            if not match:
                raise QueryError("NEAR needs a distance in words, e.g. NEAR/5", token.start_pos or 0)
            distance = int(match.group(1))
            if distance < 1:
                raise QueryError("a NEAR distance is at least 1 (adjacent words)", token.start_pos or 0)
            right_tree = children[i + 1]
            right = self.near_operand(right_tree)
            start = self.text_of(left_tree)[1]
            right_text, right_offset = self.text_of(right_tree)
            end = right_offset + len(right_text)
            left = Near(left, right, distance, self.query[start:end], start)
        return left

    def near_operand(self, tree: Tree | Token) -> Node:
        node = self.build(tree)
        if not _spannable(node):
            raise QueryError(
                "NEAR joins words, phrases, prefixes, aliases, OR groups or NEARs — not AND or NOT "
                "(write (a NEAR/5 b) AND c)",
                self.text_of(tree)[1],
            )
        return node

    def word(self, token: Token) -> Term:
        raw = str(token.value)
        offset = token.start_pos or 0
        # The same word at the same place is the same term: a big watchlist repeats its context words
        # thousands of times, so each is folded, tokenised and stemmed once.
        key = (_WORD, raw, offset)
        known: Term | None = self.shared.get(key)
        if known is None:
            known = self.shared[key] = self._word(raw, offset)
        return known

    def _word(self, raw: str, offset: int) -> Term:
        star = raw.find("*")
        if star != -1 and star != len(raw) - 1:
            raise QueryError("* goes at the end of a word (troop*)", offset + star)
        prefix = raw.endswith("*")
        words = tuple(tokenize(raw.rstrip("*")))
        if not words:
            raise QueryError(f"{raw!r} has no letters or digits", offset)
        if prefix:
            if len(words[-1]) < MIN_PREFIX:
                raise QueryError(
                    f"the prefix {raw!r} is too short (at least {MIN_PREFIX} characters)", offset
                )
            return self.term(kind="phrase", words=words, prefix=True, text=raw, offset=offset)
        if len(words) == 1:
            return self.term(kind="word", words=words, text=raw, offset=offset)
        return self.term(kind="phrase", words=words, text=raw, offset=offset)

    def phrase(self, children: list[Tree | Token]) -> Term:
        token = children[0]
        assert not isinstance(token, Tree)
        raw = str(token.value)
        offset = token.start_pos or 0
        inner = raw[1:-1].strip()
        prefix = inner.endswith("*")
        words = tuple(tokenize(inner.rstrip("*")))
        if not words:
            raise QueryError("the phrase is empty", offset)
        if prefix and len(words[-1]) < MIN_PREFIX:
            raise QueryError(f"the prefix in {raw} is too short (at least {MIN_PREFIX} characters)", offset)
        slop = None
        text = raw
        if len(children) > 1:
            slop_token = children[1]
            assert not isinstance(slop_token, Tree)
            text = raw + str(slop_token.value)
            if len(words) > 1:
                slop = int(str(slop_token.value)[1:])
        return self.term(kind="phrase", words=words, prefix=prefix, slop=slop, text=text, offset=offset)

    def alias(self, token: Token) -> Node:
        name = str(token.value)[1:]
        offset = token.start_pos or 0
        if name not in self.aliases:
            known = ", ".join(f"@{n}" for n in sorted(self.aliases)) or "none defined"
            raise QueryError(f"unknown alias @{name} (known: {known})", offset)
        terms = tuple(self.share(parse_alias_term(t, name, offset)) for t in self.aliases[name])
        if not terms:
            raise QueryError(f"alias @{name} has no terms", offset)
        if len(terms) == 1:
            return terms[0]
        return Or(terms, f"@{name}", offset)


def _token(item: Tree | Token) -> Token:
    assert not isinstance(item, Tree)
    return item


def _flatten(kind: type[And] | type[Or], nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, kind):
            out.extend(node.children)
        else:
            out.append(node)
    return tuple(out)


def _with_field(node: Node, field: str) -> Node:
    if isinstance(node, Term):
        return dataclasses.replace(node, field="title" if field == "title" else None)
    if isinstance(node, Not):
        return dataclasses.replace(node, child=_with_field(node.child, field))
    if isinstance(node, Near):
        return dataclasses.replace(
            node, left=_with_field(node.left, field), right=_with_field(node.right, field)
        )
    return dataclasses.replace(node, children=tuple(_with_field(c, field) for c in node.children))


def _spannable(node: Node) -> bool:
    if isinstance(node, Term):
        return True
    if isinstance(node, Near):
        return True
    if isinstance(node, Or):
        return all(_spannable(c) for c in node.children)
    return False

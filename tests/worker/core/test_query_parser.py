"""The query language: precedence, terms, aliases, and the errors an analyst sees."""

from __future__ import annotations

import pytest

from worker.core.query import And, Near, Not, Or, QueryError, Term, parse_query
from worker.core.query.tree import render

ALIASES = {"nk": ["North Korean", "DPRK", "troop*", '"KPA"'], "one": ["Kursk"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a b OR c", "((a AND b) OR c)"),
        ("a OR b c", "(a OR (b AND c))"),
        ("a NEAR/3 b c", "((a NEAR/3 b) AND c)"),
        ("a NEAR/3 b OR c", "((a NEAR/3 b) OR c)"),
        ("-a b", "(NOT a AND b)"),
        ("a NOT b", "(a AND NOT b)"),
        ("(a OR b) NEAR/5 c", "((a OR b) NEAR/5 c)"),
        ("a NEAR/2 b NEAR/3 c", "((a NEAR/2 b) NEAR/3 c)"),
        ("ANDROID and or", "(ANDROID AND and AND or)"),
    ],
)
def test_precedence_not_near_and_or(query: str, expected: str) -> None:
    assert render(parse_query(query)) == expected


def test_term_kinds() -> None:
    word = parse_query("Troops")
    assert word == Term(kind="word", words=("troops",), text="Troops")
    prefix = parse_query("troop*")
    assert isinstance(prefix, Term) and prefix.prefix and prefix.words == ("troop",)
    phrase = parse_query('"North Korean"~2')
    assert isinstance(phrase, Term) and phrase.kind == "phrase" and phrase.slop == 2
    hyphen = parse_query("North-Korean")
    assert isinstance(hyphen, Term) and hyphen.kind == "phrase" and hyphen.words == ("north", "korean")
    exact = parse_query('"Kursk"')
    assert isinstance(exact, Term) and exact.kind == "phrase" and exact.words == ("kursk",)


def test_title_applies_to_a_term_or_a_group() -> None:
    tree = parse_query("title:(kursk OR sudzha) AND troops")
    assert isinstance(tree, And)
    group, troops = tree.children
    assert isinstance(group, Or) and all(isinstance(t, Term) and t.field == "title" for t in group.children)
    assert isinstance(troops, Term) and troops.field is None


def test_alias_expands_to_its_terms() -> None:
    tree = parse_query("@nk NEAR/5 @one", ALIASES)
    assert isinstance(tree, Near)
    assert isinstance(tree.left, Or)
    kinds = [(t.kind, t.words, t.prefix, t.alias) for t in tree.left.children if isinstance(t, Term)]
    assert kinds == [
        ("phrase", ("north", "korean"), False, "nk"),
        ("word", ("dprk",), False, "nk"),
        ("phrase", ("troop",), True, "nk"),
        ("phrase", ("kpa",), False, "nk"),
    ]
    assert isinstance(tree.right, Term) and tree.right.alias == "one"


def test_negation_is_a_node() -> None:
    tree = parse_query("kursk -submarine")
    assert isinstance(tree, And) and isinstance(tree.children[1], Not)


@pytest.mark.parametrize(
    ("query", "column", "fragment"),
    [
        ("", 1, "empty"),
        ("NOT kursk", 1, "not negated"),
        ("kursk OR -battle", 10, "OR alternative"),
        ("(kursk AND troops", 18, "ends too early"),
        ("kursk)", 6, "unbalanced"),
        ('"north korean', 1, "closing"),
        ("tro*ops", 4, "end of a word"),
        ("@nope AND x", 1, "unknown alias @nope"),
        ("place:kursk", 1, "unknown field"),
        ("a NEAR b", 3, "distance"),
        ("(a AND b) NEAR/3 c", 2, "NEAR joins"),
        ("k*", 1, "too short"),
        ("kursk AND AND x", 11, "unexpected 'AND'"),
    ],
)
def test_errors_name_the_column(query: str, column: int, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query, ALIASES)
    assert caught.value.column == column
    assert fragment in caught.value.message


def test_queries_of_one_shape_parse_alike() -> None:
    # The second query reuses the parse of the first (same sequence of token types).
    first = parse_query('alpha AND (beta OR "gamma delta"~2) -title:eps*')
    second = parse_query('one AND (two OR "three four"~1) -title:fiv*')
    assert render(first) == '(alpha AND (beta OR "gamma delta"~2) AND NOT eps*)'
    assert render(second) == '(one AND (two OR "three four"~1) AND NOT fiv*)'
    assert isinstance(second, And) and isinstance(second.children[2], Not)
    negated = second.children[2].child
    assert isinstance(negated, Term) and negated.field == "title" and negated.offset == 39


def test_an_alias_or_ed_with_other_terms_reads_once_in_explanations() -> None:
    from worker.core.query.tree import render
    from worker.core.watchlist import parse_watchlist

    watchlist = parse_watchlist(
        '[aliases]\nk = ["alpha", "beta", "gamma"]\n'
        '[[topic]]\nid = "t"\nname = "t"\nquery = \'(@k OR delta) NEAR/3 omega\'\n'
    )
    assert render(watchlist.topics[0].tree) == "((@k OR delta) NEAR/3 omega)"

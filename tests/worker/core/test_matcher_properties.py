"""Property test: the compiled matcher (automaton, presearch, closures) agrees with the reference."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.core import reference
from worker.core.article import Article
from worker.core.matcher import Matcher
from worker.core.query import parse_query
from worker.core.watchlist import Topic, Watchlist

# Words that share stems, prefixes and spellings, Snowball's irregular forms, and Cyrillic.
VOCABULARY = [
    "troop", "troops", "trooper", "army", "armies", "arm", "armed", "kursk", "kurskaya", "north",
    "korean", "koreans", "pyongyang's", "lying", "lie", "lies", "hope", "hoping", "stable", "stability",
    "курск", "курской", "войска", "войск", "the", "in", "a",
]  # fmt: skip
ALIASES = {"nk": ["North Korean", "troops", "kur*"], "ru": ["army", '"lie"', "курск*"]}

words = st.sampled_from(VOCABULARY)
long_words = st.sampled_from([w for w in VOCABULARY if len(w) >= 2])


def cased(word: str, style: int) -> str:
    return (word, word.upper(), word.capitalize())[style]


@st.composite
def terms(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    if kind == 0:
        term = cased(draw(words), draw(st.integers(0, 2)))
    elif kind == 1:
        word = draw(long_words)
        cut = draw(st.integers(2, len(word)))
        term = word[:cut] + "*"
    elif kind in (2, 3):
        last = draw(long_words)
        if draw(st.booleans()):
            last = last[: draw(st.integers(2, len(last)))] + "*"
        phrase = " ".join([*draw(st.lists(words, min_size=0, max_size=2)), last])
        term = f'"{phrase}"'
        if kind == 3 and draw(st.booleans()):
            term += f"~{draw(st.integers(0, 3))}"
    elif kind == 4:
        term = draw(st.sampled_from(["@nk", "@ru"]))
    elif kind == 5:
        term = f'"{draw(words)} {draw(words)}"~{draw(st.integers(0, 3))}'
    else:
        term = cased(draw(words), 0) + "-" + cased(draw(words), 0)
    if draw(st.integers(0, 5)) == 0:
        term = "title:" + term
    return term


def spans(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return terms()
    sub = spans(depth - 1)
    return st.one_of(
        terms(),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} OR {p[1]})"),
        st.tuples(sub, st.integers(1, 4), sub).map(lambda p: f"({p[0]} NEAR/{p[1]} {p[2]})"),
    )


def positives(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return terms()
    sub = positives(depth - 1)
    return st.one_of(
        spans(1),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} AND {p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} {p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} OR {p[1]})"),
        st.tuples(sub, terms()).map(lambda p: f"({p[0]} -{p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
        st.tuples(sub, sub).map(lambda p: f"title:({p[0]} OR {p[1]})"),
    )


@st.composite
def texts(draw: st.DrawFn, max_sentences: int) -> str:
    sentences = []
    for _ in range(draw(st.integers(0, max_sentences))):
        chosen = draw(st.lists(st.tuples(words, st.integers(0, 2)), min_size=1, max_size=8))
        separators = draw(
            st.lists(st.sampled_from([" ", ", ", "-", " — ", " (", "’ "]), min_size=len(chosen))
        )
        sentence = "".join(cased(w, s) + sep for (w, s), sep in zip(chosen, separators, strict=False))
        sentences.append(sentence.strip().capitalize())
    ends = draw(st.lists(st.sampled_from([". ", "! ", "\n\n", "; ", " "]), min_size=len(sentences)))
    return "".join(s + e for s, e in zip(sentences, ends, strict=False))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=st.lists(positives(2), min_size=1, max_size=4),
    articles=st.lists(st.tuples(texts(1), texts(4)), min_size=1, max_size=3),
)
def test_compiled_matcher_agrees_with_the_reference(
    queries: list[str], articles: list[tuple[str, str]]
) -> None:
    topics = tuple(
        Topic(id=f"t{i}", name=q, query=q, tree=parse_query(q, ALIASES)) for i, q in enumerate(queries)
    )
    matcher = Matcher(Watchlist(topics))
    for title, text in articles:
        article = Article(id="a", url="", title=title, text=text)
        expected = {t.id for t in topics if reference.matches(t.tree, title, text)}
        got = {m.topic_id for m in matcher.match(article)}
        assert got == expected, (title, text)
        # The gate may let through an article that matches nothing, never turn away one that matches.
        assert matcher.gate.admits(title, text) or not expected
        explained = {e.topic_id for e in matcher.explain(article) if e.matched}
        assert explained == expected

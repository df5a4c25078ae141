"""The gate before analysis: articles that cannot match are turned away, none that can match is."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from worker.core import analysis
from worker.core.analysis import stem, stem_probe, tokenize
from worker.core.article import Article
from worker.core.gate import SKIP, WINDOW, Gate, GateBudget, clauses, open_topics
from worker.core.matcher import Matcher
from worker.core.query import parse_query
from worker.core.watchlist import Topic, Watchlist

ALIASES = {"nk": ["North Korean", "DPRK", "KPA"], "kursk": ["Kursk", "Kurskaya", "Курск*"]}


def gate(*queries: str) -> Gate:
    return Gate(parse_query(q, ALIASES) for q in queries)


def nk_matcher() -> Matcher:
    query = "@nk AND @kursk"
    return Matcher(Watchlist((Topic(id="nk", name="nk", query=query, tree=parse_query(query, ALIASES)),)))


def test_an_article_without_the_topics_words_is_turned_away() -> None:
    g = gate("@nk AND @kursk")
    assert not g.admits("Grain prices", "Wheat exports rose again in the spring, traders said.")
    assert g.admits("", "DPRK units were reported near Kurskaya oblast's border villages.")


def test_every_required_part_must_have_a_probe() -> None:
    g = gate("@nk AND @kursk")
    # Kursk alone (the 1943 battle) holds no probe of the North Korea side.
    assert not g.admits("The Battle of Kursk", "Tanks clashed near Prokhorovka in July 1943.")


def test_a_negated_part_is_no_reason_to_admit() -> None:
    g = gate("Kursk -submarine")
    assert not g.admits("", "The submarine sank in the Barents Sea in August 2000.")
    assert g.admits("", "Kursk's governor spoke on Monday.")


def test_title_and_text_are_both_searched() -> None:
    g = gate("title:Kursk")
    assert g.admits("Fighting in KURSK", "")
    assert g.admits("", "Kursk")  # the gate ignores fields: a probe anywhere admits


def test_inflected_forms_whose_stem_is_rewritten_are_admitted() -> None:
    # Snowball rewrites these endings: the stem is not a prefix of every form.
    for query, text in [
        ("stable", "Its stability was questioned."),
        ("hope", "They were hoping for a ceasefire."),
        ("armies", "An army crossed the river."),
        ("possibly", "The possibility was raised."),
        ("sky", "Drones filled the skies."),
        ("курск", "В Курской области."),
    ]:
        assert gate(query).admits("", text), (query, text)


def test_a_topic_of_very_short_words_opens_the_gate() -> None:
    g = gate("UN OR EU", "Kursk")
    assert g.open
    assert g.admits("", "Nothing of either here.")


def test_every_topic_that_opens_the_gate_is_named() -> None:
    # The gate stops building at the first such topic; `watchlist check` still names them all.
    queries = ["Kursk", "UN OR EU", "Pyongyang", "US", "Sumy*"]
    assert gate(*queries).open
    assert open_topics(parse_query(q, ALIASES) for q in queries) == [1, 3]
    assert open_topics(parse_query(q, ALIASES) for q in ["Kursk", "Sumy*"]) == []


def test_an_empty_watchlist_admits_nothing() -> None:
    assert not Gate([]).admits("Kursk", "Kursk")


def test_or_takes_one_probe_of_each_alternative() -> None:
    [clause] = clauses(parse_query('"North Korean troops" OR KPA', {}))
    # KPA is a stemmed word (the start of a word), the phrase gives one of its whole words.
    assert " kpa" in clause and len(clause) == 2
    assert clause - {" kpa"} <= {" north ", " korean ", " troops "}


def test_a_probe_inside_another_word_does_not_admit() -> None:
    g = gate("port AND grain")
    assert not g.admits("", "The report supports an important grainy photo.")
    assert g.admits("", "Grain left the port of Izmail.")


def test_stem_probes_begin_every_form_with_that_stem() -> None:
    forms = [
        "lying", "dying", "tying", "skies", "armies", "hoping", "hopping", "stability", "possibility",
        "possibly", "relational", "organization", "generously", "agreed", "crying", "early", "ugly",
        "gently", "valencies", "sensational", "courageous", "войсками", "курской", "отправленных",
    ]  # fmt: skip
    for form in forms:
        assert form.startswith(stem_probe(stem(form))), (form, stem(form))


def test_the_matcher_skips_articles_the_gate_turns_away() -> None:
    matcher = nk_matcher()
    assert matcher.match(Article(id="a", url="", title="", text="Wheat prices rose.")) == []
    found = matcher.match(Article(id="b", url="", title="", text="KPA soldiers fought in Kursk."))
    assert [m.topic_id for m in found] == ["nk"]


CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora"


# Endings that make Snowball rewrite what it leaves (y -> i, an added e, -biliti -> -ble, ...).
SUFFIXES = (
    "s", "es", "ies", "ied", "ing", "ings", "ingly", "ed", "edly", "eed", "ly", "ily", "li", "y", "ity",
    "ities", "ility", "ibility", "ation", "ational", "ization", "izer", "ator", "ness", "ful", "fulness",
    "ousness", "iveness", "ively", "ence", "enci", "ance", "anci", "able", "ably", "ibly", "bli", "ogi",
    "alism", "aliti", "icate", "iciti", "ical", "ize", "ate", "'s",
)  # fmt: skip


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpora is absent")
def test_stem_probes_hold_for_every_word_of_the_corpus_and_its_suffixed_forms() -> None:
    words: set[str] = set()
    truth = json.loads((CORPUS / "articles" / "aeb" / "ground-truth.json").read_text(encoding="utf-8"))
    for entry in truth.values():
        words.update(tokenize(entry["articleBody"]))
    for page in sorted((CORPUS / "articles" / "aeb" / "html").glob("*.html.gz")):
        words.update(tokenize(gzip.decompress(page.read_bytes()).decode("utf-8", "replace")))
    assert len(words) > 10_000
    wrong = [w for w in words if not w.startswith(stem_probe(stem(w)))]
    # The suffixed forms are ASCII: stem() gives them to the English stemmer, here called in one go.
    forms = sorted({w + suffix for w in words if w.isalpha() and w.isascii() for suffix in SUFFIXES})
    assert len(forms) > 1_000_000
    stems = analysis._ENGLISH.stemWords(forms)
    wrong += [w for w, s in zip(forms, stems, strict=True) if not w.startswith(stem_probe(s))]
    assert wrong == []


def test_apostrophes_and_quotes_do_not_hide_a_word() -> None:
    assert gate('"Pyongyang\'s troops"').admits("", "Pyongyang’s troops arrived.")
    assert gate("Kursk AND troops").admits("", "'Kursk' was where the troops' convoy went.")
    assert gate("O'Brien").admits("", "Analyst O’Brien said so.")


def test_a_gate_that_admits_nearly_everything_is_asked_only_now_and_then() -> None:
    budget = GateBudget()
    asked = 0
    for _ in range(WINDOW + SKIP):
        if budget.ask():
            asked += 1
            budget.record(True)
    assert asked == WINDOW  # one window measured, then SKIP articles straight to full matching
    assert budget.ask()  # and then it measures again


def test_a_gate_that_turns_articles_away_keeps_being_asked() -> None:
    budget = GateBudget()
    for i in range(10 * WINDOW):
        assert budget.ask()
        budget.record(i % 2 == 0)  # half admitted


def test_matching_is_the_same_whether_the_gate_is_asked_or_not() -> None:
    matcher = nk_matcher()
    on_topic = Article(id="b", url="", title="", text="KPA soldiers fought in Kursk.")
    # Enough admitted articles in a row to make the matcher stop asking the gate for a while.
    for _ in range(WINDOW + 5):
        assert [m.topic_id for m in matcher.match(on_topic)] == ["nk"]
    assert matcher.match(Article(id="a", url="", title="", text="Wheat prices rose.")) == []

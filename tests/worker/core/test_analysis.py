"""Folding, tokens, sentences, stems and offsets: what a watchlist author relies on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core import analysis
from worker.core.analysis import TOKEN_RE, fold, prepare, stem, tokenize


def test_case_and_latin_diacritics_do_not_matter() -> None:
    assert tokenize("Zaporizhzhia CAFÉ Straße Ölpreis") == ["zaporizhzhia", "cafe", "strasse", "olpreis"]


def test_cyrillic_short_i_stays_a_letter_but_stress_and_yo_fold() -> None:
    assert tokenize("ДРУГОЙ Йошкар") == ["другой", "йошкар"]
    assert tokenize("во\u0301йска") == ["войска"]
    assert tokenize("Ёлка ёж") == ["елка", "еж"]
    assert tokenize("Україна ї") == ["україна", "ї"]


def test_decomposed_short_i_is_the_same_letter() -> None:
    assert tokenize("и\u0306од") == tokenize("йод") == ["йод"]


def test_hyphens_split_and_apostrophes_join() -> None:
    assert tokenize("North-Korean") == tokenize("North Korean") == tokenize("North–Korean")
    assert tokenize("Pyongyang’s troops") == ["pyongyang's", "troops"]
    assert tokenize("'quoted' rock''n troops'") == ["quoted", "rock", "n", "troops"]
    assert tokenize("Kur\u00adsk") == ["kursk"]


def test_word_boundaries_in_other_scripts() -> None:
    assert tokenize("Курской области, КНДР.") == ["курской", "области", "кндр"]
    assert tokenize("कुर्स्क क्षेत्र") == ["कुर्स्क", "क्षेत्र"]


def test_sentences_split_on_punctuation_but_not_on_initials_or_abbreviations() -> None:
    text = "N. Korean troops left Kursk. The U.S. said so on Jan. 30 in Washington. Gen. Smith agreed!"
    assert prepare(text).sentences() == [
        ["n", "korean", "troops", "left", "kursk"],
        ["the", "u", "s", "said", "so", "on", "jan", "30", "in", "washington"],
        ["gen", "smith", "agreed"],
    ]


def test_headlines_and_blank_lines_end_sentences() -> None:
    assert prepare("Battle for Kursk\nNorth Korean units arrived").sentences() == [
        ["battle", "for", "kursk"],
        ["north", "korean", "units", "arrived"],
    ]


def test_stems_group_inflections() -> None:
    assert stem("troops") == stem("troop") == stem("troop's")
    assert stem("deployed") == stem("deploying")
    assert stem("войска") == stem("войск")


def test_spans_point_into_the_original_text() -> None:
    text = "«Straße» ﬁne… Курской обла\u0301сти — North Korean troops."
    prepared = prepare(text)
    got = [text[slice(*prepared.span(i))] for i in range(len(prepared.tokens))]
    assert got == ["Straße", "ﬁne", "Курской", "обла\u0301сти", "North", "Korean", "troops"]


@given(st.text(alphabet="aZé ß’'-.,!?\nКй\u0301ﬁ½xY0", max_size=60))
@settings(max_examples=300, deadline=None)
def test_fast_tokeniser_agrees_with_the_canonical_token_regex(text: str) -> None:
    prepared = prepare(text)
    assert prepared.tokens == TOKEN_RE.findall(fold(text))
    if "½" in text:
        return  # a fraction folds to "1⁄2", which can merge with the digits around it
    for i, token in enumerate(prepared.tokens):
        start, end = prepared.span(i)
        assert tokenize(text[start:end]) == [token]


def test_the_stems_follow_the_distinct_tokens() -> None:
    prepared = prepare("Troops deployed. Войска! The troops left.")
    assert dict(zip(prepared.distinct, prepared.stems, strict=True)) == {t: stem(t) for t in prepared.tokens}
    # "troops" at tokens 0 and 4, "войска" at 2; a stem not in the text is left out.
    assert prepared.stem_positions({"troop", "войск", "absent"}) == {"troop": [0, 4], "войск": [2]}


def test_the_stem_cache_stays_bounded_and_right_on_an_endless_stream_of_new_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker reads new names and numbers for ever: its stem cache must not grow without bound."""
    monkeypatch.setattr(analysis, "_STEM_CACHE", {})
    monkeypatch.setattr(analysis, "_STEM_CACHE_LIMIT", 50)
    for n in range(40):
        words = {f"deployments{n}x{i}" for i in range(7)} | {"troops", "deployed"}
        stems = dict(zip(words, analysis.stems_of(words), strict=True))
        assert stems["troops"] == "troop" and stems["deployed"] == "deploy"
        assert all(stems[w] == w for w in words if w[-1].isdigit())
        assert len(analysis._STEM_CACHE) <= 50
        assert words <= analysis._STEM_CACHE.keys()  # still caching: a full cache starts a new generation


def test_letters_skipped_by_the_fold_scan_fold_as_lower_case() -> None:
    # fold() leaves these ranges to str.lower(): that must be all that folding them does.
    for start, end in [
        (0x410, 0x44F),
        (0x3041, 0x3096),
        (0x30A1, 0x30FA),
        (0x4E00, 0x9FFF),
        (0xAC00, 0xD7A3),
    ]:
        for code in range(start, end + 1):
            c = chr(code)
            assert analysis.LOWER_FOLDED.fullmatch(c)
            assert fold(c) == c.lower(), hex(code)

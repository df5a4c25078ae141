"""Language detection: ISO 639-1 codes for real text, None for text too short to tell."""

from __future__ import annotations

import pytest

from worker.core.language import detect_language, language_code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The North Korean battalions were withdrawn from the Kursk front after weeks of losses.", "en"),
        ("Nordkoreanische Soldaten wurden nach schweren Verlusten von der Front bei Kursk abgezogen.", "de"),
        ("Les soldats nord-coréens ont été retirés du front de Koursk après de lourdes pertes.", "fr"),
        ("Северокорейские военные отведены с фронта в Курской области после тяжёлых потерь.", "ru"),
        ("Північнокорейських військових відвели з фронту на Курщині після важких втрат.", "uk"),
        ("북한군이 큰 손실을 입은 뒤 쿠르스크 전선에서 철수했다고 당국자들이 밝혔다.", "ko"),
        ("Las tropas norcoreanas se retiraron del frente de Kursk tras sufrir fuertes bajas.", "es"),
    ],
)
def test_language_of_a_sentence(text: str, code: str) -> None:
    assert detect_language(text) == code


@pytest.mark.parametrize("text", ["", "Kursk", "Kim Jong Un", "11,000 / 2024-11-05", "DPRK KPA"])
def test_too_short_to_tell_is_none(text: str) -> None:
    assert detect_language(text) is None


def test_long_articles_are_classified_from_their_start() -> None:
    english = "Officials said the soldiers had not been seen near the front for three weeks. "
    german = "Die Beamten sagten, die Soldaten seien seit drei Wochen nicht an der Front gesehen worden. "
    assert detect_language(english * 5 + german * 5000) == "en"


@pytest.mark.parametrize(
    ("hint", "code"),
    [("en-US", "en"), ("de_DE", "de"), ("EN", "en"), ("", None), (None, None), ("english", None)],
)
def test_source_language_hints_become_iso_639_1(hint: str | None, code: str | None) -> None:
    assert language_code(hint) == code

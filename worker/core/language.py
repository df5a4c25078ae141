"""Language of an article's text (py3langid), as an ISO 639-1 code, or None when the text is too short."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

#: Only the start of an article is classified: a few thousand characters settle the language.
SAMPLE_CHARS = 3000
#: Fewer letters than this (a headline, a name) give no reliable answer.
MIN_LETTERS = 20
#: Below this normalised probability the classifier is guessing.
MIN_CONFIDENCE = 0.5

# py3langid labels that have no two-letter code of their own but belong to a language that does.
_TO_ISO_639_1 = {"ary": "ar", "arz": "ar", "uzs": "uz", "wuu": "zh", "yue": "zh", "gug": "gn"}
_LETTER = re.compile(r"[^\W\d_]")


@cache
def _identifier() -> Any:
    """The classifier, loaded once per process (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # py3langid 0.4 loads with from_model_file; earlier releases called it from_pickled_model.
    load = getattr(LanguageIdentifier, "from_model_file", None) or LanguageIdentifier.from_pickled_model
    return load(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is written in, or None if too short or unclear."""
    sample = text[:SAMPLE_CHARS]
    if len(_LETTER.findall(sample)) < MIN_LETTERS:
        return None
    label, confidence = _identifier().classify(sample)
    if confidence < MIN_CONFIDENCE:
        return None
    code = _TO_ISO_639_1.get(label, label)
    return code if len(code) == 2 else None


def language_code(hint: str | None) -> str | None:
    """A source's language hint ("en-US", "de_DE", "EN") as an ISO 639-1 code, or None."""
    if not hint:
        return None
    code = re.split(r"[-_]", hint.strip(), maxsplit=1)[0].lower()
    return code if len(code) == 2 and code.isalpha() else None

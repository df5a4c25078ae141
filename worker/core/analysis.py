"""Text analysis shared by articles and queries: folding, tokens, sentences, stems, offsets back to the text.

Definitions (the matcher, the reference evaluator and the query parser all rely on them):

- fold: Unicode NFKC, case folding, diacritics stripped for Latin (and Greek) letters, Cyrillic kept as
  written except stress accents (dropped) and ё -> е; й, ї, ў stay letters. Apostrophe variants become
  "'", soft hyphens and zero-width joiners vanish. Dash variants need no unifying: every dash separates.
- token: a maximal run of word characters (letters, digits, underscore, combining marks); an apostrophe
  between two word characters joins ("pyongyang's" is one token), anywhere else it separates. Hyphens
  separate, so "North-Korean" gives the same tokens as "North Korean".
- sentence: ends at ., !, ? or … followed by whitespace and an upper-case letter or digit (not after a
  single letter such as "N." or "U.S.", nor after a common abbreviation such as "Jan." or "Gen."), at
  a blank line, and at a line break that follows a short line (< 70 characters: a heading, a list item;
  longer lines are taken as hard-wrapped prose). Also at 。！？.
- stem: Snowball English for words in Latin script, Snowball Russian for Cyrillic; other scripts as is.
  A prepared text carries the stems of its DISTINCT tokens (cached, one C-level map), so that a stemmed
  query word is found by a set intersection; where the watched stems occur (counts, NEAR, evidence) is
  worked out only when asked, for all of them in one pass.

The prepared form of a text is a "stream": its tokens joined by one space, sentences by two, with a
space at either end. A multi-word key " a b " can thus never match across a sentence boundary.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, compress, count
from operator import add

import Stemmer

# Combining marks (the Mn/Mc/Me categories of the Basic Multilingual Plane) count as word characters so
# that Indic and Arabic words are not cut at their vowel signs.
_MARK_CHARS = "".join(
    chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")
)


def _char_class(chars: str) -> str:
    """A compact regex character-class body for a set of characters (ranges where contiguous)."""
    codes = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        parts.append(re.escape(chr(codes[i])) + ("-" + re.escape(chr(codes[j])) if j > i else ""))
        i = j + 1
    return "".join(parts)


_MARKS = _char_class(_MARK_CHARS)
SENTENCE_MARK = "\x00"

# The canonical token: word characters, joined by single apostrophes.
TOKEN_RE = re.compile(rf"[\w{_MARKS}]+(?:'[\w{_MARKS}]+)*")

# Characters that fold() rewrites before anything else.
_SPECIAL_MAP = {
    "\u2019": "'",  # right single quotation mark, the usual typographic apostrophe
    "\u2018": "'",
    "\u02bc": "'",  # modifier letter apostrophe
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent used as an apostrophe
    "`": "'",
    "\uff07": "'",
    "\u00ad": "",  # soft hyphen: invisible, never splits a word
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark / zero-width no-break space
}
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_STRESS = "\u0300\u0301"  # grave and acute: stress marks in Cyrillic text
_ASCII_BYTES = bytes(range(128))


def _strip_diacritics(m: re.Match[str]) -> str:
    start = m.start()
    base = m.string[start - 1] if start else ""
    if "\u0400" <= base <= "\u052f":
        # A mark on a Cyrillic letter is part of the letter (й, ї, ў), except stress marks and ё's dots.
        kept = "".join(c for c in m[0] if c not in _STRESS)
        if base == "е":
            kept = kept.replace("\u0308", "")
        return kept
    return ""


def _normalise(text: str) -> str:
    """NFKC, case folding, diacritics stripped (Cyrillic rules above), ё -> е."""
    text = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", text)
    stripped = _DIACRITICS.sub(_strip_diacritics, decomposed)
    if stripped != text:
        text = unicodedata.normalize("NFC", stripped)
    return text.replace("ё", "е")


_CHAR_FOLD: dict[str, str] = {}


def _fold_char(c: str) -> str:
    """The folded form of one non-ASCII character: a separator becomes a space."""
    folded = _CHAR_FOLD.get(c)
    if folded is None:
        if c in _SPECIAL_MAP:
            folded = _SPECIAL_MAP[c]
        elif unicodedata.category(c)[0] in "LNM":
            folded = "".join(
                x if x == "'" or x.isalnum() or x == "_" or _is_mark(x) else " " for x in _normalise(c)
            )
        else:
            folded = " "
        _CHAR_FOLD[c] = folded
    return folded


def _is_mark(c: str) -> bool:
    return unicodedata.category(c)[0] == "M"


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a text (see the module docstring for the exact rules).

    Character by character (so a cheap str.replace per distinct non-ASCII character does it), except
    around combining marks, where the whole text is normalised first. Non-ASCII punctuation and
    symbols become spaces; ASCII punctuation is left for the tokeniser.
    """
    return _fold(text)[0]


# Letters that fold() leaves as str.lower() leaves them (no replacement needed): basic Cyrillic,
# Hiragana, Katakana, CJK ideographs, Hangul syllables. Dropped before the distinct characters of a text
# are collected, which would otherwise make a str object of every character of a Russian or Korean text.
LOWER_FOLDED = re.compile("[\u0410-\u044f\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff\uac00-\ud7a3]+")


def _non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of a text that fold() may have to replace (ASCII dropped from
    the UTF-8 bytes, then the LOWER_FOLDED runs: both at C level)."""
    rest = (
        text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
    )
    return set(LOWER_FOLDED.sub("", rest))


def _fold(text: str) -> tuple[str, list[tuple[int, int]] | None]:
    """fold(), and where characters folded to more (or fewer) than one: [(original index, folded length)].

    None instead of the list when the whole text had to be normalised (then only a per-cluster
    alignment recovers offsets).
    """
    if text.isascii():
        return text.lower(), []
    others = _non_ascii(text)
    if any(_is_mark(c) for c in others):
        text = _normalise(text)
        for c in _non_ascii(text):
            folded = _fold_char(c)
            if folded != c and folded != c.lower():
                text = text.replace(c, folded)
        return text.lower(), None
    resized: list[str] = []
    for c in others:
        folded = _fold_char(c)
        if len(folded) != 1:
            resized.append(c)
    expansions: list[tuple[int, int]] = []
    for c in resized:
        # str.find skips to each occurrence far faster than a regex scans for a character class.
        length = len(_fold_char(c))
        i = text.find(c)
        while i != -1:
            expansions.append((i, length))
            i = text.find(c, i + 1)
    expansions.sort()
    for c in others:
        folded = _fold_char(c)
        # The final lower() does what folding does to most upper-case letters (Cyrillic, Greek):
        # one pass over the text instead of one per letter.
        if folded != c and folded != c.lower():
            text = text.replace(c, folded)
    return text.lower(), expansions


# Word characters stay, ASCII punctuation becomes a space; bytes >= 0x80 (UTF-8 of the non-ASCII word
# characters that fold() left) stay as they are.
_WORD_TABLE = bytes(
    c if c >= 128 or chr(c).isalnum() or c in (ord("_"), ord("'"), 0) else ord(" ") for c in range(256)
)


def _words_only(folded: str) -> str:
    """Separators -> spaces, sentence marks kept, stray apostrophes removed."""
    if folded.isascii():
        words = folded.encode("ascii").translate(_WORD_TABLE).decode("ascii")
    else:
        words = folded.encode("utf-8").translate(_WORD_TABLE).decode("utf-8")
    if "'" in words:
        # Keep an apostrophe only between two word characters.
        words = " " + words + " "
        for pair in ("''", " '", "' ", "\x00'", "'\x00"):
            while pair in words:
                words = words.replace(pair, pair.replace("'", " "))
        words = words[1:-1]
    return words


# --- sentences ---------------------------------------------------------------------------------------

_ABBREV_2 = "mr|ms|dr|st|jr|sr|co|no|vs|lt|mt|ft"
_ABBREV_3 = (
    "mrs|gen|col|sgt|maj|adm|gov|sen|rep|inc|ltd|jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec|cpl|rev|est"
)
_ABBREV_4 = "capt|sept|corp|prof|dept|cmdr|brig"
_UPPER_START = "A-Z0-9\u00c0-\u00de\u0400-\u042f\u0490\u0404\u0406\u0407"
# One punctuation mark (see _sentence_ends for how candidates are found), then the cheap test first (what
# follows: space and an upper-case letter or digit), and only then the look-behinds that skip initials
# ("N.", "U.S.") and common abbreviations. All are zero-width: their order does not change the result.
_SENTENCE_END = re.compile(
    r"[.!?…。！？]"
    rf"(?:(?<=[。！？])|(?=[.!?…]*[\"'’”»)\]]*\s+[\"'‘“«(\[]*[{_UPPER_START}]))"
    r"(?<!\b[^\W\d_]\.)"
    rf"(?<!\b(?i:{_ABBREV_2})\.)"
    rf"(?<!\b(?i:{_ABBREV_3})\.)"
    rf"(?<!\b(?i:{_ABBREV_4})\.)"
)
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SHORT_LINE = 70


_END_CHARS = ".!?…。！？"


def _sentence_ends(text: str) -> list[int]:
    """Where _SENTENCE_END matches: the same as finditer, but the candidates are found with str.find.

    Each match is one character wide, so testing every punctuation mark on its own gives finditer's
    result; str.find skips the text between marks several times faster than the regex engine's scan
    for a character class (~65 µs of a 4.5 KB article).
    """
    found: list[int] = []
    match = _SENTENCE_END.match
    for char in _END_CHARS:
        i = text.find(char)
        while i != -1:
            if match(text, i):
                found.append(i)
            i = text.find(char, i + 1)
    found.sort()
    return found


def sentence_marks(text: str) -> list[int]:
    """Indices of the characters of `text` that end a sentence (a final punctuation mark or a newline)."""
    marks = _sentence_ends(text)
    if "\n" in text:
        marks.extend(m.start() for m in _BLANK_LINE.finditer(text))
        line_start = 0
        nl = text.find("\n")
        while nl != -1:
            if nl - line_start < _SHORT_LINE:
                marks.append(nl)
            line_start = nl + 1
            nl = text.find("\n", line_start)
        marks = sorted(set(marks))
    return marks


def _with_marks(text: str, marks: list[int]) -> str:
    if not marks:
        return text
    pieces = []
    prev = 0
    for i in marks:
        pieces.append(text[prev:i])
        prev = i + 1
    pieces.append(text[prev:])
    return SENTENCE_MARK.join(pieces)


# --- stems -------------------------------------------------------------------------------------------

_ENGLISH = Stemmer.Stemmer("english")
_RUSSIAN = Stemmer.Stemmer("russian")
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_LIMIT = 100_000  # ~25 MB


def _script_stemmer(token: str) -> Stemmer.Stemmer | None:
    if token.isascii():
        return _ENGLISH
    for c in token:
        if c.isalpha():
            if c < "\u0250" or "\u1e00" <= c <= "\u1eff":
                return _ENGLISH
            if "\u0400" <= c <= "\u052f":
                return _RUSSIAN
            return None
    return None


def stem(token: str) -> str:
    """The stem of one folded token (cached)."""
    s = _STEM_CACHE.get(token)
    if s is None:
        stemmer = _script_stemmer(token)
        s = stemmer.stemWord(token) if stemmer is not None else token
        if len(_STEM_CACHE) < _STEM_CACHE_LIMIT:
            _STEM_CACHE[token] = s
    return s


def stem_probe(word_stem: str) -> str:
    """The beginning that every folded token with this stem starts with.

    Snowball's English stemmer cuts endings and rewrites at most the end of what is left: y -> i
    ("armies" -> "armi"), an e added or kept ("hoping" -> "hope", "ational" -> "ate"), "biliti" ->
    "ble" or "bl" ("possibility" -> "possibl"), and the special words ("dying" -> "die", "skies" ->
    "sky"); the Russian stemmer only cuts. So the stem less a final "ie", or one final e, i or y, and
    then less the l of a final "bl", begins every word with that stem. tests/worker/core/test_gate.py
    checks it on the 119,000 distinct words of the shared article corpus and 2.1 million suffixed forms
    of them (-ing, -ies, -ility, -ization...), when the corpus is present."""
    probe = word_stem
    if probe.endswith("ie"):
        probe = probe[:-2]
    elif probe[-1:] in ("e", "i", "y"):
        probe = probe[:-1]
    if probe.endswith("bl"):
        probe = probe[:-1]
    return probe or word_stem[:1]


def stems_of(distinct: set[str]) -> list[str]:
    """The stems of a set of tokens, in the set's iteration order (cached stems, one C-level map)."""
    cache = _STEM_CACHE
    unseen = distinct.difference(cache)
    if unseen:
        # Every article brings a few new tokens (names, numbers): stem just those, not the whole article.
        if len(cache) + len(unseen) > _STEM_CACHE_LIMIT:
            if len(unseen) > _STEM_CACHE_LIMIT:
                return list(map(stem, distinct))
            # A news stream never runs out of new names and numbers: start a new generation rather than
            # grow without bound (or stem every new word the slow way once full). The common words are
            # back within an article or two.
            cache.clear()
            unseen = distinct
        for token in unseen:
            stem(token)
    return list(map(cache.__getitem__, distinct))


# --- prepared text -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """One field of an article (title or body) ready for matching. Offsets are computed on demand."""

    original: str
    words: str  # fold(original): separators as spaces, sentence marks as NUL; the stream's tokens
    expansions: list[tuple[int, int]] | None  # see _fold()
    stream: str
    distinct: set[str]  # the distinct tokens
    stems: list[str]  # stems_of(distinct): the stem of each distinct token, in the set's order
    marks: list[int]  # sentence-ending character indices in `original`
    _tokens: list[str] | None = field(default=None, repr=False)
    _starts: list[int] | None = field(default=None, repr=False)
    _spans: list[tuple[int, int]] | None = field(default=None, repr=False)

    @property
    def tokens(self) -> list[str]:
        if self._tokens is None:
            self._tokens = self.stream.split()
        return self._tokens

    def sentences(self) -> list[list[str]]:
        """The tokens, sentence by sentence."""
        return [s.split() for s in self.stream.split("  ") if s.strip()]

    @property
    def starts(self) -> list[int]:
        """Stream offset of every token."""
        if self._starts is None:
            parts = self.stream.split(" ")
            # Part j starts at the lengths of the parts before it plus one space after each.
            offsets = map(add, accumulate(map(len, parts), initial=0), count())
            self._starts = list(compress(offsets, parts))
        return self._starts

    def stem_positions(self, stems: set[str] | frozenset[str]) -> dict[str, list[int]]:
        """For each of these stems that occurs, the sorted token indices of the tokens that have it.

        One pass over the tokens at C level picks those with a wanted stem; only they (a few per cent
        of an article, however many stems a watchlist has) are grouped in Python."""
        wanted = list(map(stems.__contains__, self.stems))
        form_stem = dict(zip(compress(self.distinct, wanted), compress(self.stems, wanted), strict=True))
        out: dict[str, list[int]] = {}
        if not form_stem:
            return out
        tokens = self.tokens
        selected = list(map(form_stem.__contains__, tokens))
        for index, token_stem in zip(
            compress(count(), selected),
            map(form_stem.__getitem__, compress(tokens, selected)),
            strict=True,
        ):
            positions = out.get(token_stem)
            if positions is None:
                out[token_stem] = [index]
            else:
                positions.append(index)
        return out

    def token_at(self, offset: int) -> int:
        """The index of the token that starts at (or contains) stream offset `offset`."""
        return bisect_right(self.starts, offset) - 1

    def span(self, index: int) -> tuple[int, int]:
        """Character offsets in the ORIGINAL text of token `index`."""
        if self._spans is None:
            self._spans = _original_spans(self)
        spans = self._spans
        if not spans:
            return (0, 0)
        return spans[min(index, len(spans) - 1)]

    def sentence_bounds(self, offset: int) -> tuple[int, int]:
        """The original-text bounds of the sentence that contains original offset `offset`."""
        i = bisect_right(self.marks, offset - 1)
        start = self.marks[i - 1] + 1 if i > 0 else 0
        end = self.marks[i] + 1 if i < len(self.marks) else len(self.original)
        return start, end


def prepare(text: str) -> Prepared:
    """Fold, mark sentences and tokenise one field of an article."""
    marks = sentence_marks(text)
    folded, expansions = _fold(_with_marks(text, marks))
    words = _words_only(folded)
    if SENTENCE_MARK in words:
        # A mark becomes a token of its own, then an empty string: two (or more) spaces between sentences.
        spaced = words.replace(SENTENCE_MARK, " \x00 ")
        stream = " " + " ".join(spaced.split()).replace(SENTENCE_MARK, "") + " "
    else:
        stream = " " + " ".join(words.split()) + " "
    tokens = stream.split()
    distinct = set(tokens)
    return Prepared(
        original=text,
        words=words,
        expansions=expansions,
        stream=stream,
        distinct=distinct,
        stems=stems_of(distinct),
        marks=marks,
        _tokens=tokens,
    )


def tokenize(text: str) -> list[str]:
    """The folded tokens of a text (one flat list, sentence bounds ignored)."""
    return _words_only(fold(text)).split()


def _original_spans(prepared: Prepared) -> list[tuple[int, int]]:
    if prepared.expansions is None:
        return _aligned_spans(prepared.original)
    parts = prepared.words.replace(SENTENCE_MARK, " ").split(" ")
    starts = compress(map(add, accumulate(map(len, parts), initial=0), count()), parts)
    spans = [(start, start + len(token)) for start, token in zip(starts, prepared.tokens, strict=False)]
    if prepared.expansions:
        spans = _unexpand(spans, prepared.expansions)
    return spans


def _unexpand(spans: list[tuple[int, int]], expansions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Folded offsets -> original offsets, given where characters folded to a different length."""
    folded_starts: list[int] = []
    shift_after: list[int] = []
    origins: list[int] = []
    delta = 0
    for origin, length in expansions:
        folded_starts.append(origin + delta)
        origins.append(origin)
        delta += length - 1
        shift_after.append(delta)

    def back(offset: int, is_end: bool) -> int:
        k = bisect_right(folded_starts, offset - 1 if is_end else offset) - 1
        if k < 0:
            return offset
        inside_end = folded_starts[k] + shift_after[k] - (shift_after[k - 1] if k else 0) + 1
        if offset < inside_end or (is_end and offset == inside_end):
            return origins[k] + 1 if is_end else origins[k]
        return offset - shift_after[k]

    return [(back(a, False), back(b, True)) for a, b in spans]


_CLUSTER = re.compile(r".[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]*", re.DOTALL)


def _aligned_spans(original: str) -> list[tuple[int, int]]:
    """Token spans when folding changed the length: fold each character cluster and keep an offset map."""
    pieces: list[str] = []
    origin: list[int] = []
    for m in _CLUSTER.finditer(original):
        piece = fold(m[0])
        pieces.append(piece)
        origin.extend([m.start()] * len(piece))
    folded = "".join(pieces)
    origin.append(len(original))
    spans = []
    for m in TOKEN_RE.finditer(folded):
        start = origin[m.start()]
        end_index = m.end()
        end = origin[end_index] if end_index < len(origin) else len(original)
        # A cluster that folds to several characters ends where the next cluster starts.
        spans.append((start, max(end, start + 1)))
    return spans

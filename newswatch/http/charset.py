"""Guess the encoding of a fetched document that names none (feeds, pages): legacy web encodings only."""

from __future__ import annotations

#: The single- and multi-byte encodings that real pages and feeds without a declaration use. An open-ended
#: guess on a short text picks exotic code pages (mac_cyrillic for Windows-1251 Russian, cp1257 for
#: Portuguese), so charset-normalizer only chooses among these.
LEGACY_ENCODINGS = (
    "cp1252", "cp1251", "cp1250", "koi8_r", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "iso8859_15",
    "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr",
)  # fmt: skip


def guess_legacy_encoding(body: bytes) -> str | None:
    """charset-normalizer's pick among LEGACY_ENCODINGS for `body` (not valid UTF-8), or None."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(body[:65536], cp_isolation=list(LEGACY_ENCODINGS)))
    if not matches:
        return None
    best = matches[0]
    # Coherence (language likelihood) is noisy on short texts; windows-1252, the most common legacy web
    # encoding, wins whenever it decodes as cleanly (same chaos) as the best guess.
    if any(match.encoding == "cp1252" and match.chaos <= best.chaos for match in matches):
        return "windows-1252"
    return str(best.encoding)

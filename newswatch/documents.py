"""Reading articles from files and stdin into `Document` messages: size limit, encoding, format sniffing."""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from newswatch.messages import Document, DocumentFormat, Source
from newswatch.settings import Settings

DEFAULT_MAX_BYTES: int = Settings.max_article_bytes

EXTENSION_FORMATS: dict[str, DocumentFormat] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".json": "json",
}

# Checked in this order: the UTF-32 LE mark begins with the UTF-16 LE one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml\b[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_SIGNS = re.compile(
    r"<(?:!doctype\s+html|html|head|body|article|main|div|p|meta|title|h[1-6]|br|span|a\s)[\s/>]?",
    re.IGNORECASE,
)
# Control characters other than tab, newline, carriage return and form feed do not occur in text.
_NON_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SNIFF_CHARS = 8192
_MAX_NON_TEXT_SHARE = 0.02


class InputError(Exception):
    """An input that cannot be read as an article; str() is one line naming the input."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def iter_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The files named by `paths`: a folder means its files, recursively and sorted, hidden ones skipped.

    Anything that is not a folder is yielded as given, so that `read_path` reports a missing file.
    """
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield path
            continue
        found: list[Path] = []
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            found.extend(Path(folder, name) for name in files if not name.startswith("."))
        yield from sorted(found)


def read_path(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """One file as a Document with the url `file://<absolute path>`; raises InputError on bad input."""
    path = Path(path)
    data = _read_limited(path, max_bytes)
    fmt = EXTENSION_FORMATS.get(path.suffix.lower())
    body = decode_bytes(data, path, fmt)
    fmt = fmt or sniff_format(body)
    url = path.resolve().as_uri()
    return _document(path, body, fmt, url, Source(kind="file", name=str(path), url=url))


def read_stdin(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str = "<stdin>",
    fmt: DocumentFormat | None = None,
) -> Document:
    """Bytes read from standard input as a Document; the format is sniffed unless given."""
    if len(data) > max_bytes:
        raise InputError(name, f"input is {_over_limit(max_bytes)}")
    if not data.strip():
        raise InputError(name, "input is empty")
    body = decode_bytes(data, name, fmt)
    fmt = fmt or sniff_format(body)
    return _document(name, body, fmt, "stdin:-", Source(kind="cli", name="stdin"))


def decode_bytes(data: bytes, name: str | os.PathLike[str], fmt: DocumentFormat | None = None) -> str:
    """Text from bytes: a byte-order mark wins, then (for HTML/XML) a declared charset, else strict UTF-8."""
    encoding, declared = "utf-8", None
    for mark, codec in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            encoding = codec
            break
    else:
        nul = data.find(b"\x00")
        if nul >= 0:
            raise InputError(name, f"binary file, not text (NUL byte at offset {nul})")
        if fmt in (None, "html"):
            declared = _declared_charset(data[:4096])
            if declared:
                encoding = declared
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        if _looks_binary(data[:_SNIFF_CHARS].decode("latin-1")):
            raise InputError(name, "binary file, not text") from None
        label = codecs.lookup(encoding).name.replace("-sig", "").upper()
        where = f"byte 0x{data[error.start]:02x} at offset {error.start}"
        if encoding == declared:
            reason = f"not valid {label} (the charset it declares): {where}"
        elif encoding == "utf-8" and fmt == "html":
            reason = f"not valid UTF-8: {where}; save it as UTF-8 or declare its charset (<meta charset=...>)"
        else:
            reason = f"not valid {label}: {where}; save it as UTF-8"
        raise InputError(name, reason) from None
    text = text.removeprefix("\ufeff")
    if _looks_binary(text[:_SNIFF_CHARS]):
        raise InputError(name, "binary file, not text (control characters)")
    if not text.strip():
        raise InputError(name, "file is empty" if not data else "file holds only white space")
    return text


def sniff_format(text: str) -> DocumentFormat:
    """The format of a text with no telling file extension: a JSON object, HTML, else plain text."""
    start = text.lstrip()
    if start.startswith("{"):
        try:
            if isinstance(json.loads(start), dict):
                return "json"
        except ValueError:
            pass
    if start.startswith("<") and _HTML_SIGNS.search(start[:_SNIFF_CHARS]):
        return "html"
    return "text"


def parse_json_article(body: str, name: str | os.PathLike[str]) -> dict[str, Any]:
    """The object of a JSON article file, checked: it must have a non-empty "text" or "html" string."""
    try:
        data = json.loads(body)
    except ValueError as error:
        raise InputError(name, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError(name, f'JSON must be an object with "text" or "html", not {type(data).__name__}')
    content = [key for key in ("text", "html") if isinstance(data.get(key), str) and data[key].strip()]
    if not content:
        raise InputError(name, 'JSON object has no non-empty "text" or "html" string')
    for key in ("title", "url", "published", "author", "language"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputError(name, f'JSON "{key}" must be a string')
    return data


def _document(
    name: str | os.PathLike[str], body: str, fmt: DocumentFormat, url: str, source: Source
) -> Document:
    if fmt != "json":
        return Document(url=url, format=fmt, body=body, source=source)
    data = parse_json_article(body, name)
    return Document(
        url=url,
        format="json",
        body=body,
        source=source,
        title=(data.get("title") or "").strip(),
        published=data.get("published") or None,
        author=(data.get("author") or "").strip(),
        language=data.get("language") or None,
    )


def _read_limited(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing before reading anything when it is over `max_bytes`."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputError(path, "is a folder (give files, or a folder to read all its files)")
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
            raise InputError(path, "not a regular file")
        if info.st_size > max_bytes:
            raise InputError(path, f"file is {_size(info.st_size)}, {_over_limit(max_bytes)}")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grows, or a pipe, still stops at the limit
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder") from None
    except OSError as error:
        raise InputError(path, error.strerror or str(error)) from None
    if len(data) > max_bytes:
        raise InputError(path, f"file is {_over_limit(max_bytes)}")
    if not data:
        raise InputError(path, "file is empty")
    return data


def _declared_charset(head: bytes) -> str | None:
    """The charset an HTML/XML head declares, as browsers read it; None when absent or unknown."""
    found = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if not found:
        return None
    try:
        name = codecs.lookup(found.group(1).decode("ascii")).name
    except LookupError:
        return None
    # What browsers do (WHATWG Encoding): Latin-1 and ASCII labels mean windows-1252, and a page that
    # declares UTF-16 in ASCII-compatible bytes cannot really be UTF-16.
    if name in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    if name.startswith("utf-16") or name.startswith("utf-32"):
        return "utf-8"
    return name


def _looks_binary(sample: str) -> bool:
    return bool(sample) and len(_NON_TEXT.findall(sample)) > _MAX_NON_TEXT_SHARE * len(sample)


def _over_limit(max_bytes: int) -> str:
    return f"over the {_size(max_bytes)} size limit (NEWSWATCH_MAX_ARTICLE_BYTES)"


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if count >= 1024:
        return f"{count / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{count} bytes"

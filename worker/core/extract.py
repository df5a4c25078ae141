"""Extraction: a Document (text, Markdown, HTML or JSON) becomes an Article with title, text and metadata.

Pure: no I/O. HTML goes through trafilatura (main text, title, date, author) with a plain lxml fallback;
poison markup is bounded before trafilatura sees it, and anything unusable raises ExtractionError.

Title of plain text and Markdown: a Markdown file that opens with a heading takes it as its title; otherwise
the first line is the title when it looks like a headline — at most 150 characters and 20 words, not ending
in `.`, `,`, `;` or `:`, and followed by more text. The title line is then left out of the text. A title
handed over by the source (a feed entry, a JSON file) always wins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from newswatch.messages import Document, Source
from worker.core.article import Article
from worker.core.language import detect_language, language_code

#: HTML larger than this is refused (the file and HTTP limits normally stop it earlier).
MAX_HTML_CHARS = 12 * 1024 * 1024
#: trafilatura costs about 0.12 ms per element; real news pages have a few thousand.
MAX_HTML_ELEMENTS = 20_000
#: trafilatura costs about 0.7 s per million characters of text; real articles have under 100,000.
#: A page with more text skips main-text extraction and keeps all its text.
MAX_TRAFILATURA_TEXT_CHARS = 1_000_000
#: markdown-it-py takes up to ~40 µs per character on adversarial input (unclosed brackets, emphasis
#: runs); larger Markdown is kept as plain text, which the matcher reads just as well.
MAX_MARKDOWN_CHARS = 100_000
TITLE_MAX_CHARS = 150
TITLE_MAX_WORDS = 20

_BLOCK_TAGS = (
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "main", "header", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "figure", "figcaption", "dd", "dt", "hr",
)  # fmt: skip
_NOT_TEXT_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "object", "head")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_FIELD = re.compile(
    r"^(title|date|published|author)\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE
)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n{3,}")


class ExtractionError(Exception):
    """A document whose article cannot be extracted; str() is one line saying why."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """An extracted article and how it was obtained (`note` says why a fallback was used)."""

    article: Article
    method: str
    note: str = ""


@dataclass(slots=True)
class _Parts:
    title: str
    text: str
    method: str
    published: str | None = None
    author: str = ""
    url: str = ""
    note: str = ""


def extract(document: Document, *, detect: bool = True) -> Article:
    """The Article in `document`; raises ExtractionError when there is none.

    With `detect=False` the article's language is only the source's hint; `with_language` detects it
    later, for the few articles that need it (the worker: those that match a topic).
    """
    return extract_with_report(document, detect=detect).article


def with_language(article: Article) -> Article:
    """The article with its language detected from its text (the source's hint where detection fails)."""
    detected = detect_language(f"{article.title}\n{article.text}")
    return replace(article, language=detected) if detected and detected != article.language else article


def extract_with_report(document: Document, *, detect: bool = True) -> Extraction:
    """Like `extract`, and also which method produced the text and why a fallback was used."""
    parts = _extract_parts(document)
    title = document.title.strip() or parts.title
    text = parts.text
    if not text.strip():
        raise ExtractionError(f"no article text in {document.format} document")
    article = Article(
        id=document.article_id,
        url=parts.url or document.url,
        title=title,
        text=text,
        published=document.published or parts.published,
        language=(detect and detect_language(f"{title}\n{text}")) or language_code(document.language),
        author=document.author or parts.author,
        source=_source_json(document.source),
        published_is_fallback=document.published_is_fallback,
    )
    return Extraction(article=article, method=parts.method, note=parts.note)


def _source_json(source: Source) -> dict[str, Any]:
    return {"kind": source.kind, "name": source.name, "url": source.url, "tags": list(source.tags)}


def _extract_parts(document: Document) -> _Parts:
    body = document.body
    if document.format == "text":
        return _plain_text(body, has_title=bool(document.title.strip()))
    if document.format == "markdown":
        return _markdown(body, has_title=bool(document.title.strip()))
    if document.format == "html" or (document.format == "url" and body):
        return _html(body, document.url)
    if document.format == "json":
        return _json(body, document.url)
    if document.format == "url":
        raise ExtractionError(f"{document.url}: the page was not fetched (empty body)")
    raise ExtractionError(f"unknown document format {document.format!r}")


# -- plain text -------------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Newlines as \\n, no trailing spaces, at most one blank line in a row, stripped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    lines = [line.rstrip() for line in text.removeprefix("\ufeff").split("\n")]
    text = "\n".join(lines)
    # The regex engine scans a whole article for "\n{3,}" slowly (~80 µs of 4.5 KB); str's search is fast.
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def split_title(text: str) -> tuple[str, str]:
    """(title, rest) when the first line of `text` looks like a headline, else ("", text)."""
    first, _, rest = text.partition("\n")
    candidate = first.strip().lstrip("#").strip()
    looks_like_title = (
        candidate
        and rest.strip()
        and len(candidate) <= TITLE_MAX_CHARS
        and len(candidate.split()) <= TITLE_MAX_WORDS
        and not candidate.endswith((".", ",", ";", ":"))
    )
    return (candidate, rest.strip()) if looks_like_title else ("", text)


def _plain_text(body: str, has_title: bool) -> _Parts:
    text = normalise_text(body)
    title, text = ("", text) if has_title else split_title(text)
    return _Parts(title=title, text=text, method="text")


# -- Markdown ---------------------------------------------------------------------------------------


@cache
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_to_text(source: str) -> tuple[str, str]:
    """(opening heading or "", plain text) of a Markdown document: markup gone, link and image text kept."""
    tokens = _markdown_parser().parse(source)
    blocks: list[str] = []
    heading = ""
    row: list[str] | None = None
    for index, token in enumerate(tokens):
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if row is not None:
                row.append(text)
            elif index and tokens[index - 1].type == "heading_open" and not blocks and not heading:
                heading = text
            else:
                blocks.append(text)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.rstrip("\n"))
        elif token.type == "html_block":
            blocks.append(_SPACES.sub(" ", _TAG.sub(" ", token.content)).strip())
    text = "\n\n".join(block.strip() for block in blocks if block.strip())
    return heading.strip(), text


def _inline_text(children: list[Any]) -> str:
    pieces: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type == "softbreak":
            pieces.append(" ")  # a line wrapped inside a paragraph: the words still run on
        elif child.type == "hardbreak":
            pieces.append("\n")
        elif child.type == "image":
            pieces.append(_inline_text(child.children or []) or child.content)
    return "".join(pieces)


def _markdown(body: str, has_title: bool) -> _Parts:
    if len(body) > MAX_MARKDOWN_CHARS:
        parts = _plain_text(body, has_title)
        parts.method, parts.note = (
            "text",
            f"Markdown over {MAX_MARKDOWN_CHARS:,} characters read as plain text",
        )
        return parts
    body = normalise_text(body)
    fields: dict[str, str] = {}
    front = _FRONT_MATTER.match(body)
    if front:
        for key, value in _FRONT_MATTER_FIELD.findall(front.group(1)):
            fields.setdefault(key.lower(), value.strip().strip("\"'"))
        body = body[front.end() :]
    heading, text = markdown_to_text(body)
    title = fields.get("title", "")
    if heading and (title or has_title):
        text = f"{heading}\n\n{text}"  # the heading is not needed as the title: keep it as text
    elif heading:
        title = heading
    elif not title and not has_title:
        title, text = split_title(text)
    return _Parts(
        title=title,
        text=normalise_text(text),
        method="markdown",
        published=fields.get("published") or fields.get("date"),
        author=fields.get("author", ""),
    )


# -- HTML -------------------------------------------------------------------------------------------


def _html(html: str, url: str) -> _Parts:
    tree = _parse_html(html)
    text_chars = _visible_text_length(tree)
    result: Any = None
    if text_chars > MAX_TRAFILATURA_TEXT_CHARS:
        failure = f"page has {text_chars:,} characters of text, too many for main-text extraction; used all"
    else:
        result, failure = _trafilatura(tree, url)
    title, text = "", ""
    if result is not None:
        title, text = (result.title or "").strip(), normalise_text(result.text or "")
        if text:
            return _Parts(
                title=title or _html_title(tree),
                text=text,
                method="trafilatura",
                published=result.date or None,
                author=(result.author or "").strip(),
            )
    title = title or _html_title(tree)
    text = _html_text(tree)  # changes the tree: last
    if not text:
        raise ExtractionError("no text found in the HTML")
    return _Parts(
        title=title,
        text=text,
        method="lxml",
        note=failure or "trafilatura found no main text; used all the text of the page",
    )


def _parse_html(html: str) -> Any:
    """The lxml tree of `html`, refusing markup too large for extraction to finish in a few seconds."""
    import lxml.etree
    import lxml.html

    if len(html) > MAX_HTML_CHARS:
        raise ExtractionError(f"HTML is {len(html):,} characters, over the {MAX_HTML_CHARS:,} limit")
    try:
        try:
            tree = lxml.html.document_fromstring(html)
        except ValueError:  # a string that carries an XML encoding declaration must be parsed as bytes
            parser = lxml.html.HTMLParser(encoding="utf-8")
            tree = lxml.html.document_fromstring(html.encode("utf-8", "surrogatepass"), parser=parser)
    except (lxml.etree.LxmlError, ValueError) as error:
        raise ExtractionError(f"HTML cannot be parsed ({error})") from None
    # libxml2 itself stops nesting at 255 levels, so depth is bounded; the element count is not.
    for count, _ in enumerate(tree.iter(), start=1):
        if count > MAX_HTML_ELEMENTS:
            raise ExtractionError(f"HTML has more than {MAX_HTML_ELEMENTS:,} elements, too many to extract")
    return tree


def _visible_text_length(tree: Any) -> int:
    return sum(len(piece) for piece in tree.xpath("//text()[not(ancestor::script) and not(ancestor::style)]"))


def _trafilatura(tree: Any, url: str) -> tuple[Any, str]:
    """(trafilatura's result or None, why it failed)."""
    import trafilatura

    try:
        result = trafilatura.bare_extraction(
            tree,
            url=url if url.startswith(("http://", "https://")) else None,
            with_metadata=True,
            include_comments=False,
        )
    except Exception as error:  # a bug or a recursion limit in the extractor must not lose the article
        return None, f"trafilatura failed ({type(error).__name__}: {error}); used all the text of the page"
    return result, ""


def _html_text(tree: Any) -> str:
    """All visible text of a page, one block element per line (the fallback when trafilatura finds none)."""
    for element in list(tree.iter(*_NOT_TEXT_TAGS)):
        element.drop_tree()
    for element in tree.iter(*_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
    lines = (_SPACES.sub(" ", line).strip() for line in tree.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


def _html_title(tree: Any) -> str:
    for path in ('//meta[@property="og:title"]/@content', "//title//text()", "//h1//text()"):
        found = " ".join(str(piece) for piece in tree.xpath(path)).strip()
        if found:
            return _SPACES.sub(" ", found)
    return ""


# -- JSON -------------------------------------------------------------------------------------------


def _json(body: str, url: str) -> _Parts:
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ExtractionError(f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ExtractionError('JSON article must be an object with "text" or "html"')
    title = _string(data, "title")
    if _string(data, "html"):
        parts = _html(data["html"], _string(data, "url") or url)
    elif _string(data, "text"):
        parts = _plain_text(data["text"], has_title=bool(title))
    else:
        raise ExtractionError('JSON article has no non-empty "text" or "html" string')
    parts.title = title or parts.title
    parts.url = _string(data, "url")
    parts.published = _string(data, "published") or parts.published
    parts.author = _string(data, "author") or parts.author
    parts.method = f"json+{parts.method}"
    return parts


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""

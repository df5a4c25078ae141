"""Extraction of articles from text, Markdown, HTML and JSON documents, and its limits on poison input."""

from __future__ import annotations

import collections
import gzip
import json
import re
import statistics
import time
from pathlib import Path

import pytest

from newswatch.documents import decode_bytes
from newswatch.messages import Document, Source
from worker.core.extract import ExtractionError, extract, extract_with_report

BODY = (
    "Ukrainian special forces say the North Korean units sent to the Kursk region have not been seen "
    "at the front for about three weeks. Officials in Kyiv believe heavy casualties forced the withdrawal.\n"
    "Pyongyang has never confirmed that its soldiers were there."
)


def doc(body: str, fmt: str = "text", **hints: object) -> Document:
    return Document(url="file:///tmp/story", format=fmt, body=body, **hints)  # type: ignore[arg-type]


def test_plain_text_keeps_its_words_with_newlines_normalised() -> None:
    article = extract(doc("\ufeff\r\n" + BODY.replace("\n", "\r\n") + "   \r\n\r\n\r\n\r\n"))
    assert article.text == BODY
    assert article.title == ""  # the first line is a long sentence, not a headline
    assert article.id == doc("x").article_id
    assert article.url == "file:///tmp/story"
    assert article.language == "en"


@pytest.mark.parametrize(
    ("first_line", "is_title"),
    [
        ("North Korean troops leave the Kursk front", True),
        ("Are North Korean troops gone from Kursk?", True),
        ("North Korean troops left the Kursk front, officials said.", False),
        ("Reported by our correspondent:", False),
        ("word " * 25, False),
        ("A" * 151, False),
    ],
)
def test_first_line_of_text_is_the_title_when_it_looks_like_one(first_line: str, is_title: bool) -> None:
    article = extract(doc(f"{first_line}\n\n{BODY}"))
    if is_title:
        assert article.title == first_line
        assert article.text == BODY
    else:
        assert article.title == ""
        assert article.text.startswith(first_line.strip())


def test_a_single_line_is_text_not_a_title_and_a_source_title_wins() -> None:
    assert extract(doc("North Korean troops leave Kursk")).title == ""
    article = extract(doc(f"Short headline here\n{BODY}", title="Feed entry title"))
    assert article.title == "Feed entry title"
    assert article.text.startswith("Short headline here")


def test_markdown_markup_is_stripped_and_link_text_kept() -> None:
    markdown = (
        "---\ntitle: Front matter title\ndate: 2025-01-31\nauthor: A. Reporter\n---\n"
        "# North Korean *troops* withdrawn\n\n"
        "According to [The New York Times](https://nytimes.com/x), **North Korean** soldiers\n"
        "were pulled back from the `Kursk` front.\n\n"
        "- first point\n- second _point_\n\n"
        "> quoted words\n\n"
        "```python\nprint('code block')\n```\n\n"
        "![a captured soldier](photo.jpg)\n\n"
        "| place | troops |\n|---|---|\n| Kursk | 11,000 |\n\n"
        "<div>raw <b>html</b> block</div>\n"
    )
    article = extract(doc(markdown, "markdown"))
    assert article.title == "Front matter title"
    assert article.published == "2025-01-31"
    assert article.author == "A. Reporter"
    text = article.text
    assert (
        "North Korean troops withdrawn" in text
    )  # the heading stays as text when front matter names the title
    assert (
        "According to The New York Times, North Korean soldiers were pulled back from the Kursk front."
        in text
    )
    for word in ("first point", "second point", "quoted words", "print('code block')", "a captured soldier"):
        assert word in text
    assert "place | troops" in text and "Kursk | 11,000" in text
    assert "raw html block" in text
    for markup in ("#", "*", "**", "](", "`", "```", "![", "|---", "<div>", "---"):
        assert markup not in text, markup


def test_markdown_opening_heading_becomes_the_title() -> None:
    article = extract(doc(f"## N. Korean troops gone from Kursk\n\n{BODY}", "markdown"))
    assert article.title == "N. Korean troops gone from Kursk"
    assert article.text == BODY.replace("\n", " ")  # soft line breaks inside a paragraph run on


def test_html_main_text_title_date_and_author_with_trafilatura() -> None:
    paragraphs = "".join(f"<p>{line}</p>" for line in BODY.split("\n"))
    page = f"""<!DOCTYPE html><html lang="en"><head>
      <title>North Korean troops pulled back - Example News</title>
      <meta property="article:published_time" content="2025-01-31T10:00:00Z">
      <meta name="author" content="Jane Doe">
      </head><body>
      <nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li></ul></nav>
      <article><h1>North Korean troops pulled back</h1>{paragraphs}</article>
      <footer>Copyright Example News. All rights reserved. Subscribe to our newsletter.</footer>
      <script>var tracking = "North Korea";</script>
    </body></html>"""
    report = extract_with_report(doc(page, "html"))
    article = report.article
    assert report.method == "trafilatura"
    assert "North Korean troops pulled back" in article.title
    assert article.published == "2025-01-31"
    assert article.author == "Jane Doe"
    assert "not been seen at the front" in article.text
    assert "Pyongyang has never confirmed" in article.text
    assert "Subscribe to our newsletter" not in article.text
    assert "tracking" not in article.text
    assert article.language == "en"


def test_html_falls_back_to_all_text_with_a_reason_when_trafilatura_finds_nothing() -> None:
    page = "<html><head><title>Bulletin</title></head><body><aside>Kursk: troops gone.</aside></body></html>"
    report = extract_with_report(doc(page, "html"))
    assert report.method == "lxml"
    assert report.note
    assert report.article.text == "Kursk: troops gone."
    assert report.article.title == "Bulletin"


def test_html_with_no_text_is_an_extraction_error() -> None:
    with pytest.raises(ExtractionError, match="no text"):
        extract(doc("<html><body><script>var x = 1;</script><img src=a.png></body></html>", "html"))


def test_poison_html_fails_fast_with_a_clear_error() -> None:
    started = time.monotonic()
    many = "<html><body>" + "<p>Some sentence in a paragraph.</p>" * 100_000 + "</body></html>"
    with pytest.raises(ExtractionError, match="more than 20,000 elements"):
        extract(doc(many, "html"))
    deep = "<html><body>" + "<div>" * 100_000 + "buried" + "</div>" * 100_000 + "</body></html>"
    with pytest.raises(ExtractionError):
        extract(doc(deep, "html"))
    one_line = "<html><body><p>" + "word " * 1_800_000 + "</p></body></html>"  # 9 MB on one line
    report = extract_with_report(doc(one_line, "html"))
    assert report.method == "lxml" and "too many for main-text extraction" in report.note
    assert report.article.text.startswith("word word")
    assert time.monotonic() - started < 20


def test_adversarial_markdown_is_bounded() -> None:
    started = time.monotonic()
    report = extract_with_report(doc("[" * 2_000_000 + "Kursk", "markdown"))
    assert report.method == "text" and "plain text" in report.note
    assert report.article.text.endswith("Kursk")
    assert extract_with_report(doc("[a](" * 24_000 + " Kursk", "markdown")).method == "markdown"
    assert time.monotonic() - started < 10


def test_json_article_with_text_or_html() -> None:
    data = {
        "title": "Troops withdrawn",
        "text": BODY,
        "url": "https://example.org/nk",
        "published": "2025-01-30",
        "author": "Desk",
    }
    article = extract(doc(json.dumps(data), "json"))
    assert (article.title, article.text, article.url, article.published, article.author) == (
        "Troops withdrawn",
        BODY,
        "https://example.org/nk",
        "2025-01-30",
        "Desk",
    )
    article = extract(
        doc(json.dumps({"html": f"<html><body><article><p>{BODY}</p></article></body></html>"}), "json")
    )
    assert "Pyongyang has never confirmed" in article.text
    assert article.url == "file:///tmp/story"
    with pytest.raises(ExtractionError, match='no non-empty "text" or "html"'):
        extract(doc('{"title": "only a title"}', "json"))


def test_source_and_hints_are_carried_over() -> None:
    document = Document(
        url="https://example.org/a",
        format="text",
        body=BODY,
        source=Source(kind="feed", name="Example", url="https://example.org/rss", tags=("wire",)),
        published="2025-01-31T00:00:00Z",
        published_is_fallback=True,
        language="de-DE",
    )
    article = extract(document)
    assert article.source == {
        "kind": "feed",
        "name": "Example",
        "url": "https://example.org/rss",
        "tags": ["wire"],
    }
    assert article.published == "2025-01-31T00:00:00Z" and article.published_is_fallback
    assert article.language == "en"  # the text says English whatever the feed claims
    assert extract(doc("Kursk front", language="uk-UA")).language == "uk"


def test_url_document_must_be_fetched_first() -> None:
    with pytest.raises(ExtractionError, match="not fetched"):
        extract(Document(url="https://example.org/a", format="url", body=""))


CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora" / "articles" / "aeb"


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpora is absent")
def test_corpus_extraction_matches_the_ground_truth_bodies() -> None:
    truth = json.loads((CORPUS / "ground-truth.json").read_text(encoding="utf-8"))
    pages = sorted((CORPUS / "html").glob("*.html.gz"))
    assert len(pages) == 181

    def tokens(text: str) -> collections.Counter[str]:
        return collections.Counter(re.findall(r"\w+", text.lower()))

    scores, recalls, methods = [], [], collections.Counter[str]()
    started = time.monotonic()
    for page in pages:
        expected = truth[page.name.removesuffix(".html.gz")]
        body = decode_bytes(gzip.decompress(page.read_bytes()), page.name, "html")
        report = extract_with_report(Document(url=expected["url"], format="html", body=body))
        methods[report.method] += 1
        got, want = tokens(report.article.text), tokens(expected["articleBody"])
        common = sum((got & want).values())
        precision, recall = common / max(1, got.total()), common / max(1, want.total())
        scores.append(0.0 if not common else 2 * precision * recall / (precision + recall))
        recalls.append(recall)
    elapsed = time.monotonic() - started
    mean_f1 = statistics.mean(scores)
    print(
        f"\naeb corpus: {len(pages)} pages, token F1 mean {mean_f1:.3f} "
        f"median {statistics.median(scores):.3f}, "
        f"recall mean {statistics.mean(recalls):.3f}, methods {dict(methods)}, "
        f"{1000 * elapsed / len(pages):.0f} ms per page"
    )
    assert mean_f1 >= 0.90

"""Parsing feed bytes: every format, hostile DOCTYPEs refused before parsing, encodings, broken documents."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from producer.feeds.parse import FeedParseError, declares_entities, parse_feed

BASE = "https://news.example.org/feeds/world.xml"

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Example World Desk</title>
  <link>https://news.example.org/</link>
  <language>en-GB</language>
  <ttl>30</ttl>
  <item>
    <title>Convoy seen near the border</title>
    <link>/world/2024/11/convoy?utm_source=rss</link>
    <guid isPermaLink="false">story-1</guid>
    <description>Short teaser.</description>
    <content:encoded><![CDATA[<p>The <b>full</b> report.</p>]]></content:encoded>
    <pubDate>Tue, 05 Nov 2024 14:30:00 +0200</pubDate>
    <dc:creator>Ana Reporter</dc:creator>
  </item>
</channel>
</rss>"""

ATOM10 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de" xml:base="https://atom.example.com/blog/">
  <title>Atom Desk</title>
  <entry>
    <title type="html">Gipfel &lt;em&gt;vertagt&lt;/em&gt;</title>
    <link rel="alternate" href="2024/gipfel"/>
    <id>urn:uuid:1</id>
    <updated>2024-11-05T10:00:00Z</updated>
    <summary>Kurz.</summary>
    <content type="html">&lt;p&gt;Der Gipfel wurde vertagt.&lt;/p&gt;</content>
    <author><name>Bea Autorin</name></author>
  </entry>
</feed>"""

ATOM03 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#">
  <title>Old Atom</title>
  <entry>
    <title>Legacy entry</title>
    <link rel="alternate" type="text/html" href="https://old.example.com/1"/>
    <issued>2004-01-01T00:00:00Z</issued>
    <content type="text/plain" mode="escaped">Plain words.</content>
  </entry>
</feed>"""

RSS10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example.com/"><title>RDF Desk</title><link>https://rdf.example.com/</link></channel>
  <item rdf:about="https://rdf.example.com/a">
    <title>RDF item</title><link>https://rdf.example.com/a</link>
    <description>RDF text.</description><dc:date>2024-11-05T08:00:00+01:00</dc:date>
  </item>
</rdf:RDF>"""

RSS091 = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Netscape era</title><link>https://n.example.com/</link>
<item><title>Old item</title><link>https://n.example.com/1</link><description>Text.</description></item>
</channel></rss>"""


def test_rss2_gives_feed_metadata_and_entries() -> None:
    feed = parse_feed(RSS2, BASE, "application/rss+xml")
    assert (feed.kind, feed.title, feed.language, feed.ttl) == ("rss20", "Example World Desk", "en-GB", 1800)
    (entry,) = feed.entries
    assert entry.title == "Convoy seen near the border"
    assert entry.link == "https://news.example.org/world/2024/11/convoy?utm_source=rss"  # resolved
    assert entry.contents[0].value == "<p>The <b>full</b> report.</p>" and entry.contents[0].is_html
    assert entry.summary is not None and entry.summary.value == "Short teaser."
    assert entry.published == datetime(2024, 11, 5, 12, 30, tzinfo=UTC)
    assert entry.author == "Ana Reporter"


def test_atom10_resolves_links_against_xml_base_and_keeps_language() -> None:
    feed = parse_feed(ATOM10, BASE, "application/atom+xml")
    (entry,) = feed.entries
    assert feed.kind == "atom10" and entry.link == "https://atom.example.com/blog/2024/gipfel"
    assert entry.title_is_html and "<em>" in entry.title and entry.language == "de"
    assert entry.author == "Bea Autorin" and entry.published == datetime(2024, 11, 5, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("document", "kind", "title"),
    [(ATOM03, "atom03", "Legacy entry"), (RSS10, "rss10", "RDF item"), (RSS091, "rss091n", "Old item")],
)
def test_older_formats_are_read(document: bytes, kind: str, title: str) -> None:
    feed = parse_feed(document, BASE, "application/xml")
    assert feed.kind == kind and [entry.title for entry in feed.entries] == [title]


def test_json_feed_is_read_without_feedparser() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON Desk",
        "language": "fr",
        "items": [
            {
                "id": "1",
                "url": "articles/1",
                "title": "Premier",
                "content_html": "<p>Texte <i>complet</i>.</p>",
                "summary": "Résumé.",
                "date_published": "2024-11-05T09:00:00+01:00",
                "authors": [{"name": "Chloé"}],
            },
            {"id": "2", "content_text": "Only text.", "author": {"name": "Old Style"}},
            "not an item",
        ],
    }
    feed = parse_feed(
        json.dumps(document).encode(), "https://j.example.com/feed.json", "application/feed+json"
    )
    assert (feed.kind, feed.title, feed.language) == ("json1.1", "JSON Desk", "fr")
    first, second = feed.entries
    assert first.link == "articles/1" and first.contents[0].is_html and first.author == "Chloé"
    assert first.published == datetime(2024, 11, 5, 8, tzinfo=UTC) and first.language == "fr"
    assert second.contents[0].value == "Only text." and second.author == "Old Style"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<rss version="2.0"><channel><title>&c;</title><item><title>&c;</title></item></channel></rss>"""


def quadratic_blowup(size: int) -> bytes:
    """One big entity referenced many times: what makes feedparser's loose parser take gigabytes."""
    entity = b"x" * size
    refs = b"&big;" * size
    return (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "' + entity + b'">]>'
        b"<rss version='2.0'><channel><title>t</title><item><description>" + refs + b"</description></item>"
        b"</channel></rss>"
    )


UTF16_LAUGHS = BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "").encode("utf-16")


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (BILLION_LAUGHS, "application/rss+xml"),
        (BILLION_LAUGHS.replace(b"<!DOCTYPE", b"<!doctype").replace(b"<!ENTITY", b"<!entity"), None),
        (UTF16_LAUGHS, "application/rss+xml; charset=utf-16"),  # with a BOM
        (
            BILLION_LAUGHS.replace(b'version="1.0"', b'version="1.0" encoding="utf-16le"')
            .decode()
            .encode("utf-16-le"),
            "application/xml",
        ),  # no BOM, declared in the document
        (b"<!-- <a> --> " + BILLION_LAUGHS.split(b"?>", 1)[1], "text/xml"),  # an element-like comment first
        (quadratic_blowup(30_000), "application/rss+xml"),
    ],
    ids=["laughs", "lowercase", "utf16-bom", "utf16le-declared", "comment-first", "quadratic"],
)
def test_documents_declaring_entities_are_refused_before_parsing(
    document: bytes, content_type: str | None
) -> None:
    started = time.monotonic()
    with pytest.raises(FeedParseError, match="declares entities"):
        parse_feed(document, BASE, content_type)
    assert time.monotonic() - started < 1.0


def test_a_utf16_bomb_mislabelled_as_utf8_is_unreadable_not_expanded() -> None:
    with pytest.raises(FeedParseError):
        parse_feed(UTF16_LAUGHS, BASE, "application/rss+xml; charset=utf-8")


def test_a_doctype_without_entities_is_fine() -> None:
    assert not declares_entities(RSS091)
    assert parse_feed(RSS091, BASE).entries


@pytest.mark.parametrize(
    ("document", "content_type", "reason"),
    [
        (b"", None, "empty document"),
        (b"   \n", None, "empty document"),
        (b"<html><body><p>Welcome</p></body></html>", "text/html", "not a feed"),
        (b"just some words", "text/plain", "not a feed"),
        (b"{not json", "application/json", "not valid JSON"),
        (b'{"version": "2.0", "rss": {}}', "application/json", "not a JSON Feed"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "not valid JSON"),  # deep nesting
    ],
)
def test_what_is_not_a_feed_is_a_clear_error(document: bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(FeedParseError, match=reason):
        parse_feed(document, BASE, content_type)


def test_an_ill_formed_feed_is_recovered_and_flagged() -> None:
    broken = b"""<rss version="2.0"><channel><title>Broken & Co</title>
    <item><title>First</title><link>https://b.example.com/1?a=1&b=2</link>
      <description>One <b>bold</description></item>
    <item><title>Second</title><link>https://b.example.com/2</link></item>
    </channel>"""
    feed = parse_feed(broken, BASE, "application/rss+xml")
    assert [entry.title for entry in feed.entries] == ["First", "Second"]
    assert feed.problem


LATIN1_TITLE = "Les élèves français à l'été"
CYRILLIC_TITLE = "Северокорейские войска в Курской области"


def encoded_feed(title: str, encoding: str, declare: bool) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else ""
    text = (
        f"{declaration}<rss version='2.0'><channel><title>{title}</title><item><title>{title}</title>"
        f"<description>{title}. {title}. {title}.</description></item></channel></rss>"
    )
    return text.encode(encoding)


@pytest.mark.parametrize(
    ("title", "encoding"),
    [(LATIN1_TITLE, "iso-8859-1"), (CYRILLIC_TITLE, "windows-1251")],
    ids=["latin1", "cp1251"],
)
@pytest.mark.parametrize(
    ("content_type", "declare"),
    [
        ("application/rss+xml; charset={enc}", True),
        ("application/rss+xml; charset={enc}", False),
        ("application/rss+xml", True),
        ("text/xml", True),
        ("text/xml; charset={enc}", False),
        (None, True),
        ("application/rss+xml", False),  # nothing names the encoding: it is guessed
        ("text/xml", False),
    ],
)
def test_legacy_encodings_decode_with_and_without_a_charset(
    title: str, encoding: str, content_type: str | None, declare: bool
) -> None:
    document = encoded_feed(title, encoding, declare)
    feed = parse_feed(document, BASE, content_type.format(enc=encoding) if content_type else None)
    assert feed.title == title and feed.entries[0].title == title

"""Entries to Documents: fullest text as plain text, canonical absolute links, UTC dates with fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newswatch.messages import Source
from producer.feeds.entries import canonical_url, entry_to_document, feed_documents, html_to_text
from producer.feeds.feedlist import FeedSpec
from producer.feeds.parse import Content, ParsedFeed, RawEntry, parse_feed

FETCHED = datetime(2024, 11, 5, 12, 0, tzinfo=UTC)
SPEC = FeedSpec(url="https://news.example.org/feeds/world.xml", tags=("wire", "world"))
LONG = " ".join(["Troops were seen moving along the road near the border at dawn."] * 5)


def feed_of(*entries: RawEntry, title: str = "World Desk", language: str | None = "en-GB") -> ParsedFeed:
    return ParsedFeed(kind="rss20", base_url=SPEC.url, title=title, language=language, entries=list(entries))


def one(entry: RawEntry, spec: FeedSpec = SPEC, **feed: object):  # type: ignore[no-untyped-def]
    document = entry_to_document(entry, feed_of(entry, **feed), spec, FETCHED)  # type: ignore[arg-type]
    assert document is not None
    return document


def test_the_fullest_text_wins_and_html_becomes_text() -> None:
    entry = RawEntry(
        title="Convoy",
        link="https://news.example.org/a",
        contents=(Content(f"<p>{LONG}</p><script>track()</script><p>Second &amp; last.</p>", True),),
        summary=Content("A teaser.", True),
    )
    document = one(entry)
    assert document.body == f"{LONG}\n\nSecond & last."
    assert document.format == "text" and document.title == "Convoy"


def test_the_summary_is_used_when_there_is_no_content() -> None:
    document = one(
        RawEntry(title="Only summary", link="https://e.org/1", summary=Content(f"<b>{LONG}</b>", True))
    )
    assert document.body == LONG


def test_a_short_teaser_gets_the_title_in_front_so_two_stories_never_share_a_hash() -> None:
    first = one(RawEntry(title="Talks resume", link="https://e.org/1", summary=Content("Read more…", False)))
    second = one(RawEntry(title="Port reopens", link="https://e.org/2", summary=Content("Read more…", False)))
    assert first.body == "Talks resume\n\nRead more…" and first.content_hash != second.content_hash
    title_only = one(RawEntry(title="Headline only", link="https://e.org/3"))
    assert title_only.body == "Headline only"


def test_an_html_title_becomes_text() -> None:
    document = one(
        RawEntry(title="Summit <em>postponed</em> &amp; more", title_is_html=True, link="https://e.org/x")
    )
    assert document.title == "Summit postponed & more"


def test_an_entry_with_neither_title_nor_text_is_skipped() -> None:
    entry = RawEntry(link="https://e.org/empty", summary=Content("<p> </p>", True))
    assert entry_to_document(entry, feed_of(entry), SPEC, FETCHED) is None


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "../world/story?utm_source=rss&utm_medium=feed&b=2&a=1",
            "https://news.example.org/world/story?a=1&b=2",
        ),
        ("/story?fbclid=IwAR0abc&id=7#comments", "https://news.example.org/story?id=7"),
        ("HTTPS://News.Example.ORG:443/Story?gclid=x", "https://news.example.org/Story"),
        ("story.html", "https://news.example.org/feeds/story.html"),
        ("//cdn.example.net/a", "https://cdn.example.net/a"),
        ("mailto:desk@example.org", ""),
        ("javascript:alert(1)", ""),
        ("", ""),
    ],
)
def test_links_are_absolute_and_canonical(link: str, expected: str) -> None:
    assert canonical_url(link, SPEC.url) == expected


def test_a_missing_link_falls_back_to_a_permalink_id() -> None:
    assert one(RawEntry(title="t", id="https://e.org/p/1?utm_campaign=x")).url == "https://e.org/p/1"
    assert one(RawEntry(title="t", id="tag:e.org,2024:1")).url == ""


def test_published_is_utc_iso8601() -> None:
    moment = datetime(2024, 11, 5, 9, 30, tzinfo=UTC)
    document = one(RawEntry(title="t", link="https://e.org/1", published=moment))
    assert document.published == "2024-11-05T09:30:00Z" and not document.published_is_fallback


@pytest.mark.parametrize(
    ("published", "fallback"),
    [
        (None, True),
        (FETCHED + timedelta(days=2), True),  # a future date is the feed's mistake
        (FETCHED + timedelta(minutes=5), False),  # a little clock skew is fine
    ],
)
def test_a_missing_or_future_date_falls_back_to_fetch_time_and_is_flagged(
    published: datetime | None, fallback: bool
) -> None:
    document = one(RawEntry(title="t", link="https://e.org/1", published=published))
    assert document.published_is_fallback is fallback
    if fallback:
        assert document.published == "2024-11-05T12:00:00Z"


def test_source_author_language_and_full_text_come_from_entry_feed_and_file() -> None:
    spec = FeedSpec(url=SPEC.url, full_text=True, tags=("wire",))
    document = one(RawEntry(title="t", link="https://e.org/1", author="  Ana   Reporter "), spec=spec)
    assert document.source == Source(kind="feed", name="World Desk", url=SPEC.url, tags=("wire",))
    assert document.author == "Ana Reporter" and document.language == "en" and document.full_text
    assert one(RawEntry(title="t", link="https://e.org/1", language="de-AT")).language == "de"
    untitled = one(RawEntry(title="t", link="https://e.org/1"), title="", language=None)
    assert untitled.source.name == "news.example.org" and untitled.language is None


def test_html_to_text_keeps_words_apart_and_survives_odd_markup() -> None:
    assert html_to_text("<ul><li>one</li><li>two</li></ul>tail<br>next") == "one\n\ntwo\n\ntail\n\nnext"
    assert html_to_text("a<!-- hidden -->b <style>p{}</style>c") == "ab c"
    assert html_to_text("<div>" * 3000 + "deep" + "</div>" * 3000) == "deep"
    assert html_to_text("nul\x00 and \x0bcontrol <b>ok</b>") == "nul and control ok"
    assert html_to_text("5 &lt; 6 &amp;&amp; 7 &gt; 2") == "5 < 6 && 7 > 2"


def test_a_parsed_feed_becomes_documents_in_order() -> None:
    document = b"""<rss version="2.0"><channel><title>Desk</title>
      <item><title>One</title><link>/1?utm_source=x</link><description>First.</description></item>
      <item><description></description></item>
      <item><title>Two</title><link>/2</link></item></channel></rss>"""
    documents = feed_documents(parse_feed(document, SPEC.url), SPEC, FETCHED)
    assert [(d.title, d.url) for d in documents] == [
        ("One", "https://news.example.org/1"),
        ("Two", "https://news.example.org/2"),
    ]

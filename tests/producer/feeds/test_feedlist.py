"""The feeds file: TOML [[feed]] tables or an OPML export; every problem names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.feeds.feedlist import FeedListError, FeedSpec, load_feeds


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_feeds_file_gives_each_feed_with_its_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds.toml",
        """# wire services
[[feed]]
url = "https://example.org/world.rss"
interval = 600
full_text = true
tags = ["wire", "world"]

[[feed]]
url = "https://news.example.net/atom.xml"
""",
    )
    assert load_feeds(path) == [
        FeedSpec("https://example.org/world.rss", 600, True, ("wire", "world"), line=3),
        FeedSpec("https://news.example.net/atom.xml", line=9),
    ]


def test_an_empty_file_has_no_feeds(tmp_path: Path) -> None:
    assert load_feeds(write(tmp_path, "feeds.toml", "# nothing yet\n")) == []


def test_every_problem_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds.toml",
        """[[feed]]
url = "https://example.org/a.rss"

[[feed]]
url = "ftp://example.org/b"
intervall = 60
interval = -5
full_text = "yes"
tags = "wire"

[[feed]]
interval = 60

[[feed]]
url = "https://example.org/a.rss"
""",
    )
    with pytest.raises(FeedListError) as caught:
        load_feeds(path)
    problems = caught.value.problems
    assert f"{path}:6: unknown key 'intervall'" in problems[0]
    assert any(p.startswith(f"{path}:5: url 'ftp://example.org/b'") for p in problems)
    assert any(p.startswith(f"{path}:7: interval must be") for p in problems)
    assert any(p.startswith(f"{path}:8: full_text must be true or false") for p in problems)
    assert any(p.startswith(f"{path}:9: tags must be a list") for p in problems)
    assert any(p.startswith(f"{path}:11: [[feed]] has no url") for p in problems)
    assert any(p.startswith(f"{path}:15: duplicate feed") and "first at line 2" in p for p in problems)


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds.toml", '[[feed]]\nurl = "https://example.org/a.rss"\ntags = ["a",\n')
    with pytest.raises(FeedListError, match=rf"{path}:3: Invalid value at end of file"):
        load_feeds(path)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FeedListError, match="cannot read"):
        load_feeds(tmp_path / "absent.toml")


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="World news" title="World news">
      <outline type="rss" text="Example World" title="Example World"
               xmlUrl="https://example.org/world.rss" htmlUrl="https://example.org/"/>
      <outline type="rss" text="Wire" xmlUrl="https://wire.example.net/feed?x=1&amp;y=2"/>
    </outline>
    <outline type="rss" text="Tech" xmlUrl="https://tech.example.com/atom.xml" category="/tech"/>
  </body>
</opml>
"""


def test_an_opml_export_gives_its_feeds_with_folders_as_tags(tmp_path: Path) -> None:
    feeds = load_feeds(write(tmp_path, "subscriptions.opml", OPML))
    assert [(feed.url, feed.title, feed.line) for feed in feeds] == [
        ("https://example.org/world.rss", "Example World", 7),
        ("https://wire.example.net/feed?x=1&y=2", "Wire", 8),
        ("https://tech.example.com/atom.xml", "Tech", 10),
    ]
    assert feeds[0].tags == ("World news",) and feeds[2].tags == ("tech",)


def test_an_opml_feed_with_a_bad_url_names_its_line(tmp_path: Path) -> None:
    text = OPML.replace("https://tech.example.com/atom.xml", "javascript:alert(1)")
    path = write(tmp_path, "subs.xml", text)
    with pytest.raises(FeedListError, match=rf"{path}:10: xmlUrl 'javascript:alert\(1\)'"):
        load_feeds(path)


def test_an_xml_file_that_is_not_opml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FeedListError, match="not an OPML subscription list"):
        load_feeds(write(tmp_path, "feeds.xml", "<rss><channel/></rss>"))


def test_an_opml_file_declaring_entities_is_refused(tmp_path: Path) -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">]>' + OPML.split("?>", 1)[1]
    with pytest.raises(FeedListError, match="declares entities"):
        load_feeds(write(tmp_path, "subs.opml", bomb))

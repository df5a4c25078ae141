"""End to end: `newswatch run --once` over feeds served on 127.0.0.1 gives exactly the expected alerts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

Newswatch = Any  # the `embedded_newswatch` fixture of tests/conftest.py: the command, own embedded Redis

WIRE = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire Desk</title><language>en</language>
<item><title>Troops pulled back</title><link>/news/kursk-withdrawal?utm_source=wire&amp;utm_medium=rss</link>
  <description>Kyiv says North Korean troops were withdrawn from the Kursk region after heavy losses.
  </description>
  <pubDate>Mon, 03 Feb 2025 09:00:00 GMT</pubDate></item>
<item><title>Mild week ahead</title><link>/news/weather</link>
  <description>Forecasters expect a mild and dry week across most of central Europe.</description></item>
</channel></rss>"""

# The same Kursk story under a tracking-laden link and other words, plus a grain story: Atom this time.
AGENCY = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Agency</title>
<entry><title>Kursk: units withdrawn</title><link href="/news/kursk-withdrawal?fbclid=abc"/><id>urn:a:1</id>
  <updated>2025-02-03T09:30:00Z</updated>
  <content type="html">&lt;p&gt;Ukrainian officers report that North Korean soldiers left Kursk.&lt;/p&gt;
  </content></entry>
<entry><title>Convoy sails</title><link href="/news/grain"/><id>urn:a:2</id>
  <updated>2025-02-03T10:00:00Z</updated>
  <summary>The first grain convoy in weeks sailed from Odesa on Monday.</summary></entry>
</feed>"""

# A teaser that matches nothing; its page (fetched by the worker because full_text = true) does.
FULL = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Long Reads</title>
<item><title>Prisoners speak</title><link>/pages/prisoners.html</link>
  <description>Read more.</description></item>
</channel></rss>"""

PAGE = """<!doctype html><html><head><title>Prisoners speak</title></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Prisoners speak</h1>
<p>Two soldiers captured by Ukrainian forces last month have described how they were sent to the front.</p>
<p>Both said they had been told they were going to a training exercise. Instead, officers from Pyongyang
took their unit by train to the Kursk region, where they fought alongside Russian marines for weeks.</p>
<p>Interrogators said the men had received little equipment and almost no information about the war.
Their accounts match those of other prisoners and of Ukrainian intelligence reports published in January.</p>
</article><footer>Copyright Long Reads</footer></body></html>"""

BOMB = """<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><title>&b;</title>
<item><title>&b;</title><description>&b; Kursk North Korean</description>
</item></channel></rss>"""


@pytest.fixture
def served(feed_server: Any) -> dict[str, str]:
    feed_server.serve("/pages/prisoners.html", PAGE.encode(), "text/html; charset=utf-8")
    return {
        "wire": feed_server.serve("/wire.rss", WIRE.encode()),
        "agency": feed_server.serve("/agency.atom", AGENCY.encode(), "application/atom+xml"),
        "full": feed_server.serve("/full.rss", FULL.encode()),
        "bomb": feed_server.serve("/bomb.rss", BOMB.encode()),
        "base": feed_server.url(""),
    }


@pytest.fixture
def newswatch(embedded_newswatch: Newswatch, tmp_path: Path, served: dict[str, str]) -> Newswatch:
    """The command with the served feeds (CLI_WATCHLIST: Kursk and grain topics), 127.0.0.1 allowed."""
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f'[[feed]]\nurl = "{served["wire"]}"\ntags = ["wire"]\n\n'
        f'[[feed]]\nurl = "{served["agency"]}"\n\n'
        f'[[feed]]\nurl = "{served["full"]}"\nfull_text = true\n\n'
        f'[[feed]]\nurl = "{served["bomb"]}"\n',
        encoding="utf-8",
    )
    return embedded_newswatch.with_env(NEWSWATCH_FEEDS=str(feeds), NEWSWATCH_ALLOWED_HOSTS="127.0.0.1")


def run_once(newswatch: Newswatch) -> subprocess.CompletedProcess[str]:
    return newswatch("run", "--once", "--json", timeout=240)


@pytest.mark.slow
def test_run_once_over_served_feeds_alerts_exactly_once(newswatch: Newswatch, served: dict[str, str]) -> None:
    first = run_once(newswatch)
    assert first.returncode == 0, first.stderr
    alerts = [json.loads(line) for line in first.stdout.splitlines()]
    got = sorted((alert["topic"]["id"], alert["article"]["url"]) for alert in alerts)
    base = served["base"]
    assert got == [
        ("grain-corridor", f"{base}/news/grain"),
        ("nk-troops-kursk", f"{base}/news/kursk-withdrawal"),  # one story in two feeds: one alert
        ("nk-troops-kursk", f"{base}/pages/prisoners.html"),  # found in the page, not in the teaser
    ]
    kursk = next(alert for alert in alerts if alert["article"]["url"].endswith("kursk-withdrawal"))
    assert kursk["article"]["source"]["kind"] == "feed"
    assert kursk["article"]["published"].startswith("2025-02-03T09")
    assert "declares entities" in first.stderr and served["bomb"] in first.stderr  # logged with its URL

    second = run_once(newswatch)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "", "feeds polled again add no alert"

"""The default watchlist.toml: it passes `newswatch watchlist check`, and it finds the seed story."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATCHLIST = ROOT / "watchlist.toml"

# Written in the spirit of the project's seed story (a report that North Korean soldiers were
# pulled back from the Kursk front); the sentences are ours.
SEED_LIKE_ARTICLE = """\
North Korean soldiers withdrawn from Kursk front, Kyiv and Washington say

North Korean soldiers sent to help Russia in the Kursk region have not been seen on the front line for
weeks and appear to have been pulled back after heavy losses, Ukrainian and US officials told reporters.

Russia had put the newcomers into assaults soon after they arrived in the region, where Moscow is trying
to recover the territory Ukraine took in August. Pyongyang and Moscow have never confirmed their
presence, although Ukraine has shown videos of captured soldiers being questioned.

About 11,000 North Korean troops arrived in Russia last November; Ukraine's commander-in-chief says
their number has since fallen by half.
"""


def newswatch(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NEWSWATCH_WATCHLIST": str(WATCHLIST)}
    return subprocess.run(
        [sys.executable, "-m", "newswatch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environment,
    )


def test_watchlist_check_accepts_the_default_watchlist_and_its_examples() -> None:
    result = newswatch("watchlist", "check", str(WATCHLIST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_watchlist_has_the_seed_topic_and_at_least_six_topics_with_examples() -> None:
    from worker.core.watchlist import load_watchlist

    topics = load_watchlist(WATCHLIST).topics
    assert len(topics) >= 6
    by_id = {topic.id: topic for topic in topics}
    assert by_id["nk-troops-kursk"].name == "North Korean troops in Kursk"


# What `make run` shows a newcomer: each seed article and the topics it must raise alerts for.
SEED_TOPICS = {
    "01-north-korean-troops-pulled-back-from-kursk.txt": {"nk-troops-kursk"},
    "02-zaporizhzhia-nuclear-plant-loses-power.html": {"zaporizhzhia-nuclear-safety"},
    "03-russian-strikes-on-energy.json": {"russian-strikes-ukraine-energy"},
    "04-grain-corridor.md": {"black-sea-grain-shipping"},
    "05-obmin-polonenymy.txt": {"prisoner-exchanges"},
    "06-battle-of-kursk-anniversary.txt": set(),
    "07-north-korea-missile-test.md": set(),
    "08-ryazan-refinery-drones.txt": {"ukraine-drones-russian-refineries"},
    "09-north-korean-pows-kursk.html": {"nk-troops-kursk", "ukraine-kursk-incursion"},
    "10-european-gas-prices.json": set(),
    "11-kursk-nuclear-plant-drone.txt": set(),
}


def test_seed_articles_raise_the_alerts_a_newcomer_should_see() -> None:
    from newswatch.documents import read_path
    from worker.core.extract import extract
    from worker.core.matcher import Matcher
    from worker.core.watchlist import load_watchlist

    matcher = Matcher(load_watchlist(WATCHLIST))
    seeds = ROOT / "seeds"
    assert {path.name for path in seeds.iterdir()} == set(SEED_TOPICS)
    found = {
        path.name: {match.topic_id for match in matcher.match(extract(read_path(path)))}
        for path in sorted(seeds.iterdir())
    }
    assert found == SEED_TOPICS


def test_seed_like_article_matches_nk_troops_kursk_with_evidence(tmp_path: Path) -> None:
    article = tmp_path / "north-korean-troops-withdrawn.txt"
    article.write_text(SEED_LIKE_ARTICLE, encoding="utf-8")

    result = newswatch("match", "--json", str(article))

    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(result.stdout.strip().splitlines()[0])
    matches = {match["topic"]: match for match in output["matches"]}
    assert "nk-troops-kursk" in matches
    evidence = json.dumps(matches["nk-troops-kursk"]["evidence"], ensure_ascii=False).lower()
    assert "north korean" in evidence
    assert "kursk" in evidence

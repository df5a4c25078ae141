"""Loading watchlists: the shape of topics, and problems reported with topic, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.core.watchlist import WatchlistError, load_watchlist, parse_watchlist

GOOD = """
[aliases]
nk = ["North Korean", "DPRK"]

[[topic]]
id = "nk-kursk"
name = "North Korean troops in Kursk"
query = '@nk NEAR/10 Kursk'
sinks = ["webhook"]
min_score = 0.5
[topic.examples]
match = ["North Korean troops in Kursk.", {title = "DPRK units", text = "Seen in Kursk."}]
no_match = ["The Battle of Kursk."]

[[topic]]
id = "plant"
name = "Zaporizhzhia plant"
query = "Zaporizhzhia AND (plant OR reactor)"
"""


def test_a_valid_watchlist_loads(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.toml"
    path.write_text(GOOD, encoding="utf-8")
    watchlist = load_watchlist(path)
    assert [t.id for t in watchlist] == ["nk-kursk", "plant"]
    topic = watchlist.topic("nk-kursk")
    assert topic.sinks == ("webhook",) and topic.min_score == 0.5 and topic.line == 8
    assert [e.text for e in topic.examples_match] == ["North Korean troops in Kursk.", "Seen in Kursk."]
    assert topic.examples_match[1].title == "DPRK units"
    assert watchlist.aliases["nk"] == ("North Korean", "DPRK")


def test_all_problems_are_reported_together_with_line_and_column() -> None:
    text = """[aliases]
nk = ["North Korean"]

[[topic]]
id = "a"
name = "A"
query = 'kursk AND (troops'

[[topic]]
id = "a"
name = "duplicate"
query = "@missing OR x"

[[topic]]
id = "c"
name = "C"
query = ""

[[topic]]
id = "d"
query = "x"
"""
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text, "w.toml")
    problems = {(p.topic, p.line, p.column): p.message for p in caught.value.problems}
    assert problems[("a", 7, 27)].startswith("the query ends too early")
    assert "duplicate id 'a'" in problems[("a", 10, 6)]
    assert "unknown alias @missing" in problems[("a", 12, 10)]
    assert "empty" in problems[("c", 17, 10)]
    assert any(p.topic == "d" and "missing name" in p.message for p in caught.value.problems)
    assert "w.toml:7:27: topic 'a': the query ends too early" in str(caught.value)


def test_a_multiline_query_error_points_into_the_right_line() -> None:
    text = "[[topic]]\nid = 'x'\nname = 'X'\nquery = '''\nkursk AND\n  (troops OR ) '''\n"
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text)
    problem = caught.value.problems[0]
    assert (problem.line, problem.column) == (6, 14)


def test_toml_syntax_errors_have_a_position() -> None:
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist('[[topic]]\nid = "x\n')
    assert caught.value.problems[0].line == 2
    assert "TOML syntax" in caught.value.problems[0].message


def test_unknown_keys_and_bad_values_are_problems() -> None:
    text = '[[topic]]\nid = "x"\nname = "X"\nquery = "a"\nmin_scroe = 0.3\nmin_score = 3\nsinks = "webhook"\n'
    with pytest.raises(WatchlistError) as caught:
        parse_watchlist(text)
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "unknown key 'min_scroe'" in messages
    assert "min_score must be a number from 0 to 1" in messages
    assert "sinks must be a list" in messages


def test_unreadable_files_are_a_watchlist_error(tmp_path: Path) -> None:
    with pytest.raises(WatchlistError, match="cannot read"):
        load_watchlist(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[[topic]]\nid = "\xff"\n')
    with pytest.raises(WatchlistError, match="not valid UTF-8"):
        load_watchlist(bad)

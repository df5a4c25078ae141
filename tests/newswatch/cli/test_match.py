"""`newswatch match` as a user runs it: a real subprocess on files written here, grep-like exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]

WATCHLIST = """
[aliases]
north_korea = ['"North Korean"', '"North Koreans"', 'DPRK', 'Pyongyang']
troops = ['troop*', 'soldier*', 'forces', 'units']

[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '(@north_korea NEAR/3 @troops) NEAR/15 Kursk'

[[topic]]
id = "grain-corridor"
name = "Black Sea grain shipping"
query = '"grain corridor" OR (grain NEAR/5 (ship* OR vessel*) AND "Black Sea")'
"""

# Written for this test in the spirit of the seed article (North Korean troops pulled back from Kursk).
SEED_STORY = """North Korean units leave the Kursk front

North Korean troops who fought alongside Russian forces in the Kursk region have been pulled back from
the front line after heavy losses, according to Ukrainian and American officials.
Ukraine's special forces said they had seen no North Korean soldiers near Kursk for about three weeks.
Pyongyang has never confirmed that its soldiers were sent to fight in Russia.
"""

UNRELATED = """Harvest festival opens

The annual harvest festival opened on Saturday with music, food stalls and a parade through the old town.
"""

NEAR_MISS = """Pyongyang parade

North Korean troops marched through Pyongyang on Saturday in a parade attended by Kim Jong Un.
"""


def newswatch(
    *args: str, cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NEWSWATCH_") and key != "REDIS_URL"
    }
    environment["NEWSWATCH_CONFIG"] = str(cwd / "no-newswatch.toml")
    environment["PYTHONPATH"] = str(REPOSITORY)
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "newswatch", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=120,
    )
    completed = subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8")
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "watchlist.toml").write_text(WATCHLIST, encoding="utf-8")
    (tmp_path / "story.txt").write_text(SEED_STORY, encoding="utf-8")
    (tmp_path / "unrelated.md").write_text(UNRELATED, encoding="utf-8")
    return tmp_path


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_seed_story_matches_nk_troops_kursk_with_evidence(workspace: Path) -> None:
    result = newswatch("match", "--json", "story.txt", cwd=workspace)
    assert result.returncode == 0, result.stderr
    [record] = json_lines(result.stdout)
    assert record["path"] == "story.txt"
    article = record["article"]
    assert isinstance(article, dict)
    assert article["title"] == "North Korean units leave the Kursk front"
    assert article["url"] == (workspace / "story.txt").resolve().as_uri()
    assert article["language"] == "en"
    assert article["id"].startswith("a_")
    assert set(article) >= {"id", "title", "url", "published", "language", "source"}
    matches = record["matches"]
    assert isinstance(matches, list)
    assert [match["topic"] for match in matches] == ["nk-troops-kursk"]
    [match] = matches
    assert match["name"] == "North Korean troops in Kursk"
    assert match["score"] > 0
    assert match["evidence"], "a match must say why it matched"
    evidence_text = json.dumps(match["evidence"], ensure_ascii=False).lower()
    assert "kursk" in evidence_text and "north korean" in evidence_text


def test_human_output_shows_file_title_topic_score_and_snippet(workspace: Path) -> None:
    result = newswatch("match", "story.txt", "unrelated.md", cwd=workspace)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "story.txt" in out and "North Korean units leave the Kursk front" in out
    assert "nk-troops-kursk" in out and "North Korean troops in Kursk" in out
    assert "score" in out
    assert "pulled back" in out or "Kursk" in out.split("nk-troops-kursk", 1)[1]
    assert "unrelated.md" not in out  # like grep: files that do not match are not listed
    assert "\x1b[" not in out  # plain text when stdout is not a terminal


def test_nothing_matched_exits_1(workspace: Path) -> None:
    result = newswatch("match", "unrelated.md", cwd=workspace)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")
    result = newswatch("match", "--json", "unrelated.md", cwd=workspace)
    assert result.returncode == 1
    [record] = json_lines(result.stdout)
    assert record["matches"] == [] and record["path"] == "unrelated.md"


def test_folder_means_its_files_recursively_without_hidden_ones(workspace: Path) -> None:
    folder = workspace / "inbox"
    (folder / "deeper").mkdir(parents=True)
    (folder / "b.txt").write_text(UNRELATED, encoding="utf-8")
    (folder / "deeper" / "a.html").write_text(
        "<html><head><title>Kursk update</title></head><body><article>"
        + "".join(f"<p>{line}</p>" for line in SEED_STORY.splitlines()[2:])
        + "</article></body></html>",
        encoding="utf-8",
    )
    (folder / ".draft.txt").write_text(SEED_STORY, encoding="utf-8")
    result = newswatch("match", "--json", "inbox", cwd=workspace)
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert [record["path"] for record in records] == [
        str(Path("inbox/b.txt")),
        str(Path("inbox/deeper/a.html")),
    ]
    assert [m["topic"] for m in records[1]["matches"]] == ["nk-troops-kursk"]  # type: ignore[union-attr]
    assert records[1]["article"]["title"] == "Kursk update"  # type: ignore[index]


def test_json_article_and_stdin(workspace: Path) -> None:
    data = {
        "title": "Troops gone",
        "text": SEED_STORY,
        "url": "https://example.org/news/nk",
        "published": "2025-01-31T08:00:00Z",
    }
    (workspace / "story.json").write_text(json.dumps(data), encoding="utf-8")
    result = newswatch("match", "--json", "story.json", "-", cwd=workspace, stdin=SEED_STORY.encode())
    assert result.returncode == 0, result.stderr
    from_file, from_stdin = json_lines(result.stdout)
    assert from_file["article"]["url"] == "https://example.org/news/nk"  # type: ignore[index]
    assert from_file["article"]["published"] == "2025-01-31T08:00:00Z"  # type: ignore[index]
    assert from_stdin["path"] == "-"
    assert [m["topic"] for m in from_stdin["matches"]] == ["nk-troops-kursk"]  # type: ignore[union-attr]


def test_bad_inputs_each_give_one_line_and_the_rest_is_still_matched(workspace: Path) -> None:
    (workspace / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 8)
    (workspace / "latin1.txt").write_bytes("Les soldats nord-coréens à Koursk".encode("latin-1"))
    (workspace / "empty.txt").write_bytes(b"")
    (workspace / "big.txt").write_text(SEED_STORY * 200, encoding="utf-8")
    (workspace / "nothing.html").write_text(
        "<html><body><script>x()</script></body></html>", encoding="utf-8"
    )
    bad = ["photo.jpg", "latin1.txt", "empty.txt", "big.txt", "missing.txt", "nothing.html"]
    result = newswatch(
        "match",
        "story.txt",
        *bad,
        "unrelated.md",
        cwd=workspace,
        env={"NEWSWATCH_MAX_ARTICLE_BYTES": "20000"},
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(bad), result.stderr
    for name, line, reason in zip(
        bad,
        lines,
        ["binary file", "not valid UTF-8", "empty", "size limit", "no such file", "no text"],
        strict=True,
    ):
        assert name in line and reason in line, line
    assert "offset 20" in lines[1]  # where the first non-UTF-8 byte is (the é)
    assert "nk-troops-kursk" in result.stdout  # the good file was still matched


def test_explain_shows_the_words_that_fired_and_what_a_near_miss_lacked(workspace: Path) -> None:
    (workspace / "parade.txt").write_text(NEAR_MISS, encoding="utf-8")
    result = newswatch("match", "--explain", "story.txt", cwd=workspace)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "nk-troops-kursk" in out
    assert "North Korean" in out and "Kursk" in out
    result = newswatch("match", "--explain", "parade.txt", cwd=workspace)
    assert result.returncode == 1
    assert "nk-troops-kursk" in result.stdout
    assert "kursk" in result.stdout.lower()  # the part that was absent
    result = newswatch("match", "--json", "--explain", "parade.txt", cwd=workspace)
    [record] = json_lines(result.stdout)
    [explanation] = record["explain"]  # type: ignore[misc]
    assert explanation["topic"] == "nk-troops-kursk" and explanation["matched"] is False
    assert any("Kursk" in reason for reason in explanation["reasons"])


def test_watchlist_from_option_environment_and_working_folder(workspace: Path) -> None:
    other = workspace / "conf" / "topics.toml"
    other.parent.mkdir()
    other.write_text(WATCHLIST.replace("nk-troops-kursk", "nk-kursk-other"), encoding="utf-8")
    by_option = newswatch("match", "--json", "--watchlist", str(other), "story.txt", cwd=workspace)
    by_environment = newswatch(
        "match", "--json", "story.txt", cwd=workspace, env={"NEWSWATCH_WATCHLIST": str(other)}
    )
    by_default = newswatch("match", "--json", "story.txt", cwd=workspace)
    for result, topic in [
        (by_option, "nk-kursk-other"),
        (by_environment, "nk-kursk-other"),
        (by_default, "nk-troops-kursk"),
    ]:
        assert result.returncode == 0, result.stderr
        assert json_lines(result.stdout)[0]["matches"][0]["topic"] == topic  # type: ignore[index]


def test_invalid_or_missing_watchlist_exits_2_with_one_clear_message(workspace: Path) -> None:
    (workspace / "broken.toml").write_text(
        '[[topic]]\nid = "broken"\nname = "Broken"\nquery = \'(troops AND\'\n', encoding="utf-8"
    )
    result = newswatch("match", "--watchlist", "broken.toml", "story.txt", cwd=workspace)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "broken.toml:4:21: topic 'broken'" in result.stderr  # file, line, column, topic
    result = newswatch("match", "--watchlist", "nope.toml", "story.txt", cwd=workspace)
    assert result.returncode == 2
    assert result.stderr.startswith("newswatch match: nope.toml: no such watchlist file")
    assert len(result.stderr.splitlines()) == 1
    (workspace / "not-toml.toml").write_text("this is [ not toml", encoding="utf-8")
    result = newswatch("match", "--watchlist", "not-toml.toml", "story.txt", cwd=workspace)
    assert result.returncode == 2 and "not-toml.toml" in result.stderr


@pytest.mark.skipif(
    not (REPOSITORY / "watchlist.toml").is_file(), reason="the default watchlist.toml is absent"
)
def test_seed_story_matches_the_default_watchlist(workspace: Path) -> None:
    result = newswatch(
        "match", "--json", "--watchlist", str(REPOSITORY / "watchlist.toml"), "story.txt", cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    [record] = json_lines(result.stdout)
    assert "nk-troops-kursk" in [match["topic"] for match in record["matches"]]  # type: ignore[union-attr]

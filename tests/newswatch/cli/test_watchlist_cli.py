"""`newswatch watchlist check`: exit 0 with a topic count, or exit 2 naming topic, line and column."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]

GOOD = """
[aliases]
north_korea = ['"North Korean"', 'DPRK', 'Pyongyang']

[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '(@north_korea NEAR/3 (troop* OR soldier*)) NEAR/15 Kursk'
examples.match = ["DPRK soldiers were seen near Kursk last week."]
examples.no_match = ["The Kursk submarine sank in 2000.", "North Korean soldiers paraded in Pyongyang."]

[[topic]]
id = "grain"
name = "Grain corridor"
query = '"grain corridor"'
"""


def check(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("NEWSWATCH_")}
    environment["NEWSWATCH_CONFIG"] = str(cwd / "no-newswatch.toml")
    environment["PYTHONPATH"] = str(REPOSITORY)
    environment.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "newswatch", "watchlist", "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_a_good_watchlist_reports_its_topic_count(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(GOOD, encoding="utf-8")
    result = check("mine.toml", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "2 topics OK", "")


def test_default_file_comes_from_the_environment_then_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text(GOOD, encoding="utf-8")
    result = check(cwd=tmp_path, env={"NEWSWATCH_WATCHLIST": str(tmp_path / "elsewhere.toml")})
    assert result.returncode == 0 and result.stdout.strip() == "2 topics OK"
    result = check(cwd=tmp_path)
    assert result.returncode == 2 and "watchlist.toml" in result.stderr
    (tmp_path / "watchlist.toml").write_text(GOOD, encoding="utf-8")
    assert check(cwd=tmp_path).returncode == 0


def line_and_column(message: str) -> tuple[int, int]:
    found = re.search(r"line (\d+).*?col(?:umn)? (\d+)", message, re.IGNORECASE) or re.search(
        r":(\d+):(\d+)", message
    )
    assert found, f"no line and column in {message!r}"
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize(
    ("query", "column_of"),
    [
        ("(troops AND Kursk", None),
        ("troops AND AND Kursk", "AND Kursk"),
        ("@no_such_alias NEAR/3 Kursk", "@no_such_alias"),
    ],
)
def test_a_bad_query_names_the_topic_line_and_column(
    tmp_path: Path, query: str, column_of: str | None
) -> None:
    text = GOOD + f'\n[[topic]]\nid = "bad-one"\nname = "Bad"\nquery = \'{query}\'\n'
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    result = check("bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    problem = next(line for line in result.stderr.splitlines() if "bad-one" in line)
    line, _column = line_and_column(problem)
    query_line = text.splitlines().index(f"query = '{query}'") + 1
    assert line == query_line


def test_duplicate_id_and_empty_query_are_problems(tmp_path: Path) -> None:
    text = GOOD + '\n[[topic]]\nid = "grain"\nname = "Again"\nquery = "wheat"\n'
    text += '\n[[topic]]\nid = "empty"\nname = "Empty"\nquery = "  "\n'
    (tmp_path / "dup.toml").write_text(text, encoding="utf-8")
    result = check("dup.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "grain" in result.stderr and "empty" in result.stderr


def test_a_failing_example_is_a_problem_naming_the_topic(tmp_path: Path) -> None:
    text = GOOD.replace(
        'examples.no_match = ["The Kursk submarine sank in 2000.",',
        'examples.no_match = ["DPRK troops are dug in near Kursk.",',
    )
    (tmp_path / "examples.toml").write_text(text, encoding="utf-8")
    result = check("examples.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nk-troops-kursk" in result.stderr
    assert "DPRK troops are dug in near Kursk" in result.stderr


def test_missing_file_and_broken_toml_exit_2(tmp_path: Path) -> None:
    result = check("absent.toml", cwd=tmp_path)
    assert result.returncode == 2 and "absent.toml" in result.stderr
    (tmp_path / "broken.toml").write_text('[[topic]]\nid = "x\n', encoding="utf-8")
    result = check("broken.toml", cwd=tmp_path)
    assert result.returncode == 2 and "broken.toml" in result.stderr
    assert line_and_column(result.stderr) == (2, 8)


@pytest.mark.skipif(
    not (REPOSITORY / "watchlist.toml").is_file(), reason="the default watchlist.toml is absent"
)
def test_the_default_watchlist_passes_its_own_check(tmp_path: Path) -> None:
    result = check(str(REPOSITORY / "watchlist.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ topics OK", result.stdout.strip())


def test_a_topic_that_keeps_the_gate_open_gets_a_note(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        GOOD + '\n[[topic]]\nid = "un-votes"\nname = "UN votes"\nquery = "UN OR EU"\n', encoding="utf-8"
    )
    result = check("mine.toml", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "3 topics OK"
    assert re.search(r"mine\.toml:\d+: note: topic 'un-votes' .*every article is prepared", result.stderr)
    assert "grain" not in result.stderr and "nk-troops-kursk" not in result.stderr

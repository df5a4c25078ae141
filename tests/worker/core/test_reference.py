"""The reference evaluator: the meaning of each operator, spelled out on small texts."""

from __future__ import annotations

import pytest

from worker.core.query import parse_query
from worker.core.reference import matches

ALIASES = {"nk": ["North Korean", "DPRK", "kpa*"]}


@pytest.mark.parametrize(
    ("query", "title", "text", "expected"),
    [
        ("troops", "", "A troop moved.", True),
        ("troops", "", "Troopers moved.", False),
        ('"troops"', "", "A troop moved.", False),
        ("troop*", "", "Troopers moved.", True),
        ("kursk", "", "Kurskaya oblast", False),
        ("kursk*", "", "Kurskaya oblast", True),
        ('"north korean"', "", "North-Korean units", True),
        ('"north korean"', "", "It went north. Korean units followed.", False),
        ('"north korean"~1', "", "North and Korean", True),
        ('"korean north"~1', "", "North Korean", False),
        ('"korean north"~2', "", "North Korean", True),
        ("a NEAR/1 b", "", "b a", True),
        ("a NEAR/1 b", "", "a x b", False),
        ("a NEAR/2 b", "", "a x b", True),
        ("kursk NEAR/3 kursk", "", "Kursk", False),
        ("title:kursk", "", "Kursk", False),
        ("title:kursk", "In Kursk", "", True),
        ("@nk AND kursk", "", "KPA units in Kursk", True),
        ("@nk -submarine", "", "DPRK and the submarine", False),
        ("(a OR b) NEAR/2 c", "", "b x c", True),
        ("(a NEAR/1 b) NEAR/1 c", "", "a b c", True),
        ("(a NEAR/1 b) NEAR/1 c", "", "a b x c", False),
    ],
)
def test_operators(query: str, title: str, text: str, expected: bool) -> None:
    assert matches(parse_query(query, ALIASES), title, text) is expected

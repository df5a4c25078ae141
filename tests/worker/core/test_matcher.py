"""The matcher as a user sees it: which topics match, with what evidence, score, snippet and explanation."""

from __future__ import annotations

import gc
import json

from worker.core.article import Article
from worker.core.matcher import Matcher, check_examples
from worker.core.watchlist import Watchlist, parse_watchlist

WATCHLIST = """
[aliases]
nk = ["North Korean", "North Koreans", "DPRK", "KPA", "N. Korean", "Pyongyang's"]
kursk = ["Kursk", "Koursk", "Kurskaya", "Курск*"]

[[topic]]
id = "nk-troops-kursk"
name = "North Korean troops in Kursk"
query = '(@nk NEAR/8 (troops OR soldiers OR units)) AND @kursk -"battle of kursk" -submarine'
[topic.examples]
match = ["Thousands of North Korean troops were sent to the Kursk region."]
no_match = ["The Battle of Kursk in 1943 involved no North Korean soldiers at all."]

[[topic]]
id = "strikes"
name = "Strikes on energy"
query = '(strike* OR attack*) NEAR/5 ("power plant" OR substation* OR grid) title:Ukraine'

[[topic]]
id = "phrase"
name = "Exact phrase"
query = '"special operations forces"'

[[topic]]
id = "slop"
name = "Sloppy"
query = '"troops withdrew"~2'

[[topic]]
id = "picky"
name = "Needs a strong match"
query = "Kursk"
min_score = 0.8
"""


def article(text: str, title: str = "") -> Article:
    return Article(id="a1", url="file:///tmp/a1.txt", title=title, text=text)


def matcher() -> Matcher:
    return Matcher(parse_watchlist(WATCHLIST))


def topics(text: str, title: str = "") -> list[str]:
    return sorted(m.topic_id for m in matcher().match(article(text, title)))


def test_stemmed_words_aliases_and_near() -> None:
    assert "nk-troops-kursk" in topics("Pyongyang's soldiers have been deployed in the Kurskaya oblast.")
    assert "nk-troops-kursk" in topics("КНДР: DPRK units are fighting near Курская область, said Kyiv.")
    assert "nk-troops-kursk" in topics("N. Korean troops pulled back from Kursk.")


def test_negations_exclude() -> None:
    assert topics("North Korean troops and the Battle of Kursk museum.") == []
    assert topics("A North Korean troop visit to the Kursk submarine memorial.") == []


def test_word_boundaries_hold() -> None:
    assert "picky" not in topics("Kurskiy " * 5)
    assert "nk-troops-kursk" not in topics("North Koreanish troops in Kursk")


def test_near_distance_is_counted_in_words_either_order() -> None:
    close = "Soldiers from the North Korean army entered Kursk."
    far = "North Korean leaders met; " + "many words fill this sentence up " * 3 + "soldiers entered Kursk."
    assert "nk-troops-kursk" in topics(close)
    assert "nk-troops-kursk" not in topics(far)


def test_title_restriction_and_prefixes() -> None:
    body = "Overnight strikes hit a substation near Kharkiv."
    assert "strikes" in topics(body, title="Ukraine under fire")
    assert "strikes" not in topics(body, title="Overnight news")
    assert "strikes" not in topics(body + " Ukraine.", title="Overnight news")


def test_phrases_do_not_cross_sentences_but_slop_allows_gaps() -> None:
    assert "phrase" in topics("Ukraine's Special Operations Forces said so.")
    assert "phrase" not in topics("They sent special operations. Forces were ready.")
    assert "slop" in topics("The troops quietly withdrew at night.")
    assert "slop" in topics("Withdrew troops, it said.")  # "b a" costs 2
    assert "slop" not in topics("The troops did not stay; they withdrew.")


def test_min_score_drops_weak_matches() -> None:
    assert "picky" not in topics("A note about Kursk.")
    assert "picky" in topics("Kursk, Kursk, Kursk, Kursk and Kursk.", title="Kursk")


def test_match_json_has_evidence_with_original_offsets_and_a_snippet() -> None:
    text = (
        "Intro line here.\nAbout 11,000 North Korean soldiers arrived in Russia’s Kursk region in November."
    )
    [match] = [m for m in matcher().match(article(text)) if m.topic_id == "nk-troops-kursk"]
    data = match.to_json()
    json.dumps(data)
    assert data["topic"] == "nk-troops-kursk" and data["name"] == "North Korean troops in Kursk"
    assert 0.4 <= data["score"] <= 1.0
    assert (
        data["snippet"] == "About 11,000 North Korean soldiers arrived in Russia’s Kursk region in November."
    )
    for item in data["evidence"]:
        assert text[item["start"] : item["end"]] == item["text"]
        assert item["field"] == "body"
    assert {(e["clause"], e["text"]) for e in data["evidence"]} == {
        ("@nk", "North Korean"),
        ("soldiers", "soldiers"),
        ("@kursk", "Kursk"),
    }


def test_explain_shows_matches_and_near_misses() -> None:
    explanations = {
        e.topic_id: e for e in matcher().explain(article("Soldiers of the DPRK were seen in Kursk."))
    }
    hit = explanations["nk-troops-kursk"]
    assert hit.matched
    assert '"DPRK"' in hit.render() and "✓" in hit.render()
    miss = {e.topic_id: e for e in matcher().explain(article("Kursk is a city. The battle of Kursk."))}
    assert not miss["nk-troops-kursk"].matched
    text = miss["nk-troops-kursk"].render()
    assert "absent: @nk" in text or "excluded by NOT" in text


def test_check_examples_reports_examples_that_fail() -> None:
    watchlist = parse_watchlist(WATCHLIST)
    assert check_examples(watchlist, Matcher(watchlist)) == []
    broken = parse_watchlist(
        '[[topic]]\nid = "k"\nname = "K"\nquery = "kursk"\n[topic.examples]\nmatch = ["Sudzha only."]\n'
    )
    [failure] = check_examples(broken)
    assert failure.topic_id == "k" and failure.expected == "match"
    assert "should match" in str(failure)


def test_empty_watchlist_and_empty_article() -> None:
    assert Matcher(Watchlist(())).match(article("anything")) == []
    assert matcher().match(article("")) == []


def test_the_snippet_is_the_sentence_with_the_most_evidence() -> None:
    from worker.core.article import Article
    from worker.core.matcher import Matcher
    from worker.core.watchlist import parse_watchlist

    watchlist = parse_watchlist(
        '[[topic]]\nid = "grain"\nname = "Grain"\nquery = \'Odesa AND grain AND corridor\'\n'
    )
    text = (
        "Odesa, 14 March.\n\n"
        "Grain left Odesa through the corridor again this week, the port authority said. "
        "Insurance premiums have fallen."
    )
    [match] = Matcher(watchlist).match(Article(id="a", url="u", title="", text=text))
    assert match.snippet.startswith("Grain left Odesa through the corridor")


def test_matching_leaves_nothing_for_the_cyclic_gc() -> None:
    # A worker matches articles all day: what one match builds must go with reference counting alone,
    # or every garbage collection re-scans the leftovers of recent articles (a tenth of match time).
    compiled = matcher()
    text = "North Korean troops fought near Kursk. Soldiers of the KPA were seen in Kurskaya oblast."
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            for found in compiled.match(article(text, title="Ukraine grid strike")):
                assert found.evidence
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_explain_shows_an_alias_inside_an_or_as_one_clause() -> None:
    """An alias flattened into a larger OR reads as one line, not one line per term of the alias."""
    watchlist = parse_watchlist(
        """
[aliases]
kursk = ["Kursk", "Koursk", "Kurskaya", "Курск*"]
border = ["Belgorod", "Bryansk"]

[[topic]]
id = "border-fighting"
name = "Fighting on the border"
query = 'fighting NEAR/5 (@kursk OR @border OR Sumy)'
"""
    )
    [explained] = Matcher(watchlist).explain(article("Heavy fighting was reported near Koursk on Sunday."))
    text = explained.render()
    assert explained.matched
    assert text.count("@kursk") == 1 and '"Koursk"' in text
    assert text.count("✗ @border: absent") == 1
    assert "✗ Sumy: absent" in text

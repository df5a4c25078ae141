"""Benchmark the matcher: per-article cost at 100 to 100,000 generated topics, with ratios, compile time, RSS.

    .venv/bin/python bench/match.py                       # sparse and dense, 100 .. 100,000 topics
    .venv/bin/python bench/match.py --sizes 100,1000 --profile sparse
    .venv/bin/python bench/match.py --profile sparse --breakdown   # and where the match time goes
    .venv/bin/python bench/match.py --profile sparse --repeat 3    # medians of 3 processes per size

Articles: the bodies of ../shared/corpora/articles/aeb/ground-truth.json (generated text of the same
sizes when absent). Topics: ../shared/bench/gen_topics.py (run as a subprocess). Each (profile, size)
runs in its own process pinned to one core, so that its compile time and peak RSS are its own.
Per article: `prepare` (fold, sentences, tokens: analysis.prepare of title and body) and `match`
(automaton pass, presearch, evaluation of candidates, evidence of matches); medians over articles of
the best of --rounds runs (CPU time of the process: the machine may be shared). `pass` is one
pyahocorasick iteration with the same automaton over the same prepared token streams of title
and body (stemmed words are not in the automaton: they are found by one set intersection), timed
before the match in odd rounds and after it in even ones (each runs in the caches the other left);
`naive` is a per-topic loop of regexes (every term of every topic searched in the raw text, no
positions), timed at 1,000 topics on a subset and extrapolated. Below each table, the gate that
Matcher.match asks before preparing an article (not part of the figures above): how many articles it
admits, its median cost, and the articles/s of Matcher.match (the gate while it turns articles away,
see gate.GateBudget; then preparation and matching).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("NEWSWATCH_SHARED", ROOT.parent / "shared"))
GROUND_TRUTH = SHARED / "corpora" / "articles" / "aeb" / "ground-truth.json"
GEN_TOPICS = SHARED / "bench" / "gen_topics.py"
LUCENE_DENSE = {100: 635, 1_000: 388, 10_000: 167, 100_000: 21}
LUCENE_SPARSE = {100: 800, 1_000: 571, 10_000: 386, 100_000: 175}


def bodies_file(workdir: Path) -> tuple[Path, str]:
    """The ground truth file to generate topics from and to read articles from (generated if absent)."""
    if GROUND_TRUTH.exists():
        return GROUND_TRUTH, "aeb corpus"
    rng = random.Random(7)
    vocabulary = [
        "".join(rng.choice("etaoinshrdlucmfwypvbgk") for _ in range(rng.randint(3, 10))) for _ in range(5000)
    ]
    names = [w.capitalize() for w in vocabulary[:300]]
    bodies = {}
    for i in range(181):
        words = [rng.choice(names) if rng.random() < 0.05 else rng.choice(vocabulary) for _ in range(750)]
        bodies[str(i)] = {"articleBody": " ".join(words) + ".", "url": f"generated:{i}"}
    path = workdir / "generated.json"
    path.write_text(json.dumps(bodies))
    return path, "generated text (no corpus)"


def run_one(
    size: int, profile: str, rounds: int, naive_articles: int, breakdown: bool = False
) -> dict[str, float]:
    """Measure one (profile, size) in this process."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    from worker.core.analysis import Prepared, prepare
    from worker.core.article import Article
    from worker.core.matcher import Matcher
    from worker.core.watchlist import load_watchlist

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source, _ = bodies_file(workdir)
        out = workdir / "topics.toml"
        subprocess.run(
            [sys.executable, str(GEN_TOPICS), str(size), str(source), str(out), profile], check=True
        )
        bodies = [v["articleBody"] for v in json.loads(source.read_text()).values()]
        started = time.perf_counter()
        watchlist = load_watchlist(out)
        parsed = time.perf_counter()
        matcher = Matcher(watchlist)
        compiled = time.perf_counter()

    automaton = matcher.automaton
    best_prepare = [float("inf")] * len(bodies)
    best_match = [float("inf")] * len(bodies)
    best_pass = [float("inf")] * len(bodies)
    matches = [0] * len(bodies)
    clock = time.process_time  # CPU time of this process: the machine is shared

    def one_pass(title: Prepared, prepared: Prepared) -> float:
        t0 = clock()
        for streams in (title, prepared):
            if len(automaton) and streams.distinct:
                for _hit in automaton.iter(streams.stream):
                    pass
        return clock() - t0

    for round_number in range(rounds):
        # Whichever runs second runs in the CPU caches the first one left (timed only after the match, the
        # pass cost ~1.5x more): the order alternates between rounds, so the best of them is like for like.
        pass_first = round_number % 2 == 1
        for i, body in enumerate(bodies):
            t0 = clock()
            title, prepared = prepare(""), prepare(body)
            t1 = clock()
            pass_time = one_pass(title, prepared) if pass_first else 0.0
            t2 = clock()
            found = matcher.match_prepared(title, prepared)
            t3 = clock()
            if not pass_first:
                pass_time = one_pass(title, prepared)
            best_prepare[i] = min(best_prepare[i], t1 - t0)
            best_match[i] = min(best_match[i], t3 - t2)
            best_pass[i] = min(best_pass[i], pass_time)
            matches[i] = len(found)
    # The gate (what Matcher.match asks before preparing an article; not in the figures above), and
    # Matcher.match itself: the gate while it pays (GateBudget), then preparation and matching.
    gate = matcher.gate
    gate_times: list[float] = []
    admitted = 0
    for body in bodies:
        t0 = clock()
        admitted += gate.admits("", body)
        gate_times.append(clock() - t0)
    articles = [Article(id=str(i), url="", title="", text=body) for i, body in enumerate(bodies)]
    best_api = [float("inf")] * len(articles)
    for _ in range(rounds):
        for i, article in enumerate(articles):
            t0 = clock()
            matcher.match(article)
            best_api[i] = min(best_api[i], clock() - t0)
    result = {
        "size": size,
        "articles": len(bodies),
        "gate_admitted": admitted,
        "gate_us": statistics.median(gate_times) * 1e6,
        "match_api_per_s": len(bodies) / sum(best_api),
        "parse_s": parsed - started,
        "compile_s": compiled - started,
        "prepare_us": statistics.median(best_prepare) * 1e6,
        "match_us": statistics.median(best_match) * 1e6,
        "pass_us": statistics.median(best_pass) * 1e6,
        "total_per_s": len(bodies) / (sum(best_prepare) + sum(best_match)),
        "matches": statistics.median(matches),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if naive_articles:
        result["naive_us_per_1000"] = naive_loop(watchlist, bodies[:naive_articles], size)
    if breakdown:
        result.update(match_breakdown(matcher, [(prepare(""), prepare(body)) for body in bodies]))
    return result


# Where match_prepared's time goes, from cProfile's cumulative times of these functions (they overlap:
# token positions are asked for by NEAR checks and by scores).
BREAKDOWN = {
    "scan": ("matcher.py", "_hits_prepared"),  # the automaton pass, hits sorted, stems looked up
    "near": ("matcher.py", "near"),  # NEAR checks (positions included)
    "score": ("matcher.py", "_score_of"),  # scores of the matches (stem counts included)
    "positions": ("analysis.py", "starts", "stem_positions"),  # token offsets, where watched stems occur
}


def match_breakdown(matcher, prepared: list) -> dict[str, float]:  # type: ignore[no-untyped-def, type-arg]
    """Shares of match_prepared's time (cProfile, one round over the articles; cumulative times)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for title, body in prepared:
        matcher.match_prepared(title, body)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _, function), (_, _, _, cumtime, _) in stats.items():
        key = (Path(filename).name, function)
        cumulative[key] = cumulative.get(key, 0.0) + cumtime
    total = cumulative.get(("matcher.py", "match_prepared"), 0.0) or 1.0
    return {
        f"share_{name}": sum(cumulative.get((where[0], f), 0.0) for f in where[1:]) / total
        for name, where in BREAKDOWN.items()
    }


def naive_loop(watchlist, bodies: list[str], size: int) -> float:  # type: ignore[no-untyped-def]
    """Per-article time of a per-topic regex loop over 1,000 topics (presence of every term only)."""
    from worker.core.query.tree import And, Near, Not, Or, Term

    def pattern(term: Term) -> re.Pattern[str]:
        words = r"\W+".join(re.escape(w) for w in term.words)
        return re.compile(r"\b" + words + (r"\w*" if term.prefix or term.kind == "word" else r"\b"), re.I)

    def compile_node(node):  # type: ignore[no-untyped-def]
        if isinstance(node, Term):
            regex = pattern(node)
            return lambda text: regex.search(text) is not None
        if isinstance(node, Not):
            inner = compile_node(node.child)
            return lambda text: not inner(text)
        if isinstance(node, Near):
            parts = [compile_node(node.left), compile_node(node.right)]
            return lambda text: all(p(text) for p in parts)
        parts = [compile_node(c) for c in node.children]
        if isinstance(node, And):
            return lambda text: all(p(text) for p in parts)
        assert isinstance(node, Or)
        return lambda text: any(p(text) for p in parts)

    topics = [compile_node(t.tree) for t in watchlist.topics[:1000]]
    times = []
    for body in bodies:
        t0 = time.perf_counter()
        for check in topics:
            check(body)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6 * 1000 / min(1000, len(topics))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000,100000", help="comma-separated topic counts")
    parser.add_argument("--profile", default="both", choices=["sparse", "dense", "both"])
    parser.add_argument("--rounds", type=int, default=3, help="runs per article; the best counts")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="processes per size, in turns; every figure is the median of theirs",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also print where the match time goes (cProfile shares: scan, NEAR, scores, positions)",
    )
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "PROFILE"), help=argparse.SUPPRESS)
    parser.add_argument("--naive", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not GEN_TOPICS.exists():
        print(f"bench/match.py needs {GEN_TOPICS} (the shared topic generator)", file=sys.stderr)
        return 2
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.rounds, args.naive, args.breakdown)))
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    profiles = ["sparse", "dense"] if args.profile == "both" else [args.profile]
    with tempfile.TemporaryDirectory() as tmp:
        _, source_name = bodies_file(Path(tmp))
    for profile in profiles:
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        run_one_command = [sys.executable, __file__, "--one"]
        options = ["--rounds", str(args.rounds)] + (["--breakdown"] if args.breakdown else [])
        for repeat in range(args.repeat):
            # The sizes take turns in a rotating order: a slow phase of the machine hits each size alike.
            for size in sizes[repeat % len(sizes) :] + sizes[: repeat % len(sizes)]:
                naive = 20 if size == 1000 or (1000 not in sizes and size == sizes[0]) else 0
                command = [*run_one_command, str(size), profile, "--naive", str(naive), *options]
                with console.status(f"{profile}: {size:,} topics ({repeat + 1} of {args.repeat})"):
                    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                runs[size].append(json.loads(output.strip().splitlines()[-1]))
        rows = [
            {key: statistics.median(run[key] for run in runs[size]) for key in runs[size][0]}
            | {"size": size, "articles": runs[size][0]["articles"]}
            for size in sizes
        ]
        naive_per_1000 = next((r["naive_us_per_1000"] for r in rows if "naive_us_per_1000" in r), None)
        table = Table(title=f"newswatch matcher — {profile} profile, {source_name}, medians per article")
        for name in (
            "topics",
            "prepare µs",
            "match µs",
            "match/pass",
            "naive/ours",
            "articles/s",
            "Lucene/s",
        ):
            table.add_column(name, justify="right")
        for name in ("matches", "compile s", "peak RSS MB"):
            table.add_column(name, justify="right")
        for r in rows:
            total = r["prepare_us"] + r["match_us"]
            naive = f"{naive_per_1000 * r['size'] / 1000 / total:,.0f}×" if naive_per_1000 else "–"
            lucene = (LUCENE_SPARSE if profile == "sparse" else LUCENE_DENSE).get(r["size"])
            table.add_row(
                f"{r['size']:,}",
                f"{r['prepare_us']:.0f}",
                f"{r['match_us']:.0f}",
                f"{r['match_us'] / max(r['pass_us'], 1e-3):.1f}×",
                naive,
                f"{r['total_per_s']:,.0f}",
                f"{lucene:,}" if lucene else "–",
                f"{r['matches']:g}",
                f"{r['compile_s']:.2f}",
                f"{r['rss_mb']:.0f}",
            )
        console.print(table)
        sizes_text = " / ".join(f"{r['size']:,}" for r in rows)
        console.print(
            f"gate (Matcher.match asks it first), at {sizes_text} topics: admits "
            + " / ".join(f"{r['gate_admitted']:g}" for r in rows)
            + f" of {rows[0]['articles']} articles, median "
            + " / ".join(f"{r['gate_us']:.0f}" for r in rows)
            + " µs; articles/s through Matcher.match (the gate while it pays, then prepare and match) "
            + " / ".join(f"{r['match_api_per_s']:,.0f}" for r in rows)
        )
        if args.breakdown:
            console.print(
                "where match time goes (cProfile, cumulative, overlapping), at "
                + sizes_text
                + " topics: "
                + "; ".join(
                    f"{name} " + " / ".join(f"{100 * r['share_' + name]:.0f}%" for r in rows)
                    for name in BREAKDOWN
                )
            )
        by_size = {r["size"]: r for r in rows}
        if profile == "sparse" and 100 in by_size and 100_000 in by_size:
            flat = (by_size[100_000]["prepare_us"] + by_size[100_000]["match_us"]) / (
                by_size[100]["prepare_us"] + by_size[100]["match_us"]
            )
            console.print(f"t(100k)/t(100) = {flat:.2f} (target <= 2)")
    console.print(
        "match/pass: matching time over one automaton pass of the same prepared text (target <= 3× at 10k, "
        "sparse); naive/ours: a per-topic regex loop (timed at 1,000 topics, extrapolated) over our total."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

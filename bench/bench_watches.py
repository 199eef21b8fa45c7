"""Keyword watches: 100,000 watches against 1,000 new papers (target: under 1 s).

Also measures evaluating every watch on every paper on a sample of the watches, checks
that both find the same matches there, and reports the speed-up extrapolated to all
watches.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter

from bench.corpus import CorpusGenerator
from bot.models import Destination, Watch
from bot.watches import WatchMatcher

WATCHES = int(os.environ.get("BENCH_WATCHES", "100000"))
PAPERS = 1_000
BRUTE_SAMPLE = 2_000
SEED = 7


def make_queries(generator: CorpusGenerator, count: int, rng: random.Random) -> list[str]:
    """A mix like people's watches: mostly method and model names and specific phrases
    (most of which no paper of a given day mentions), some alternatives, exclusions and
    author names, and a few watches so broad they match a large share of everything."""
    text = " ".join(generator.abstract_words)
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", text)]
    ranked = [w for w, _ in Counter(words).most_common()]
    broad, specific = ranked[100:1000], frozenset(ranked[1500:])
    bigrams = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if a in specific]
    specific_list = sorted(specific)

    def name() -> str:  # any of the corpus's 60,000 method/author names, uniformly
        return rng.choice(generator.names)

    queries = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.50:
            q = name()
        elif roll < 0.65:
            q = f"{name()} {rng.choice(broad)}"
        elif roll < 0.75:
            q = f'"{rng.choice(bigrams)}"'
        elif roll < 0.85:
            q = " OR ".join(name() for _ in range(rng.randint(2, 3)))
        elif roll < 0.92:
            q = f"author:{name()}"
        elif roll < 0.97:
            q = f"{rng.choice(specific_list)} -{rng.choice(broad)}"
        else:
            q = rng.choice(broad)  # the too-broad watch someone always sets up
        queries.append(q)
    return queries


async def run() -> dict:
    rng = random.Random(SEED)
    generator = CorpusGenerator()
    papers = list(generator.papers(PAPERS))
    dest = Destination("slack", "T1", "U1", is_dm=True)
    watches = [
        Watch("U1", dest, q, id=i) for i, q in enumerate(make_queries(generator, WATCHES, rng))
    ]

    started = time.perf_counter()
    matcher = WatchMatcher(watches)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    found = matcher.match(papers)
    match_seconds = time.perf_counter() - started
    phrase_checks = matcher.phrase_checks

    sample = WatchMatcher(watches[:BRUTE_SAMPLE])
    started = time.perf_counter()
    brute = sample.match_brute_force(papers)
    brute_seconds = time.perf_counter() - started
    indexed = sample.match(papers)

    def key(matches):
        return sorted((m.watch.id, [p.id for p in m.papers]) for m in matches)

    brute_all_estimate = brute_seconds * WATCHES / BRUTE_SAMPLE
    return {
        "watches": WATCHES,
        "papers": PAPERS,
        "target_seconds": 1.0,
        "parse_watches_seconds": round(load_seconds, 3),
        "match_seconds": round(match_seconds, 3),
        "watches_with_matches": len(found),
        "alerts_papers": sum(len(m.papers) for m in found),
        "phrase_checks": phrase_checks,
        "brute_force_evaluations": WATCHES * PAPERS,
        "brute_force_sample_watches": BRUTE_SAMPLE,
        "brute_force_sample_seconds": round(brute_seconds, 3),
        "brute_force_estimated_seconds": round(brute_all_estimate, 1),
        "speedup_vs_brute_force": round(brute_all_estimate / match_seconds, 1),
        "sample_results_identical": key(brute) == key(indexed),
    }

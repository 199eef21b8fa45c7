"""Synthetic papers for benchmarks, built from the vocabulary of the seed corpus.

Reproducible for a given seed and count. Abstracts are stitched from real word spans of
the seed abstracts (so real phrases such as "large language models" keep their
frequencies), plus made-up method names drawn from a large Zipf-distributed vocabulary
(the long tail of rare terms a real archive has). Dates are spread over about two years
in roughly the order papers arrive; upvotes are heavy-tailed.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.models import Author, Paper

SEED_CORPUS = Path(__file__).resolve().parent.parent / "tests/fixtures/hf_daily_papers_seed.json"
START = datetime(2024, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=730)

_SYLLABLES = tuple(
    [
        "ka",
        "lo",
        "mi",
        "ra",
        "ve",
        "zu",
        "ne",
        "to",
        "shi",
        "an",
        "el",
        "or",
        "ix",
        "um",
        "po",
        "qua",
        "dre",
        "fen",
        "gal",
        "hy",
        "jo",
        "kri",
        "lum",
        "mor",
        "nex",
        "ob",
        "pra",
        "quin",
        "rho",
        "sel",
        "tor",
        "ul",
        "vax",
        "wen",
        "xen",
        "yor",
        "zed",
        "bri",
        "cal",
        "dor",
    ]
)


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


class CorpusGenerator:
    """Generates ``Paper`` objects; ``papers(n)`` yields the same sequence for a seed."""

    def __init__(self, seed: int = 20241101, seed_corpus: Path = SEED_CORPUS) -> None:
        items = json.loads(seed_corpus.read_text())
        self.seed = seed
        self.abstract_words: list[str] = []
        self.title_words: list[list[str]] = []
        for item in items:
            paper = item.get("paper", item)
            self.abstract_words.extend(_words(paper.get("summary") or ""))
            self.title_words.append(_words(paper.get("title") or ""))
        rng = random.Random(seed)
        # A long tail of invented names (method names, rare terms, author surnames).
        self.names = sorted(
            {
                "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
                for _ in range(60_000)
            }
        )
        rng.shuffle(self.names)
        # Zipf-ish weights by rank: cumulative weights let random.choices bisect quickly.
        self.name_weights = list(
            itertools.accumulate(1.0 / (r + 1) for r in range(len(self.names)))
        )
        self.first_names = self.names[:3000]

    def _rare_name(self, rng: random.Random) -> str:
        index = bisect.bisect(self.name_weights, rng.random() * self.name_weights[-1])
        return self.names[min(index, len(self.names) - 1)]

    def _span(self, rng: random.Random, low: int, high: int) -> list[str]:
        # int(random() * n) rather than randint: this loop runs ~10 times per paper.
        size = low + int(rng.random() * (high - low + 1))
        start = int(rng.random() * (len(self.abstract_words) - size))
        return self.abstract_words[start : start + size]

    def paper(self, index: int, rng: random.Random) -> Paper:
        method = self._rare_name(rng)
        title_source = rng.choice(self.title_words)
        cut = rng.randint(0, max(0, len(title_source) - 6))
        title = f"{method}: " + " ".join(title_source[cut : cut + rng.randint(5, 10)])
        words: list[str] = []
        while len(words) < 150 + (index % 70):
            words.extend(self._span(rng, 10, 30))
            if rng.random() < 0.3:
                words.append(self._rare_name(rng))
        words.insert(int(rng.random() * len(words)), method)
        keywords = tuple(
            " ".join(self._span(rng, 1, 3)).strip(".,;:()") for _ in range(rng.randint(0, 5))
        )
        authors = tuple(
            Author(f"{rng.choice(self.first_names)} {self._rare_name(rng)}")
            for _ in range(rng.randint(1, 8))
        )
        # Roughly arrival order, with backfills: most papers are newer than the previous.
        day = SPAN * (index / max(1, self._count)) - timedelta(hours=rng.random() * 72)
        submitted = START + max(day, timedelta(0))
        upvotes = int(rng.paretovariate(1.2)) - 1
        return Paper(
            id=f"{2411 + index // 100_000:04d}.{index % 100_000:05d}",
            title=title,
            abstract=" ".join(words),
            authors=authors,
            published_at=submitted - timedelta(days=rng.randint(0, 3)),
            submitted_at=submitted,
            upvotes=min(upvotes, 5000),
            comments=rng.randint(0, 12),
            ai_keywords=tuple(k for k in keywords if k),
            github_repo=f"https://github.com/{method.lower()}/{method.lower()}"
            if rng.random() < 0.3
            else None,
            github_stars=rng.randint(0, 3000) if rng.random() < 0.3 else None,
            sources=("huggingface",),
        )

    def papers(self, count: int) -> Iterator[Paper]:
        """``count`` papers, identical for the same seed and count."""
        self._count = count
        rng = random.Random(self.seed * 7919 + count)
        for index in range(count):
            yield self.paper(index, rng)


def generate(count: int, seed: int = 20241101) -> Iterator[Paper]:
    """Shortcut: ``count`` synthetic papers for ``seed``."""
    return CorpusGenerator(seed).papers(count)


__all__ = ["CorpusGenerator", "generate"]

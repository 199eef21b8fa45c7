"""How search results are ordered: the whole formula, in one place.

**Lexical score** ``b``: BM25 (tantivy's: k1 = 1.2, b = 0.75) of every query term a
paper contains, in the paper's whole text (title, keywords, AI summary and abstract as
one field), plus :data:`TITLE_BOOST` of its BM25 in the title and :data:`EXTRA_BOOST`
in the keywords and AI summary. Every paper containing at least one group of the query
is a candidate; one containing more of the query, or rarer parts of it, scores higher.
A group ``a OR b`` scores as the sum of whichever of its terms occur; a phrase as a
phrase. Excluded terms remove a paper; filters (``--since``, ``--min-upvotes``) add
nothing to the score. (One combined field beat per-field BM25 sums on the dev sets:
known-item MRR@10 0.94 against 0.77, bench/README.md.)

**Dense score** ``D`` (when the embedding model is loaded and the papers embedded):
with ``q`` the query's embedding and a paper's vectors (its title and abstract as one
text, then its passages), ``D = (cos(q, whole) + max cos(q, passage)) / 2``.

**Hybrid score**: ``w * L + (1 - w) * D``, where ``L = b / b_top`` (the best lexical
score among the candidates; 0 for a paper the lexical search did not return) and the
lexical weight ``w = LEXICAL_WEIGHT_MAX * c ** LEXICAL_WEIGHT_POWER`` depends on the
query: ``c`` is the share of the query's groups that the best lexical hit contains. A
query whose words a paper has (a title half-remembered) leans on the words; a
paraphrase in other words (c small) on meaning. Candidates: the best
:data:`POOL` papers by ``b`` and the :data:`POOL` nearest by their best vector.

**Priors.** The score is multiplied by :func:`prior`, between 1 and :data:`MAX_PRIOR`:
up to +1% for upvotes (log scale, full at 500) and up to +1% for recency (halving every
year). Priors reorder near-ties; they never lift a paper over one scoring 2% more.

**Order.** Final score, highest first; then the newest row. Lexical-only ranking is
exact (the candidate pool grows until no paper outside it could reach the page). The
hybrid ranking is exact within its pool; pages past the first ``POOL / 2`` results come
from a four times larger pool, after the papers the smaller pools already listed, so
pages never overlap or skip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

# Extra weight of a query term found in the title, and in the keywords or AI summary, on
# top of its weight in the paper's whole text.
TITLE_BOOST = 0.25
EXTRA_BOOST = 0.1

POOL = 200  # candidates from each side of a hybrid search
LEXICAL_WEIGHT_MAX = 0.4
LEXICAL_WEIGHT_POWER = 2

UPVOTE_WEIGHT = 0.01
UPVOTES_FOR_FULL_WEIGHT = 500
RECENCY_WEIGHT = 0.01
RECENCY_HALF_LIFE_DAYS = 365.0
MAX_PRIOR = 1.0 + UPVOTE_WEIGHT + RECENCY_WEIGHT


@dataclass(frozen=True, slots=True)
class Candidate:
    """A paper in the running: its row id, lexical score (0: not a lexical hit), dense
    score (None: not embedded yet), upvotes and date (microseconds since the epoch)."""

    row_id: int
    lexical: float
    dense: float | None
    upvotes: int
    when_us: int | None


@dataclass(frozen=True, slots=True)
class Hit:
    """A paper found: its row id and its final score."""

    row_id: int
    score: float


def prior(upvotes: int, day: int | None, today: int) -> float:
    """The multiplier of a paper's score, in ``[1, MAX_PRIOR]``.

    ``upvotes`` on Hugging Face; ``day`` and ``today`` in days since the epoch (``day``
    None when the paper has no date). ``today`` is fixed per search day, so every page
    of a search ranks alike.
    """
    votes = min(1.0, math.log1p(max(0, upvotes)) / math.log1p(UPVOTES_FOR_FULL_WEIGHT))
    recency = 0.0
    if day is not None:
        age = max(0, today - day)
        recency = 0.5 ** (age / RECENCY_HALF_LIFE_DAYS)
    return 1.0 + UPVOTE_WEIGHT * votes + RECENCY_WEIGHT * recency


def epoch_day(when: datetime | None) -> int | None:
    """Days since the epoch of ``when`` (UTC), or None."""
    if when is None:
        return None
    return math.floor(when.timestamp() / 86400)


def day_of(when_us: int | None) -> int | None:
    """Days since the epoch of a date in microseconds since the epoch, or None."""
    return None if when_us is None else math.floor(when_us / 86_400_000_000)


def lexical_weight(coverage: float) -> float:
    """``w`` of the hybrid score for a best lexical hit holding ``coverage`` (0-1) of the
    query's groups."""
    return LEXICAL_WEIGHT_MAX * max(0.0, min(1.0, coverage)) ** LEXICAL_WEIGHT_POWER


def dense_score(query: np.ndarray, vectors: np.ndarray) -> float:
    """``D`` of a paper whose vectors are ``vectors`` (the whole text first, then its
    passages); all vectors L2-normalised."""
    similarities = vectors @ query
    best_passage = (
        float(similarities[1:].max()) if len(similarities) > 1 else float(similarities[0])
    )
    return (float(similarities[0]) + best_passage) / 2


def dense_scores(query: np.ndarray, vectors: Mapping[int, np.ndarray]) -> dict[int, float]:
    """:func:`dense_score` of many papers (row id -> its vectors) in one product."""
    if not vectors:
        return {}
    rows = list(vectors)
    counts = np.fromiter((len(vectors[r]) for r in rows), dtype=np.int64, count=len(rows))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    similarities = np.concatenate([vectors[r] for r in rows]) @ query
    whole = similarities[starts].copy()
    similarities[starts[counts > 1]] = -np.inf  # the best passage, where there are passages
    best = np.maximum.reduceat(similarities, starts)
    return dict(zip(rows, ((whole + best) / 2).tolist(), strict=True))


def fuse(candidates: Sequence[Candidate], coverage: float, today: int) -> list[Hit]:
    """The hybrid order of ``candidates`` (see the module's formula). A candidate not
    embedded yet gets the median dense score of the others: neither pushed nor held."""
    weight = lexical_weight(coverage)
    top = max((c.lexical for c in candidates), default=0.0)
    known = sorted(c.dense for c in candidates if c.dense is not None)
    neutral = known[len(known) // 2] if known else 0.0
    hits = []
    for c in candidates:
        lexical = c.lexical / top if top > 0 else 0.0
        dense = neutral if c.dense is None else c.dense
        score = weight * lexical + (1 - weight) * dense
        hits.append(Hit(c.row_id, score * prior(c.upvotes, day_of(c.when_us), today)))
    return sorted(hits, key=lambda h: (-h.score, -h.row_id))


def lexical_only(candidates: Sequence[Candidate], today: int) -> list[Hit]:
    """The order of lexical ``candidates`` without embeddings: ``b`` times the prior."""
    hits = [
        Hit(c.row_id, c.lexical * prior(c.upvotes, day_of(c.when_us), today)) for c in candidates
    ]
    return sorted(hits, key=lambda h: (-h.score, -h.row_id))


__all__ = [
    "EXTRA_BOOST",
    "MAX_PRIOR",
    "POOL",
    "TITLE_BOOST",
    "Candidate",
    "Hit",
    "day_of",
    "dense_score",
    "dense_scores",
    "epoch_day",
    "fuse",
    "lexical_only",
    "lexical_weight",
    "prior",
]

"""How search results are ordered: the whole formula, in one place.

**Lexical score.** BM25 (tantivy's: k1 = 1.2, b = 0.75, per field) of every query term
that a paper contains, summed over the fields it occurs in, each field weighted by
:data:`FIELD_BOOSTS` (a title word counts most, then keywords and the AI summary, then
the abstract). Every paper containing at least one query group is a candidate; a paper
containing more of the query, or rarer parts of it, scores higher. A group of ``a OR
b`` scores as the sum of whichever of its terms occur; a phrase scores as a phrase.
Excluded terms remove a paper; filters (``--since``, ``--min-upvotes``) add nothing to
the score.

**Priors.** The lexical score is multiplied by :func:`prior`, between 1 and
:data:`MAX_PRIOR` (+10%): up to +5% for upvotes (log scale, full at 500) and up to +5%
for recency (halving every year). Priors reorder near-ties; they can never lift a
paper over one that scores more than 10% higher.

**Order.** Final score, highest first; then the newest row. The ranking is exact: the
candidate pool grows until no paper outside it could reach the requested page (see
:func:`bot.search.lexical.LexicalIndex.ranked`), so pages never overlap or skip.
"""

from __future__ import annotations

import math
from datetime import datetime

# Field weights of the lexical score (tantivy boosts).
FIELD_BOOSTS: dict[str, float] = {
    "title": 2.0,
    "keywords": 1.2,
    "summary": 1.2,
    "abstract": 1.0,
    "authors": 1.0,
}

UPVOTE_WEIGHT = 0.05
UPVOTES_FOR_FULL_WEIGHT = 500
RECENCY_WEIGHT = 0.05
RECENCY_HALF_LIFE_DAYS = 365.0
MAX_PRIOR = 1.0 + UPVOTE_WEIGHT + RECENCY_WEIGHT


def prior(upvotes: int, day: int | None, today: int) -> float:
    """The multiplier of a paper's score, in ``[1, MAX_PRIOR]``.

    ``upvotes`` on Hugging Face; ``day`` and ``today`` in days since the epoch (``day``
    None when the paper has no date). ``today`` is fixed per search, so every page of
    one search day ranks alike.
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


__all__ = [
    "FIELD_BOOSTS",
    "MAX_PRIOR",
    "epoch_day",
    "prior",
]

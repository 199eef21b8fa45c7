"""How search results are ordered, as one pure function of a query and a paper.

Order: papers matching more query groups first (all groups = a full match); then where
the matches are (every group in the title, else in title or keywords, else anywhere;
fielded terms such as ``author:`` count as well placed); then upvotes, then recency
(Daily Papers date, else arXiv date), then the newest row.

The store fetches a small candidate set with early-terminating index queries and sorts
it with :func:`rank_key`; a brute-force search over every paper with the same key gives
the same order whenever the candidate queries were exhaustive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.models import Paper
from bot.query import Field, Query, Term, contains_phrase, term_matches
from bot.store.records import recency

# Where an unfielded term was found: 0 title, 1 keywords, 2 abstract.
_PLACES = (("title", 0), ("keywords", 1), ("abstract", 2))
NOT_FOUND = 3


def term_place(term: Term, fields: Mapping[str, Sequence[str]]) -> int:
    """0-2 for where ``term`` best matches (title, keywords, abstract), 3 if nowhere."""
    if term.field is not Field.ANY:
        return 0 if term_matches(term, fields) else NOT_FOUND
    words = term.terms
    if len(words) == 1:  # most terms: a membership test per column, inline (hot in search)
        word = words[0]
        for column, place in _PLACES:
            if word in fields.get(column, ()):
                return place
        return NOT_FOUND
    for column, place in _PLACES:
        if contains_phrase(fields.get(column, ()), words):
            return place
    return NOT_FOUND


def group_places(query: Query, fields: Mapping[str, Sequence[str]]) -> list[int]:
    """For each group of ``query``: the best place any of its terms matches."""
    places = []
    for group in query.groups:
        best = NOT_FOUND
        for term in group:
            place = term_place(term, fields)
            if place < best:
                best = place
        places.append(best)
    return places


def excluded(query: Query, fields: Mapping[str, Sequence[str]]) -> bool:
    return any(term_matches(t, fields) for t in query.excluded)


RankKey = tuple[int, int, int, float, int]


def rank_key(
    query: Query,
    fields: Mapping[str, Sequence[str]],
    paper: Paper,
    row_id: int,
    *,
    assume_all: bool = False,
) -> RankKey | None:
    """Sort key of ``paper`` for ``query`` (smaller first); None when it matches nothing
    or contains an excluded term. ``fields``: column -> analyzed terms.

    ``assume_all``: the paper is known to match every group (the index said so), so a
    group not found in ``fields`` is taken to be in the abstract, which may be left out.
    """
    if assume_all:
        places = [2 if p == NOT_FOUND else p for p in group_places(query, fields)]
    elif excluded(query, fields):
        return None
    else:
        places = [p for p in group_places(query, fields) if p != NOT_FOUND]
    if not places:
        return None
    return (
        -len(places),
        max(places),
        -(paper.upvotes or 0),
        -recency(paper),
        -row_id,
    )


__all__ = ["NOT_FOUND", "RankKey", "group_places", "rank_key", "term_place"]

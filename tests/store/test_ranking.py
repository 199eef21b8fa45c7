"""bot.store.ranking against its plain definition: a term's place is the first of title,
keywords and abstract whose words contain it (as a contiguous run, for a phrase)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.query import Field, Query, Term
from bot.store.ranking import NOT_FOUND, group_places, term_place

WORDS = st.sampled_from(["model", "language", "large", "diffusion", "video", "3"])
COLUMN_WORDS = st.lists(WORDS, max_size=8)
FIELDS = st.fixed_dictionaries(
    {"title": COLUMN_WORDS, "keywords": COLUMN_WORDS},
    optional={"abstract": COLUMN_WORDS, "authors": COLUMN_WORDS},
)
TERMS = st.builds(Term, st.lists(WORDS, min_size=1, max_size=3).map(tuple))


def reference_place(term: Term, fields: dict[str, list[str]]) -> int:
    size = len(term.terms)
    for place, column in enumerate(("title", "keywords", "abstract")):
        words = fields.get(column, [])
        runs = {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}
        if term.terms in runs:
            return place
    return NOT_FOUND


@given(TERMS, FIELDS)
def test_a_term_is_placed_in_the_first_column_that_contains_it(term, fields) -> None:
    assert term_place(term, fields) == reference_place(term, fields)


@given(st.lists(st.lists(TERMS, min_size=1, max_size=3).map(tuple), min_size=1, max_size=3), FIELDS)
def test_a_group_is_placed_where_its_best_term_is(groups, fields) -> None:
    query = Query(groups=tuple(groups))
    expected = [min(reference_place(t, fields) for t in group) for group in groups]
    assert group_places(query, fields) == expected


def test_fielded_terms_count_as_well_placed_only_where_they_match() -> None:
    fields = {"title": ["video"], "keywords": [], "authors": ["ada", "lovelace"]}
    assert term_place(Term(("ada",), Field.AUTHOR), fields) == 0
    assert term_place(Term(("video",), Field.AUTHOR), fields) == NOT_FOUND
    assert term_place(Term(("video",), Field.TITLE), fields) == 0

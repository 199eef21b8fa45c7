"""The ranking formula's parts (bot/search/ranking.py), as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bot.search.ranking import (
    MAX_PRIOR,
    Candidate,
    dense_score,
    dense_scores,
    fuse,
    lexical_weight,
    prior,
)

unit = (
    hnp.arrays(np.float32, 8, elements=st.floats(-1, 1, width=32))
    .filter(lambda v: np.linalg.norm(v) > 0.1)
    .map(lambda v: v / np.linalg.norm(v))
)


@settings(max_examples=100, deadline=None)
@given(query=unit, papers=st.lists(st.lists(unit, min_size=1, max_size=5), min_size=1, max_size=8))
def test_many_papers_score_as_each_does_alone(query, papers) -> None:
    vectors = {row: np.stack(vs) for row, vs in enumerate(papers)}
    together = dense_scores(query, vectors)
    for row, matrix in vectors.items():
        assert together[row] == pytest.approx(dense_score(query, matrix), abs=1e-5)


@given(
    votes=st.integers(0, 10**9), more=st.integers(0, 10**6), day=st.integers(0, 30000),
    age=st.integers(0, 5000),
)  # fmt: skip
def test_priors_stay_gentle_and_favour_votes_and_recency(votes, more, day, age) -> None:
    today = 30000
    value = prior(votes, day, today)
    assert 1.0 <= value <= MAX_PRIOR <= 1.021
    assert prior(votes + more, day, today) >= value
    assert prior(votes, max(0, day - age), today) <= value
    assert prior(votes, None, today) <= value


@given(st.floats(-1, 2))
def test_the_lexical_weight_grows_with_coverage_and_stays_under_half(coverage) -> None:
    weight = lexical_weight(coverage)
    assert 0.0 <= weight <= 0.4
    assert lexical_weight(min(1.0, max(0.0, coverage)) + 0.1) >= weight


def test_a_paper_not_embedded_yet_is_neither_pushed_nor_held() -> None:
    candidates = [
        Candidate(1, 10.0, 0.9, 0, None),
        Candidate(2, 10.0, 0.5, 0, None),
        Candidate(3, 10.0, 0.1, 0, None),
        Candidate(4, 10.0, None, 0, None),  # same words, no vectors yet: the median
    ]
    order = [h.row_id for h in fuse(candidates, coverage=1.0, today=0)]
    assert order.index(4) in (1, 2) and order[0] == 1 and order[-1] == 3

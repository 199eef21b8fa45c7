"""The retry arithmetic of bot.sources.http: server-requested waits and jittered backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sources.http import DEFAULT_USER_AGENT, RetryPolicy, server_requested_wait

NOW = datetime(2025, 9, 8, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": " 1.5 "}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, 90.0),
        ({"retry-after": format_datetime(NOW - timedelta(seconds=90), usegmt=True)}, 0.0),
        ({"retry-after": "Mon, 08 Sep 2025 12:00:30"}, 30.0),  # no zone: read as UTC
        ({"ratelimit": '"api";r=0;t=55'}, 55.0),
        ({"ratelimit": '"api";r=12;t=0'}, 0.0),
        ({"ratelimit": '"api";t=4.5;r=0'}, 4.5),
        ({"ratelimit": '"api";r=0;t=20', "retry-after": "5"}, 20.0),
        ({"ratelimit": '"api";r=0;t=5', "retry-after": "20"}, 20.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"ratelimit": '"api";r=0'}, None),
        ({"ratelimit": '"tst";r=0;tt=5'}, None),
        ({}, None),
    ],
)
def test_server_requested_wait(headers: dict[str, str], wait: float | None) -> None:
    assert server_requested_wait(headers, NOW) == wait


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["retry-after", "ratelimit", "other"]), st.text()))
def test_any_header_value_gives_none_or_a_finite_wait(headers: dict[str, str]) -> None:
    wait = server_requested_wait(headers, NOW)
    assert wait is None or 0.0 <= wait < float("inf")


@settings(max_examples=200)
@given(
    retry=st.integers(min_value=0, max_value=60),
    base=st.floats(min_value=0.01, max_value=5),
    cap=st.floats(min_value=0.01, max_value=120),
    seed=st.integers(),
)
def test_backoff_is_full_jitter_under_the_exponential_ceiling(
    retry: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    wait = policy.backoff(retry, random.Random(seed))
    assert 0.0 <= wait <= min(cap, base * 2**retry)


def test_backoff_spreads_over_its_whole_range() -> None:
    rng = random.Random(7)
    waits = [RetryPolicy(base_delay=1.0).backoff(3, rng) for _ in range(400)]
    assert max(waits) <= 8.0
    assert min(waits) < 1.0 and max(waits) > 7.0  # full jitter, not a fixed delay


def test_user_agent_names_the_project_and_version() -> None:
    from bot import __version__

    assert DEFAULT_USER_AGENT.startswith(f"paperboy/{__version__} (+https://")


def test_a_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    assert RetryPolicy(max_attempts=1).backoff(10_000, random.Random(1)) <= 30.0

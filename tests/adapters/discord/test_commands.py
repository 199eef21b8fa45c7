"""The typed options produce command lines the core parses to the same values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.commands import search_args, subscribe_args, timezone_choices, watch_args
from bot.models import Destination, DigestDays, DigestFormat, Subscription
from bot.options import split_options
from bot.schedule import MAX_TOP, parse_subscribe

BASE = Subscription(destination=Destination("discord", "1", "2"))


@settings(max_examples=60, deadline=None)
@given(
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", None]),
    days=st.sampled_from(["weekdays", "daily", None]),
    top=st.none() | st.integers(1, MAX_TOP),
    min_upvotes=st.none() | st.integers(0, 100_000),
    topic=st.sampled_from([None, "diffusion", '"state space" OR mamba -survey', "top 5 at"]),
    format=st.sampled_from(["compact", "full", None]),
    empty=st.sampled_from(["post", "skip", None]),
)
def test_subscribe_options_round_trip_through_the_core_parser(
    hour: int,
    minute: int,
    zone: str | None,
    days: str | None,
    top: int | None,
    min_upvotes: int | None,
    topic: str | None,
    format: str | None,
    empty: str | None,
) -> None:
    at = f"{hour:02d}:{minute:02d}"
    parsed = parse_subscribe(
        subscribe_args(at, zone, days, top, min_upvotes, topic, format, empty), BASE
    )
    assert parsed.at == at
    assert parsed.timezone == (zone or BASE.timezone)
    assert parsed.days == (DigestDays(days) if days else BASE.days)
    assert parsed.top == (BASE.top if top is None else top)
    assert parsed.min_upvotes == (BASE.min_upvotes if min_upvotes is None else min_upvotes)
    assert parsed.topic == topic  # last on the line: a topic may contain any word
    assert parsed.format == (DigestFormat(format) if format else BASE.format)
    assert parsed.post_empty == (empty == "post")


@settings(max_examples=60, deadline=None)
@given(
    query=st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=40).filter(
        str.strip
    ),
    since=st.sampled_from([None, "7d", "2025-01-01"]),
    min_upvotes=st.none() | st.integers(0, 1000),
    page=st.none() | st.integers(1, 100),
)
def test_search_options_round_trip(
    query: str, since: str | None, min_upvotes: int | None, page: int | None
) -> None:
    parsed = split_options(
        search_args(query, since, min_upvotes, page), ["since", "min-upvotes", "page"]
    )
    assert parsed.rest == " ".join(query.split())
    expected = {"since": since, "min-upvotes": min_upvotes, "page": page}
    assert parsed.options == {k: str(v) for k, v in expected.items() if v is not None}


def test_watch_here_goes_last() -> None:
    assert watch_args(" mamba OR ssm ", here=True) == "mamba OR ssm here"
    assert watch_args("mamba", here=False) == "mamba"


def test_timezone_choices_prefer_prefix_matches() -> None:
    # "ind" starts the Indian/ zones and sits inside others (Africa/Windhoek sorts first).
    names = [c.value for c in timezone_choices("IND")]
    indian = [n for n in names if n.startswith("Indian/")]
    assert {"Indian/Chagos", "Indian/Maldives", "Indian/Mauritius"} <= set(indian)
    assert names[: len(indian)] == sorted(indian)  # the prefix matches first, in order
    assert names[len(indian)] == "Africa/Windhoek"  # then the others, in order
    assert "America/Indiana/Knox" in names[len(indian) :]
    assert "America/New_York" in [c.value for c in timezone_choices("new york")]
    assert len(timezone_choices("")) == 25
    assert timezone_choices("no such zone at all") == []

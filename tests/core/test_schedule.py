from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import Destination, DigestDays, DigestFormat, Subscription
from bot.options import UsageError, parse_time
from bot.schedule import describe, latest_slot, next_slot, parse_subscribe

BASE = Subscription(destination=Destination("slack", "T1", "C1"))


def test_subscribe_options_are_parsed():
    s = parse_subscribe(
        "at 7:30am tz Europe/Berlin daily top 5 min-upvotes 3 format compact empty post "
        "topic diffusion OR llm -survey",
        BASE,
    )
    assert (s.at, s.timezone, s.days, s.top, s.min_upvotes) == (
        "07:30",
        "Europe/Berlin",
        DigestDays.DAILY,
        5,
        3,
    )
    assert s.format is DigestFormat.COMPACT and s.post_empty
    assert s.topic == "diffusion OR llm -survey"
    assert BASE.at == "09:00" and BASE.topic is None  # the base is not modified


def test_bare_time_and_defaults_are_kept():
    s = parse_subscribe("17:45", BASE)
    assert s.at == "17:45" and s.days is DigestDays.WEEKDAYS and s.top == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("at 25:00", "not a time of day"),
        ("at noonish", "Can't read the time"),
        ("at 13pm", "hour is 1 to 12"),
        ("tz Mars/Olympus", "Unknown time zone"),
        ("top 0", "from 1 to 25"),
        ("top many", "whole number"),
        ("min-upvotes -3", "whole number"),
        ("format fancy", "compact"),
        ("topic -survey", "cannot only exclude"),
        ("topic", "needs a query"),
        ("hourly", "I don't understand `hourly`"),
    ],
)
def test_bad_subscribe_options_get_one_clear_sentence(args, message):
    with pytest.raises(UsageError, match=message):
        parse_subscribe(args, BASE)


@given(st.integers(0, 23), st.integers(0, 59))
def test_every_24h_time_round_trips(hour, minute):
    assert parse_time(f"{hour}:{minute:02d}") == f"{hour:02d}:{minute:02d}"


def _utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_slots_follow_the_zone_across_dst():
    berlin = Subscription(
        destination=BASE.destination, timezone="Europe/Berlin", days=DigestDays.DAILY
    )
    # Europe switches to summer time on Sunday 29 March 2026: 09:00 is 08:00Z, then 07:00Z.
    assert next_slot(berlin, _utc(2026, 3, 28, 9)) == _utc(2026, 3, 29, 7)
    assert next_slot(berlin, _utc(2026, 3, 27, 9)) == _utc(2026, 3, 28, 8)
    ny = Subscription(destination=BASE.destination, timezone="America/New_York", at="08:00")
    # US falls back on Sunday 1 November 2026; the next weekday slot is Monday 13:00Z.
    assert next_slot(ny, _utc(2026, 10, 30, 13)) == _utc(2026, 11, 2, 13)
    assert next_slot(ny, _utc(2026, 10, 29, 13)) == _utc(2026, 10, 30, 12)


def test_weekdays_skip_the_weekend():
    s = Subscription(destination=BASE.destination)  # weekdays, 09:00 UTC
    friday = _utc(2026, 11, 20, 9)
    assert next_slot(s, friday) == _utc(2026, 11, 23, 9)  # Monday


def test_latest_slot_within_the_grace_window():
    s = Subscription(destination=BASE.destination)
    grace = timedelta(hours=6)
    assert latest_slot(s, _utc(2026, 11, 23, 9, 5), grace=grace) == _utc(2026, 11, 23, 9)
    assert latest_slot(s, _utc(2026, 11, 23, 9, 0), grace=grace) == _utc(2026, 11, 23, 9)
    assert latest_slot(s, _utc(2026, 11, 23, 8, 59), grace=grace) is None
    assert latest_slot(s, _utc(2026, 11, 23, 15, 1), grace=grace) is None  # too late
    assert latest_slot(s, _utc(2026, 11, 22, 10), grace=grace) is None  # Sunday


def test_describe_reads_back_the_settings():
    s = parse_subscribe("at 08:15 tz Asia/Tokyo top 3 topic robotics", BASE)
    text = describe(s)
    assert "08:15 Asia/Tokyo on weekdays" in text and "top 3" in text and "robotics" in text


@pytest.mark.parametrize(
    ("zone", "at", "now", "first"),
    [
        # Europe falls back on Sunday 25 October 2026: 02:30 comes at 00:30Z, then 01:30Z.
        ("Europe/Berlin", "02:30", _utc(2026, 10, 25, 1, 31), _utc(2026, 10, 25, 0, 30)),
        # The US on Sunday 1 November 2026: 01:30 comes at 05:30Z, then 06:30Z.
        ("America/New_York", "01:30", _utc(2026, 11, 1, 7), _utc(2026, 11, 1, 5, 30)),
    ],
)
def test_the_repeated_hour_of_a_fall_back_holds_one_slot(zone, at, now, first):
    sub = Subscription(destination=BASE.destination, timezone=zone, at=at, days=DigestDays.DAILY)
    slot = latest_slot(sub, now, grace=timedelta(hours=6))  # returns (it used to spin)
    # In UTC: Python never calls a time of the repeated hour equal to one in another zone.
    assert slot is not None and slot.astimezone(UTC) == first
    following = next_slot(sub, first)
    assert following - first > timedelta(hours=23)  # the next day's, not the repeat
    assert following.astimezone(following.tzinfo).strftime("%H:%M") == at

"""When digests run: subscription options parsed from chat, and cron slots in a zone.

Slots come from APScheduler's ``CronTrigger`` in the subscription's own time zone, so
the scheduler and the catch-up on start agree on them, DST changes included.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.models import MAX_DIGEST_TOP, DigestDays, DigestFormat, Subscription
from bot.options import TIME_OF_DAY, UsageError, normalize_quotes, parse_time, parse_zone
from bot.query import QueryError, parse

MAX_TOP = MAX_DIGEST_TOP

SUBSCRIBE_USAGE = (
    "subscribe [at 09:00] [tz Europe/Berlin] [weekdays|daily] [top 10] [min-upvotes 5] "
    "[format compact|full] [empty post|skip] [arxiv|hf-only] [topic <query>]"
)


def _number(word: str, value: str | None, *, low: int, high: int) -> int:
    if value is None or not value.isdigit():
        raise UsageError(f"`{word}` needs a whole number from {low} to {high}.")
    number = int(value)
    if not low <= number <= high:
        raise UsageError(f"`{word}` must be from {low} to {high}, not {number}.")
    return number


def parse_subscribe(args: str, base: Subscription) -> Subscription:
    """Apply ``/papers subscribe`` options to ``base``; nothing is half-applied on error."""
    words = normalize_quotes(args).split()
    sub = replace(base)
    i = 0
    while i < len(words):
        word = words[i].lower()
        value = words[i + 1] if i + 1 < len(words) else None
        if word == "at":
            if value is None:
                raise UsageError("`at` needs a time, e.g. `at 09:00`.")
            sub.at, i = parse_time(value), i + 2
        elif (":" in word and TIME_OF_DAY.match(word)) or re.fullmatch(r"\d{1,2}(am|pm)", word):
            sub.at, i = parse_time(word), i + 1
        elif word in ("tz", "timezone", "zone"):
            if value is None:
                raise UsageError("`tz` needs a zone, e.g. `tz Europe/Berlin`.")
            sub.timezone, i = parse_zone(value), i + 2
        elif word in ("weekdays", "daily"):
            sub.days, i = DigestDays(word), i + 1
        elif word == "top":
            sub.top, i = _number("top", value, low=1, high=MAX_TOP), i + 2
        elif word in ("min-upvotes", "min_upvotes", "minupvotes"):
            sub.min_upvotes, i = _number("min-upvotes", value, low=0, high=100_000), i + 2
        elif word == "format":
            if value is None or value.lower() not in ("compact", "full"):
                raise UsageError("`format` is `compact` or `full`.")
            sub.format, i = DigestFormat(value.lower()), i + 2
        elif word == "empty":
            if value is None or value.lower() not in ("post", "skip"):
                raise UsageError("`empty` is `post` (say so on empty days) or `skip`.")
            sub.post_empty, i = value.lower() == "post", i + 2
        elif word in ("arxiv", "hf-only"):
            sub.include_arxiv, i = word == "arxiv", i + 1
        elif word == "topic":
            topic = " ".join(words[i + 1 :])
            if not topic:
                raise UsageError("`topic` needs a query, e.g. `topic diffusion OR llm`.")
            if topic.lower() in ("none", "off", "any"):
                sub.topic = None
                break
            try:
                parse(topic)
            except QueryError as exc:
                raise UsageError(f"That topic doesn't work: {exc}") from None
            sub.topic = topic
            break
        else:
            raise UsageError(f"I don't understand `{words[i]}` here.")
    return sub


def trigger_for(sub: Subscription) -> CronTrigger:
    hour, minute = (int(x) for x in sub.at.split(":"))
    days = "mon-fri" if sub.days is DigestDays.WEEKDAYS else "*"
    return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=ZoneInfo(sub.timezone))


def next_slot(sub: Subscription, after: datetime) -> datetime:
    """The first digest time strictly after ``after``.

    When the clocks go back, the hour that repeats holds the digest time twice (02:30
    CEST, then 02:30 CET): the second is not a slot of its own, the day has one digest.
    """
    trigger = trigger_for(sub)
    # Arithmetic in UTC: on a datetime in the zone, + 1 µs would drop ``fold`` and
    # land on the first of two equal wall times again (and a caller looping would spin).
    start = after.astimezone(UTC)
    local = after.astimezone(trigger.timezone).replace(tzinfo=None)
    while True:
        fire = trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
        assert fire is not None  # a cron trigger without end date always fires again
        if fire.replace(tzinfo=None) != local:
            return fire
        start = fire.astimezone(UTC)


def latest_slot(sub: Subscription, now: datetime, *, grace: timedelta) -> datetime | None:
    """The most recent digest time in ``(now - grace, now]``, if any (for catch-up)."""
    slot = None
    candidate = trigger_for(sub).get_next_fire_time(None, now - grace)
    while candidate is not None and candidate <= now:
        slot = candidate
        candidate = next_slot(sub, candidate)
    return slot


def describe(sub: Subscription) -> str:
    """One line a user reads back: when and what the digest is."""
    days = "on weekdays" if sub.days is DigestDays.WEEKDAYS else "every day"
    parts = [f"{sub.at} {sub.timezone} {days}", f"top {sub.top}"]
    if sub.min_upvotes:
        parts.append(f"at least {sub.min_upvotes} upvotes")
    if sub.topic:
        parts.append(f"topic `{sub.topic}`")
    parts.append(f"{sub.format.value} format")
    if sub.post_empty:
        parts.append("says so on empty days")
    if sub.include_arxiv:
        parts.append("with new arXiv papers")
    return ", ".join(parts)

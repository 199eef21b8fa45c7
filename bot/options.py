"""Command-line style options inside slash-command text: ``--since 7d --min-upvotes 5``.

Slash commands arrive as one string; this splits the ``--options`` a subcommand accepts
from the rest (the query), and turns option values into typed values with messages a
user can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.models import shorten

# Chat clients (macOS, iOS, Slack) like to turn quotes into typographic ones.
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "″": '"'})
_OPTION = re.compile(r"(?:^|\s)--([A-Za-z][\w-]*)(?:=(\S*)|\s+(?!--)(\S+)|(?=\s|$))")


class UsageError(ValueError):
    """Bad command input; ``str(error)`` is one sentence telling the user what to do."""


@dataclass(frozen=True, slots=True)
class ParsedArgs:
    rest: str
    options: dict[str, str]


def normalize_quotes(text: str) -> str:
    return text.translate(_SMART_QUOTES)


ECHO_CHARS = 40


def echo(value: str) -> str:
    """``value`` fit to quote back in a reply: control and other invisible characters
    escaped (``\\x03``), at most :data:`ECHO_CHARS` characters however long it is."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return shorten(shown, ECHO_CHARS)


def _shown(value: str) -> str:
    return f"'{echo(value)}'"


def split_options(text: str, allowed: Iterable[str]) -> ParsedArgs:
    """Pull ``--name value`` / ``--name=value`` out of ``text``; the rest is returned as is."""
    allowed = tuple(allowed)
    options: dict[str, str] = {}
    text = normalize_quotes(text)

    def take(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name not in allowed:
            known = ", ".join(f"--{a}" for a in allowed) or "none"
            raise UsageError(f"Unknown option --{echo(name)}. Options here: {known}.")
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if not value:
            raise UsageError(f"--{name} needs a value, e.g. {_EXAMPLES.get(name, '--' + name)}.")
        options[name] = value
        return " "

    rest = _OPTION.sub(take, text)
    return ParsedArgs(" ".join(rest.split()), options)


_EXAMPLES = {
    "since": "--since 7d or --since 2025-01-01",
    "min-upvotes": "--min-upvotes 5",
    "page": "--page 2",
    "limit": "--limit 5",
}
_DURATION = re.compile(r"^(\d{1,12})\s*([hdwmy])$", re.IGNORECASE)
_UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}
_INTEGER = re.compile(r"[+-]?\d+(?:_\d+)*")  # what int() reads, digits aside


# The oldest --since accepted: older adds nothing (arXiv began in 1991) and, far enough
# back, date arithmetic overflows (``--since 2100y``, ``--since 0001-01-01T00:00+05:00``).
EARLIEST_SINCE = datetime(1900, 1, 1, tzinfo=UTC)
# The largest --min-upvotes accepted (no paper has this many; larger values overflow
# SQLite's 64-bit integers).
MAX_MIN_UPVOTES = 1_000_000
# A date a few hours ahead is "today" somewhere east of UTC; further ahead is a typo.
_FUTURE_SLACK = timedelta(days=1)


def parse_since(value: str, *, now: datetime) -> datetime:
    """``7d``, ``24h``, ``2w``, ``3m``, ``1y`` or a date ``2025-01-01`` -> an aware datetime.

    The result lies between :data:`EARLIEST_SINCE` and ``now`` (a date up to a day ahead is
    taken as ``now``); anything else is a :class:`UsageError`.
    """
    text = value.strip()
    too_far_back = UsageError(
        f"--since {_shown(value)} is too far back: use a date from 1900-01-01 on "
        "or an age like 7d or 2y."
    )
    duration = _DURATION.match(text)
    if duration:
        days = int(duration.group(1)) * _UNIT_DAYS[duration.group(2).lower()]
        if days > (now - EARLIEST_SINCE).days:  # before timedelta(), which overflows
            raise too_far_back
        return now - timedelta(days=days)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"Can't read --since {_shown(value)}: use an age like 7d, 24h, 2w "
            "or a date like 2025-01-01."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed < EARLIEST_SINCE:
        raise too_far_back
    if parsed - now > _FUTURE_SLACK:
        raise UsageError(
            f"--since {_shown(value)} is in the future: use a past date like 2025-01-01 "
            "or an age like 7d."
        )
    return min(parsed, now)


def check_range(name: str, number: int, *, maximum: int, minimum: int = 0) -> int:
    """``number`` if it lies in ``[minimum, maximum]``, else a :class:`UsageError`."""
    if number < minimum or number > maximum:
        raise UsageError(f"--{name} must be between {minimum} and {maximum}.")
    return number


def parse_positive_int(name: str, value: str, *, maximum: int, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        if _INTEGER.fullmatch(value.strip()):  # too many digits for int() (over 4300)
            raise UsageError(f"--{name} must be between {minimum} and {maximum}.") from None
        raise UsageError(f"--{name} takes a whole number, not {_shown(value)}.") from None
    return check_range(name, number, minimum=minimum, maximum=maximum)


TIME_OF_DAY = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.IGNORECASE)


def parse_time(text: str) -> str:
    """``9``, ``9:30``, ``09:00``, ``9am``, ``9:30pm`` -> ``HH:MM`` (24 h)."""
    match = TIME_OF_DAY.match(text.strip())
    if not match:
        raise UsageError(f"Can't read the time {text!r}: use 24-hour HH:MM like 09:00 or 17:30.")
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half:
        if not 1 <= hour <= 12:
            raise UsageError(f"{text!r} is not a time: with am/pm the hour is 1 to 12.")
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        raise UsageError(f"{text!r} is not a time of day: use 00:00 to 23:59.")
    return f"{hour:02d}:{minute:02d}"


def parse_zone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"Unknown time zone {name!r}: use a name like Europe/Berlin, America/New_York or UTC."
        ) from None
    return name

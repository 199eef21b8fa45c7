"""Whatever a user types, option parsing answers with a value or one short UsageError sentence.

Property tests over arbitrary text (controls, emoji, lone surrogates, huge numbers) for the
parsers behind ``/papers`` options, paper ids and ``shorten``, plus the end-to-end replies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.models import CommandRequest, ReplyKind, is_arxiv_id, normalize_paper_id, shorten
from bot.options import (
    ParsedArgs,
    UsageError,
    parse_positive_int,
    parse_since,
    split_options,
)
from tests.core.conftest import CHANNEL, NOW

EARLIEST_SINCE = datetime(1900, 1, 1, tzinfo=UTC)  # the oldest --since accepted
# Any code point: controls, emoji, combining marks and (unlike st.text()'s default) surrogates.
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(any_char, max_size=40)
nows = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
huge_digits = st.builds(
    lambda sign, count, digit: sign + digit * count,
    st.sampled_from(["", "+", "-"]),
    st.integers(4000, 12_000),  # int() refuses more than 4300 digits
    st.sampled_from("0159"),
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    huge_digits,
    st.from_regex(r"[+-]?[0-9][0-9_]{0,25}", fullmatch=True),
    any_text,
)
durations = st.builds(
    lambda amount, space, unit: f"{amount}{space}{unit}",
    st.integers(0, 99_999),
    st.sampled_from(["", " "]),
    st.sampled_from("hdwmyHDWMYs"),
)
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))
iso_dates = st.one_of(
    moments.map(lambda m: m.date().isoformat()),
    moments.map(datetime.isoformat),
    st.builds(lambda m, tz: m.replace(tzinfo=tz).isoformat(), moments, offsets),
)
since_values = st.one_of(durations, iso_dates, numbers, any_text)


def usage_or(call, *args, **kwargs):
    """``call(...)``, or None when it raised a UsageError fit to show a user."""
    try:
        return call(*args, **kwargs)
    except UsageError as exc:
        message = str(exc)
        assert message.endswith(".") and "\n" not in message, message
        assert len(message) <= 200, message[:300]
        return None


@given(since_values, nows)
@example("2100y", NOW)
@example("9999y", NOW)
@example("0001-01-01", NOW)
@example("0001-01-01T00:00+05:00", NOW)
@example("9999-12-31", NOW)
@example("9999-12-31T23:59-05:00", NOW)
def test_since_is_an_aware_past_moment_or_a_usage_error(value: str, now: datetime) -> None:
    since = usage_or(parse_since, value, now=now)
    if since is not None:
        assert since.tzinfo is not None and since.utcoffset() is not None
        assert EARLIEST_SINCE <= since <= now
        since.astimezone(UTC)  # what the store does with it: no OverflowError


@given(st.integers(0, 9999), st.sampled_from("hdwmy"), nows)
def test_an_age_counts_back_from_now_to_1900(amount: int, unit: str, now: datetime) -> None:
    age = timedelta(days=amount * {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}[unit])
    since = usage_or(parse_since, f"{amount}{unit}", now=now)
    assert since == (now - age if age <= now - EARLIEST_SINCE else None)


@given(moments.filter(lambda m: m.year >= 1900), nows)
def test_a_past_date_is_taken_as_is_in_utc(moment: datetime, now: datetime) -> None:
    expected = moment.replace(tzinfo=UTC)
    since = usage_or(parse_since, moment.isoformat(), now=now)
    if expected <= now:
        assert since == expected


@given(numbers, st.sampled_from([50, 1_000_000]))
@example("99999999999999999999", 50)
@example("9" * 10_000, 1_000_000)
def test_a_count_is_in_range_or_a_usage_error(value: str, maximum: int) -> None:
    number = usage_or(parse_positive_int, "min-upvotes", value, maximum=maximum)
    assert number is None or (type(number) is int and 0 <= number <= maximum)


@given(st.integers(0, 1_000_000))
def test_a_count_in_range_reads_back(number: int) -> None:
    assert parse_positive_int("min-upvotes", str(number), maximum=1_000_000) == number


ALLOWED = ("since", "min-upvotes", "page")
option_tokens = st.sampled_from(
    ["--since", "--page", "--min-upvotes", "--SINCE", "--bogus", "--", "-", "=", "--page=", "7d"]
)
long_names = st.integers(1, 5_000).map(lambda n: "--" + "x" * n)
command_texts = st.one_of(
    any_text,
    st.lists(st.one_of(option_tokens, long_names, any_text), max_size=8).map(" ".join),
)


@given(command_texts)
@example("diffusion --" + "x" * 3000)
def test_split_options_keeps_allowed_options_or_raises_usage(text: str) -> None:
    parsed = usage_or(split_options, text, ALLOWED)
    if parsed is not None:
        assert isinstance(parsed, ParsedArgs)
        assert set(parsed.options) <= set(ALLOWED)
        assert all(v and not any(c.isspace() for c in v) for v in parsed.options.values())
        assert parsed.rest == " ".join(parsed.rest.split())


words = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=10)
option_values = st.text(st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1)


@given(st.lists(words, max_size=4), st.dictionaries(st.sampled_from(ALLOWED), option_values))
def test_options_and_query_words_separate_again(query: list[str], options: dict) -> None:
    text = " ".join(query + [f"--{k} {v}" for k, v in options.items()])
    parsed = usage_or(split_options, text, ALLOWED)
    if all(not v.startswith("--") for v in options.values()):
        assert parsed == ParsedArgs(" ".join(query), options)


@given(
    st.one_of(
        any_text, st.lists(st.one_of(any_text, st.just("/papers")), max_size=4).map("\t".join)
    )
)
@example("search\tdiffusion")
@example("/papers\nsearch\ndiffusion")
def test_a_request_has_one_lower_case_word_and_stripped_args(text: str) -> None:
    request = CommandRequest.from_text(text, user="U1", destination=CHANNEL)
    assert not any(c.isspace() for c in request.subcommand)
    assert request.subcommand == request.subcommand.lower()
    assert request.args == request.args.strip()


@given(
    st.sampled_from(["", "/papers ", " /papers\t"]),
    st.text(st.characters(categories=("Ll", "Nd")), min_size=1, max_size=8),
    st.sampled_from([" ", "\t", "\n", "  \u3000"]),
    any_text,
)
def test_the_first_word_is_the_subcommand(prefix: str, word: str, gap: str, args: str) -> None:
    request = CommandRequest.from_text(prefix + word + gap + args, user="U1", destination=CHANNEL)
    if not word.startswith("/papers"):
        assert (request.subcommand, request.args) == (word, args.strip())


arxiv_ids = st.one_of(
    st.from_regex(r"[0-9]{4}\.[0-9]{4,5}", fullmatch=True),
    st.builds(
        lambda archive, number: f"{archive}/{number}",
        st.sampled_from(["hep-th", "math", "math.GT", "cs", "astro-ph", "cond-mat"]),
        st.from_regex(r"[0-9]{7}", fullmatch=True),
    ),
)
pages = st.sampled_from(
    [
        "",
        "arXiv:",
        "arxiv:",
        "arxiv.org/abs/",
        "https://arxiv.org/abs/",
        "http://arxiv.org/pdf/",
        "https://www.arxiv.org/abs/",
        "https://www.arxiv.org/pdf/",
        "https://export.arxiv.org/abs/",
        "https://arxiv.org/html/",
        "https://huggingface.co/papers/",
        "huggingface.co/papers/",
    ]
)


@given(
    arxiv_ids,
    pages,
    st.booleans(),
    st.sampled_from(["", "v1", "v12"]),
    st.sampled_from(["", ".pdf", "/", "?context=cs", "#S2", "/?x=1#y"]),
    st.sampled_from(["", " ", "\n\t"]),
)
@example("2401.12345", "https://arxiv.org/abs/", False, "v2", "", "")
@example("2401.12345", "https://huggingface.co/papers/", False, "", "", "")
@example("2401.12345", "https://www.arxiv.org/pdf/", False, "v2", ".pdf", "")
@example("2401.12345", "https://arxiv.org/abs/", True, "", "", "")
def test_every_form_of_an_arxiv_id_normalises_to_it(
    paper_id: str, page: str, shout: bool, version: str, tail: str, space: str
) -> None:
    raw = f"{space}{page.upper() if shout else page}{paper_id}{version}{tail}{space}"
    assert normalize_paper_id(raw) == paper_id
    assert is_arxiv_id(paper_id)


@given(st.one_of(any_text, st.builds(lambda a, b: a + "?" + b, any_text, any_text)))
@example("2401.12345\n?x")
@example("abc #x")
def test_normalising_garbage_gives_a_clean_id(raw: str) -> None:
    paper_id = normalize_paper_id(raw)
    assert paper_id == paper_id.strip()
    if is_arxiv_id(paper_id):
        assert paper_id.isascii() and paper_id.isprintable()
        assert normalize_paper_id(paper_id) == paper_id


def _is_pair(text: str, at: int) -> bool:
    return 0 < at < len(text) and "\ud800" <= text[at - 1] <= "\udbff" <= text[at] <= "\udfff"


@given(
    st.one_of(any_text, st.text(st.sampled_from("ab \U0001f600\ud83d\ude00\u0301\u200d"))),
    st.integers(-2, 45),
    st.sampled_from(["…", "...", ""]),
)
@example("abcdef", 2, "...")
@example("ab\ud83d\ude00cd", 3, "…")
def test_shorten_never_exceeds_its_limit(text: str, limit: int, ellipsis: str) -> None:
    short = shorten(text, limit, ellipsis=ellipsis)
    assert len(short) <= max(limit, 0)
    if len(text) <= limit:
        assert short == text
    else:
        kept = short[: len(short) - len(ellipsis)] if short.endswith(ellipsis) else short
        assert text.startswith(kept)
        assert not _is_pair(text, len(kept))  # a surrogate pair is never split


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--since 2100y", "--since '2100y' is too far back: use a date from 1900-01-01 on"),
        ("--since 99999d", "--since '99999d' is too far back"),
        ("--since 999999999999y", "--since '999999999999y' is too far back"),
        ("--since 0001-01-01", "--since '0001-01-01' is too far back"),
        ("--since 0001-01-01T00:00+05:00", "--since '0001-01-01T00:00+05:00' is too far"),
        ("--since 9999-12-31T23:59-05:00", "--since '9999-12-31T23:59-05:00' is in the"),
        ("--page 99999999999999999999", "--page must be between 1 and 50."),
        ("--min-upvotes " + "9" * 10_000, "--min-upvotes must be between 0 and 1000000."),
        ("--min-upvotes " + "x" * 10_000, "--min-upvotes takes a whole number, not 'xxx"),
    ],
)
async def test_bad_option_values_get_one_sentence_and_usage(make_bot, option, expected) -> None:
    reply = await make_bot().exec(f"/papers search diffusion {option}")
    assert reply.kind is ReplyKind.ERROR
    sentence, usage = reply.text.split("\n")
    assert sentence.startswith(expected) and len(sentence) <= 200
    assert usage == "Usage: /papers search <query> [--since 7d] [--min-upvotes N]"

"""What a first-time user reads: replies that point at the real reason, echo input safely,
and show one paper in full."""

from dataclasses import replace

import pytest

from bot.models import ReplyKind
from bot.sources.huggingface import HuggingFaceSource
from tests.core.conftest import paper

OLD_TRANSFORMERS = [
    paper(f"2610.{n:05d}", f"Transformer Variant {n}", age_days=20, upvotes=n) for n in range(1, 4)
]


@pytest.fixture
async def bot(store, make_bot):
    await store.upsert(OLD_TRANSFORMERS)
    return make_bot()


# --- search: filters that exclude every match ----------------------------------------


async def test_search_names_the_since_filter_that_excludes_every_match(bot):
    reply = await bot.exec("search transformer --since 7d")
    assert reply.cards == ()
    assert reply.text == (
        "No stored paper matches `transformer` since 2026-11-14, but older ones do: "
        "try a longer --since."
    )


async def test_search_names_the_upvote_filter_that_excludes_every_match(bot):
    reply = await bot.exec("search transformer --min-upvotes 100")
    assert reply.text == (
        "No stored paper matches `transformer` with at least 100 upvotes, "
        "but less upvoted ones do: try a lower --min-upvotes."
    )


async def test_search_names_both_filters(bot):
    reply = await bot.exec("search transformer --since 2026-11-01 --min-upvotes 100")
    assert reply.text == (
        "No stored paper matches `transformer` since 2026-11-01 with at least 100 upvotes, "
        "but some do without these filters: try a longer --since or a lower --min-upvotes."
    )


async def test_search_filters_with_no_match_at_all_still_suggest_other_words(bot):
    reply = await bot.exec("search zxqvw --since 7d")
    assert reply.text == "No papers match `zxqvw` since 2026-11-14. Try fewer words or an OR."


async def test_filters_not_hugging_face_are_blamed_when_they_exclude_every_match(
    store, make_bot, fake_hf
):
    await store.upsert(OLD_TRANSFORMERS)
    fake_hf.fail_next("/api/papers/search", status=503)
    source = HuggingFaceSource(fake_hf.url, timeout=2.0, max_attempts=1)
    try:
        reply = await make_bot(lookup=source).exec("search transformer --since 7d")
    finally:
        await source.close()
    assert "Hugging Face" not in reply.text
    assert "try a longer --since" in reply.text


# --- paper: input that is not an arXiv id --------------------------------------------


async def test_paper_with_something_that_is_not_an_arxiv_id_says_so(store, make_bot, fake_hf):
    source = HuggingFaceSource(fake_hf.url, timeout=2.0, max_attempts=1)
    try:
        reply = await make_bot(lookup=source).exec("paper not-an-id")
    finally:
        await source.close()
    assert reply.kind is ReplyKind.ERROR
    assert reply.text.startswith("`not-an-id` doesn't look like an arXiv id")
    assert "2401.12345" in reply.text and "huggingface.co/papers" in reply.text
    assert "Hugging Face can't" not in reply.text and "didn't either" not in reply.text
    assert fake_hf.requests_to("/api/papers/not-an-id") == []


async def test_paper_with_a_stored_non_arxiv_id_is_still_shown(store, make_bot):
    await store.upsert([paper("acl-2024-long-17", "A Paper Without an arXiv Id")])
    reply = await make_bot().exec("paper acl-2024-long-17")
    assert [c.paper_id for c in reply.cards] == ["acl-2024-long-17"]


async def test_a_long_non_arxiv_argument_is_echoed_short(bot):
    reply = await bot.exec("paper " + "x" * 5000)
    assert len(reply.text) < 300


# --- unknown commands, /PAPERS, --page ------------------------------------------------


async def test_unknown_command_sentence_is_on_its_own_line(bot):
    reply = await bot.exec("/papers bogus")
    assert reply.kind is ReplyKind.HELP
    first, second = reply.text.split("\n")[:2]
    assert first == "Unknown command `bogus`."
    assert second.startswith("/papers today")


async def test_a_long_unknown_command_is_echoed_short(bot):
    reply = await bot.exec("/papers " + "y" * 5000)
    first = reply.text.split("\n")[0]
    assert len(first) <= 60
    assert first.startswith("Unknown command `yyyy") and first.endswith("…`.")


async def test_control_characters_of_an_unknown_command_are_shown_escaped(bot):
    reply = await bot.exec("/papers \x03\x04\x1b[31m")
    first = reply.text.split("\n")[0]
    assert first == "Unknown command `\\x03\\x04\\x1b[31m`."
    assert not any(ord(c) < 32 for c in first)


@pytest.mark.parametrize("line", ["/PAPERS help", "/Papers help", "  /PaPeRs   today"])
async def test_the_papers_prefix_is_case_insensitive(bot, line):
    reply = await bot.exec(line)
    assert "Unknown command" not in reply.text


@pytest.mark.parametrize("value", ["0", "-1", "51", "9" * 5000])
async def test_page_out_of_range_names_the_range_pages_really_have(bot, value):
    reply = await bot.exec(f"search transformer --page {value}")
    assert reply.kind is ReplyKind.ERROR
    assert reply.text.startswith("--page must be between 1 and 50.")


async def test_page_one_to_fifty_are_accepted(bot):
    assert (await bot.exec("search transformer --page 1")).cards
    assert (await bot.exec("search transformer --page 50")).kind is ReplyKind.INFO


# --- paper: the whole abstract --------------------------------------------------------

ABSTRACT = " ".join(f"Sentence number {n} of a long abstract explains more." for n in range(1, 21))


async def test_paper_shows_the_whole_abstract_not_the_short_summary(store, make_bot):
    assert 900 < len(ABSTRACT) < 1200
    stored = replace(
        paper("2611.00042", "Long Abstracts Considered", abstract=ABSTRACT),
        ai_summary="A short AI summary.",
    )
    await store.upsert([stored])
    bot = make_bot()
    single = await bot.exec("paper 2611.00042")
    assert single.cards[0].summary == ABSTRACT
    listed = await bot.exec("search long abstracts considered")
    assert listed.cards[0].summary == "A short AI summary."  # cards in lists stay short


async def test_paper_abstract_is_capped(store, make_bot):
    await store.upsert([paper("2611.00043", "Endless", abstract=ABSTRACT * 4)])
    summary = (await make_bot().exec("paper 2611.00043")).cards[0].summary
    assert 1000 < len(summary) <= 1200 and summary.endswith("…")

import pytest

from bot.models import ReplyKind
from bot.sources.huggingface import HuggingFaceSource
from tests.core.conftest import paper
from tests.fakes.huggingface import make_item

TODAY = [
    paper("2611.00001", "Diffusion Transformers for Video Generation", upvotes=40),
    paper("2611.00002", "Scaling Laws for State Space Models", upvotes=90),
    paper("2611.00003", "A Survey of Diffusion Models", upvotes=10),
    paper("2611.00004", "Mamba Meets Vision", upvotes=5, abstract="A state space model."),
    paper("2611.00005", "Reward Models for Reasoning", upvotes=60),
    paper("2611.00006", "Tokenizer-free Language Models", upvotes=20),
]
OLDER = [
    paper("2611.00010", "Video Diffusion at Scale", age_days=3, upvotes=300),
    paper("2610.00011", "World Models in Minecraft", age_days=20, upvotes=500),
    paper("2609.00012", "Old Diffusion Paper", age_days=60, upvotes=900),
]


@pytest.fixture
async def bot(store, make_bot):
    await store.upsert(TODAY + OLDER)
    return make_bot()


def ids(reply):
    return [c.paper_id for c in reply.cards]


async def test_help_lists_every_subcommand(bot):
    reply = await bot.exec("/papers help")
    assert reply.kind is ReplyKind.HELP
    for name in ("today", "top", "search", "paper", "help"):
        assert f"/papers {name}" in reply.text


async def test_unknown_subcommand_answers_with_help(bot):
    reply = await bot.exec("/papers frobnicate now")
    assert reply.kind is ReplyKind.HELP
    assert reply.text.startswith("Unknown command `frobnicate`")


async def test_a_subcommand_glued_to_papers_gets_a_suggestion(bot):
    reply = await bot.exec("/papersearch diffusion")
    assert reply.kind is ReplyKind.HELP
    assert reply.text.startswith("Unknown command `/papersearch`: did you mean `/papers search`?")
    assert (await bot.exec("/PAPERS search diffusion")).kind is not ReplyKind.HELP


async def test_today_ranks_by_upvotes_and_pages_with_more(bot):
    first = await bot.exec("today")
    assert ids(first) == ["2611.00002", "2611.00005", "2611.00001", "2611.00006", "2611.00003"]
    assert "Sat 21 Nov 2026" in first.title
    assert first.ephemeral and any(b.share for b in first.buttons)
    second = await bot.press(first, "More")
    assert ids(second) == ["2611.00004"]
    assert not any(b.label == "More" for b in second.buttons)


async def test_a_later_page_numbers_its_cards_on_from_the_previous(bot):
    first = await bot.exec("today")
    second = await bot.press(first, "More")
    assert (first.first_number, second.first_number) == (1, 6)
    assert second.footer == "Papers 6–6"


async def test_today_falls_back_to_the_latest_list(store, make_bot):
    await store.upsert(OLDER)
    reply = await make_bot().exec("today")
    assert ids(reply) == ["2611.00010"]
    assert "No papers yet today" in reply.text


async def test_more_after_the_fallback_list_pages_through_that_list(store, make_bot):
    latest = [paper(f"2611.001{i:02d}", f"Paper {i}", age_days=3, upvotes=i) for i in range(8)]
    await store.upsert(latest)
    first = await make_bot().exec("today")
    assert "No papers yet today" in first.text and len(first.cards) == 5
    second = await make_bot().press(first, "More")
    assert ids(second) == ["2611.00102", "2611.00101", "2611.00100"]
    assert "No papers yet today" in second.text and second.title == first.title


async def test_a_page_past_the_end_says_so(bot):
    reply = await bot.exec("today --page 9")
    assert not reply.cards and reply.text == "Page 9 is past the end of this list."


async def test_an_empty_library_says_why_when_the_last_poll_failed(store, make_bot):
    problem: list[str | None] = [None]
    bot = make_bot(source_problem=lambda: problem[0])
    assert (await bot.exec("today")).text == (
        "No papers have been fetched yet. Try again after the next poll."
    )
    problem[0] = "Hugging Face is unreachable (could not connect after 4 attempts)"
    text = (await bot.exec("today")).text
    assert text.startswith(f"No papers have been fetched yet: {problem[0]}. paperboy keeps")


async def test_top_periods(bot):
    week = await bot.exec("top week")
    assert ids(week)[0] == "2611.00010"
    assert "2610.00011" not in ids(week)
    month = await bot.exec("top month")
    assert ids(month)[0] == "2610.00011"
    assert "2609.00012" not in ids(month)
    assert ids(await bot.exec("top")) == ids(week)
    bad = await bot.exec("top year")
    assert bad.kind is ReplyKind.ERROR and "day, week or month" in bad.text


async def test_search_ranks_full_matches_and_filters(bot, store):
    # The abstract-only match is newer, stored later and has more upvotes than the title
    # match: only the place of the match puts the title match first.
    await store.upsert([paper("2611.00020", "Sparse Attention Kernels", age_days=2, upvotes=3)])
    await store.upsert(
        [
            paper(
                "2611.00021",
                "Efficient Transformers",
                upvotes=80,
                abstract="We write sparse attention kernels.",
            )
        ]
    )
    reply = await bot.exec('search "sparse attention"')
    assert ids(reply) == ["2611.00020", "2611.00021"]  # title match before abstract match
    assert ids(await bot.exec("search diffusion -survey --since 7d")) == [
        "2611.00010",
        "2611.00001",
    ]
    assert sorted(ids(await bot.exec("search diffusion --min-upvotes 100"))) == [
        "2609.00012",
        "2611.00010",
    ]


async def test_search_without_full_match_offers_partial_matches(bot):
    reply = await bot.exec("search diffusion minecraft")
    assert reply.text.startswith("No paper matches all of")
    assert reply.cards


async def test_search_accepts_smart_quotes(bot):
    reply = await bot.exec("search “state space”")
    assert set(ids(reply)) == {"2611.00002", "2611.00004"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("search", "Type something to look for"),
        ("search diffusion --bogus 3", "Unknown option --bogus"),
        ("search diffusion --since yesterday", "Can't read --since"),
        ("search diffusion --min-upvotes lots", "whole number"),
        ("search -survey", "cannot only exclude"),
        ("paper", "Give one arXiv id"),
        ("today extra words", "takes no words"),
    ],
)
async def test_bad_input_gets_one_clear_sentence_and_usage(bot, line, expected):
    reply = await bot.exec(line)
    assert reply.kind is ReplyKind.ERROR
    assert expected in reply.text
    assert "Usage: /papers" in reply.text


async def test_paper_by_id_or_versioned_url(bot):
    for ref in ("2611.00002", "https://arxiv.org/abs/2611.00002v3", "arXiv:2611.00002"):
        reply = await bot.exec(f"paper {ref}")
        assert ids(reply) == ["2611.00002"], ref
    unknown = await bot.exec("paper 2601.99999")
    assert unknown.kind is ReplyKind.INFO and "2601.99999" in unknown.text


async def test_paper_unknown_locally_is_fetched_from_hugging_face_and_stored(
    store, make_bot, fake_hf
):
    fake_hf.add_items([make_item("2611.04242", "Remote Only Paper", upvotes=7)])
    source = HuggingFaceSource(fake_hf.url, timeout=2.0)
    try:
        reply = await make_bot(lookup=source).exec("paper 2611.04242")
    finally:
        await source.close()
    assert ids(reply) == ["2611.04242"]
    assert (await store.get("2611.04242")).title == "Remote Only Paper"


async def test_remote_search_fills_in_when_local_results_are_few(store, make_bot, fake_hf):
    await store.upsert(TODAY)
    fake_hf.add_items([make_item("2611.07777", "Quantum Tokenizer Tricks", upvotes=3)])
    source = HuggingFaceSource(fake_hf.url, timeout=2.0)
    try:
        reply = await make_bot(lookup=source).exec("search quantum tokenizer")
    finally:
        await source.close()
    assert ids(reply)[0] == "2611.07777"
    assert fake_hf.requests_to("/api/papers/search")


async def test_without_remote_search_paper_still_asks_hugging_face(store, make_bot, fake_hf):
    # PAPERBOY_REMOTE_SEARCH=false turns off the search fallback, not paper lookups.
    await store.upsert(TODAY)
    fake_hf.add_items([make_item("2611.07777", "Quantum Tokenizer Tricks", upvotes=3)])
    source = HuggingFaceSource(fake_hf.url, timeout=2.0)
    try:
        bot = make_bot(lookup=source, remote_search=False)
        searched = await bot.exec("search quantum tokenizer")
        looked_up = await bot.exec("paper 2611.07777")
    finally:
        await source.close()
    assert "2611.07777" not in ids(searched) and not fake_hf.requests_to("/api/papers/search")
    assert ids(looked_up) == ["2611.07777"]


async def test_without_a_source_an_unknown_paper_is_not_blamed_on_hugging_face(bot):
    reply = await bot.exec("paper 2601.99999")
    assert reply.text == "I don't have paper `2601.99999`."


async def test_empty_answers_say_when_hugging_face_could_not_be_asked(store, make_bot, fake_hf):
    await store.upsert(TODAY)
    source = HuggingFaceSource(fake_hf.url, timeout=2.0, max_attempts=1)
    try:
        answered = await make_bot(lookup=source).exec("search zxqvw")  # HF: nothing either
        fake_hf.fail_next("/api/papers/search", status=503)
        bot = make_bot(lookup=source)
        failed = await bot.exec("search zxqvw")
        unknown = await bot.exec("paper 2601.99999")  # skipped during the cool-down
    finally:
        await source.close()
    assert answered.text == "No papers match `zxqvw`. Try fewer words or an OR."
    assert failed.cards == () and "Hugging Face can't be reached right now" in failed.text
    assert "`2601.99999`" in unknown.text and "can't be reached right now" in unknown.text
    assert len(fake_hf.requests_to("/api/papers/search")) == 2
    assert fake_hf.requests_to("/api/papers/2601.99999") == []


async def test_a_failed_paper_lookup_is_not_reported_as_unknown(store, make_bot, fake_hf):
    fake_hf.fail_next("/api/papers/*", status=502)
    source = HuggingFaceSource(fake_hf.url, timeout=2.0, max_attempts=1)
    try:
        bot = make_bot(lookup=source)
        failed = await bot.exec("paper 2611.04242")
        search = await bot.exec("search anything")  # the same cool-down
    finally:
        await source.close()
    assert "can't be reached right now" in failed.text and "didn't either" not in failed.text
    assert "can't be reached right now" in search.text
    assert fake_hf.requests_to("/api/papers/search") == []


async def test_unreachable_hugging_face_costs_the_budget_once(store, make_bot, fake_hf):
    await store.upsert(TODAY)
    fake_hf.hang_next("/api/papers/search", times=5)
    source = HuggingFaceSource(fake_hf.url, timeout=30.0)
    bot = make_bot(lookup=source, remote_budget=0.2)
    try:
        first = await bot.exec("search reasoning")
        second = await bot.exec("search tokenizer")
    finally:
        await source.close()
    assert ids(first) == ["2611.00005"] and ids(second) == ["2611.00006"]
    assert len(fake_hf.requests_to("/api/papers/search")) == 1  # cooled down after the failure


async def test_similar_lists_papers_like_one_without_itself(bot):
    reply = await bot.exec("similar 2611.00001")  # Diffusion Transformers for Video Generation
    assert reply.title == "Similar to: Diffusion Transformers for Video Generation"
    assert "2611.00001" not in ids(reply)
    assert ids(reply)[0] == "2611.00010"  # Video Diffusion at Scale: the most words in common
    assert "words of its title" in reply.text  # no embedding model in this bot


async def test_every_card_offers_similar_papers(bot):
    reply = await bot.exec("search diffusion")
    card = reply.cards[0]
    assert [b.label for b in card.actions] == ["Similar"]
    pressed = await bot.exec(card.actions[0].command)
    assert pressed.title.startswith("Similar to: ") and card.paper_id not in ids(pressed)


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("similar", "Give one arXiv id or paper URL, e.g. `/papers similar 2509.04664`."),
        ("similar two words", "Give one arXiv id or paper URL"),
        ("similar not-an-id", "`not-an-id` doesn't look like an arXiv id"),
        ("similar 2611.99999", "I don't have paper `2611.99999`."),
    ],
)
async def test_similar_without_a_known_paper_says_why(bot, line, answer):
    reply = await bot.exec(line)
    assert answer in reply.text

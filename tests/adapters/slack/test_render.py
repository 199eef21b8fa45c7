"""Block Kit rendering: valid per slack_sdk, within every limit, no card ever lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack import render
from bot.models import Button, Card, Reply, ReplyKind
from tests.adapters.slack.blockkit import (
    assert_mrkdwn_safe,
    assert_valid_message,
    card_buttons,
    card_links,
    message_text,
    reply_buttons,
)
from tests.adapters.slack.conftest import CARDS, rich_card


def test_escape_mrkdwn_escapes_only_the_three_control_characters() -> None:
    assert render.escape_mrkdwn("a & b < c > d *e* _f_ ~g~ `h`") == (
        "a &amp; b &lt; c &gt; d *e* _f_ ~g~ `h`"
    )


def test_escape_within_never_cuts_an_entity_and_respects_the_budget() -> None:
    text = "&" * 50
    out = render.escape_within(text, 23)
    assert len(out) <= 23
    assert out.endswith("…")
    assert out[:-1] == "&amp;" * 4


def test_link_with_hostile_label_and_url_stays_one_link() -> None:
    out = render.link("https://x.org/a?b=1&c=2|x>y", "<!channel> & co")
    assert out == "<https://x.org/a?b=1&amp;c=2%7Cx%3Ey|&lt;!channel&gt; &amp; co>"
    assert render.link("javascript:alert(1)", "t") == "t"
    assert render.link(None, "a<b") == "a&lt;b"


def test_card_reads_well_with_every_field() -> None:
    card = replace(rich_card(), authors=tuple(f"Author {i}" for i in range(8)), comments=1)
    blocks = render.card_blocks(card, number=3, position=2)
    section, context, actions = blocks
    lines = section["text"]["text"].split("\n")
    assert lines[0] == f"*<{card.url}|3. {card.title}>*"
    assert lines[1] == "Author 0, Author 1, Author 2 +5 more"
    assert lines[2] == f"▲ {card.upvotes} upvotes · 💬 1 comment"
    assert lines[3] == card.summary
    assert section["accessory"]["image_url"] == card.thumbnail
    texts = [e["text"] for e in context["elements"]]
    assert texts[:3] == [
        "<https://arxiv.org/abs/2401.01234|arXiv>",
        "<https://github.com/example/repo|Code> ⭐ 1.2k",
        "<https://example.org/project?a=1&amp;b=2|Project page>",
    ]
    assert "video &amp; audio" in texts[-1]
    [similar] = actions["elements"]
    assert (similar["text"]["text"], similar["value"]) == ("Similar", f"similar {card.paper_id}")
    assert similar["action_id"] == "papers_run_card2_0"
    assert_valid_message({"text": "x", "blocks": blocks})


def test_every_card_of_a_reply_has_its_own_similar_button() -> None:
    [message] = render.render_reply(Reply(title="Results", cards=CARDS[:3]))
    assert [e["value"] for e in card_buttons(message)] == [
        f"similar {card.paper_id}" for card in CARDS[:3]
    ]
    assert_valid_message(message)


def test_card_without_optional_fields_is_one_section() -> None:
    card = Card(paper_id="p", title="T", url="https://huggingface.co/papers/p")
    blocks = render.card_blocks(card)
    assert blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": f"*<{card.url}|T>*"}}]


def test_lookup_reply_has_header_cards_footer_and_buttons() -> None:
    reply = Reply(
        title="Results for diffusion",
        text="3 papers",
        cards=CARDS[:3],
        footer="page 1 of 2",
        buttons=(Button("More", "search diffusion --page 2"), Button("Share", "search d", True)),
    )
    [message] = render.render_reply(reply)
    assert_valid_message(message)
    types = [b["type"] for b in message["blocks"]]
    assert types[0] == "header" and types[-1] == "actions" and types[-2] == "context"
    assert card_links(message) == [c.url for c in CARDS[:3]]
    buttons = message["blocks"][-1]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("papers_run_0", "search diffusion --page 2"),
        ("papers_share_1", "search d"),
    ]
    assert message["text"] == "Results for diffusion (3 papers)"


def test_long_reply_splits_into_messages_in_order_without_losing_cards() -> None:
    reply = Reply(title="Many", cards=CARDS[:37], footer="end", buttons=(Button("More", "x"),))
    messages = render.render_reply(reply)
    assert len(messages) >= 4  # 10 cards per message at most
    for message in messages:
        assert_valid_message(message)
        assert len(card_links(message)) <= render.SLACK_LIMITS.max_cards_per_message
    urls = [u for m in messages for u in card_links(m)]
    assert urls == [c.url for c in CARDS[:37]]
    assert messages[0]["blocks"][0]["type"] == "header"
    assert messages[-1]["blocks"][-1]["type"] == "actions"


def test_huge_text_is_split_into_sections_not_truncated() -> None:
    text = "\n".join(f"line {i} & <stuff> " + "x" * 200 for i in range(100))
    messages = render.render_reply(Reply(text=text))
    joined = "\n".join(message_text(m) for m in messages)
    assert joined.count("line ") == 100
    for message in messages:
        assert_valid_message(message)


def test_short_digest_is_one_message() -> None:
    reply = Reply(title="Trending papers — Sat 21 Nov 2026", cards=CARDS[:3], kind=ReplyKind.DIGEST)
    plan = render.render_digest(reply)
    assert plan.thread == ()
    assert card_links(plan.parent) == [c.url for c in CARDS[:3]]


def test_long_digest_is_a_numbered_list_with_cards_in_the_thread() -> None:
    reply = Reply(
        title="Trending papers — Sat 21 Nov 2026",
        cards=CARDS[:12],
        footer="Daily Papers",
        kind=ReplyKind.DIGEST,
        ephemeral=False,
    )
    plan = render.render_digest(reply)
    assert_valid_message(plan.parent)
    assert card_links(plan.parent) == []  # compact list only
    listing = message_text(plan.parent)
    for number, card in enumerate(CARDS[:12], 1):
        assert f"{number}. <{card.url}|" in listing
    thread_urls = [u for m in plan.thread for u in card_links(m)]
    assert thread_urls == [c.url for c in CARDS[:12]]
    first = plan.thread[0]["blocks"][0]["text"]["text"]
    assert first.startswith(f"*<{CARDS[0].url}|1. ")
    for message in plan.thread:
        assert_valid_message(message)


def test_button_whose_command_cannot_fit_a_value_is_left_out() -> None:
    reply = Reply(text="t", buttons=(Button("More", "search " + "x" * 3000), Button("Ok", "help")))
    [message] = render.render_reply(reply)
    assert [e["value"] for e in reply_buttons(message)] == ["help"]


def test_shared_reply_names_who_shared() -> None:
    messages = render.shared_reply_blocks(render.render_reply(Reply(text="hi")), "U42")
    assert messages[-1]["blocks"][-1]["elements"][0]["text"] == "Shared by <@U42>"
    assert_mrkdwn_safe(messages[-1]["blocks"][-1]["elements"][0]["text"])


# --- property: nothing exceeds a limit, nothing is lost ----------------------------

SPECIALS = "*_~<>&`|"
# Cheap to generate: short nasty strings, repeated to reach every length range.
nasty_text = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(SPECIALS)),
    max_size=40,
)
long_text = st.one_of(
    nasty_text,
    st.builds(lambda piece, times: (piece or "&") * times, nasty_text, st.integers(1, 250)),
)
many_authors = st.one_of(
    st.lists(nasty_text, max_size=8).map(tuple),
    st.integers(0, 300).map(lambda n: tuple(f"Author <{i}> & co" for i in range(n))),
)


@st.composite
def cards(draw: st.DrawFn, index: int) -> Card:
    url = f"https://huggingface.co/papers/{index}"
    return Card(
        paper_id=str(index),
        title=draw(long_text),
        url=url,
        authors=draw(many_authors),
        summary=draw(long_text),
        upvotes=draw(st.none() | st.integers(0, 10**6)),
        comments=draw(st.none() | st.integers(0, 10**4)),
        github=draw(st.none() | st.just("https://github.com/a/b?x=1&y=<2>")),
        github_stars=draw(st.none() | st.integers(0, 10**6)),
        project_page=draw(st.none() | st.just("https://p.org/" + "x&" * 600)),
        thumbnail=draw(st.none() | st.just(f"https://cdn.example/{index}.png")),
        keywords=tuple(draw(st.lists(nasty_text, max_size=6))),
        published=draw(st.none() | st.just(date(2026, 11, 21))),
        arxiv_url=draw(st.none() | st.just(f"https://arxiv.org/abs/{index}")),
    )


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    count = draw(st.integers(0, 60))
    return Reply(
        title=draw(st.none() | nasty_text),
        text=draw(long_text),
        cards=tuple(draw(cards(i)) for i in range(count)),
        footer=draw(st.none() | long_text),
        kind=draw(st.sampled_from([ReplyKind.LOOKUP, ReplyKind.DIGEST])),
        buttons=tuple(
            Button(label, command, share)
            for label, command, share in draw(
                st.lists(st.tuples(nasty_text, long_text, st.booleans()), max_size=30)
            )
        ),
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies())
def test_no_reply_exceeds_a_limit_or_loses_a_card(reply: Reply) -> None:
    messages = render.render_reply(reply)
    for message in messages:
        assert_valid_message(message)
    assert [u for m in messages for u in card_links(m)] == [c.url for c in reply.cards]

    plan = render.render_digest(reply)
    for message in plan.messages:
        assert_valid_message(message)
    assert [u for m in plan.messages for u in card_links(m)] == [c.url for c in reply.cards]


def test_one_paper_alone_shows_its_whole_abstract_and_several_stay_compact() -> None:
    abstract = " ".join(f"sentence{i} of the abstract." for i in range(40))  # ~1,200 chars
    card = replace(CARDS[0], summary=abstract)
    (alone,) = render.render_reply(Reply(title=card.title, cards=(card,)))
    assert_valid_message(alone)
    assert abstract in alone["blocks"][1]["text"]["text"]
    several = render.render_reply(Reply(title="Results", cards=(card, card, card)))
    sections = [b["text"]["text"] for m in several for b in m["blocks"] if "accessory" in b]
    assert len(sections) == 3 and all(abstract not in s for s in sections)

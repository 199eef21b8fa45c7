"""Rendering: replies become messages Discord accepts, and no paper is ever lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord.buttons import ButtonAction, decode_custom_id, encode_custom_id
from adapters.discord.render import (
    FLAG_SUPPRESS_EMBEDS,
    MAX_CONTENT_CHARS,
    MAX_EMBED_TOTAL_CHARS,
    MAX_EMBEDS_PER_MESSAGE,
    card_embed,
    embed_length,
    render_reply,
    split_text,
)
from bot.models import Button, Card, Reply, ReplyKind
from tests.adapters.discord.conftest import cards, digest, lookup
from tests.fakes.discord import message_problems


def test_digest_of_25_papers_is_split_within_limits_keeping_order() -> None:
    reply = digest(25)
    messages = render_reply(reply, in_channel=True)
    assert len(messages) >= 3  # 25 cards cannot fit in fewer than 3 messages of 10
    assert [pid for m in messages for pid in m.cards] == [c.paper_id for c in reply.cards]
    for message in messages:
        assert message_problems(message.to_json(nonce="n")) == []
        assert len(message.embeds) <= MAX_EMBEDS_PER_MESSAGE
        assert sum(embed_length(e) for e in message.embeds) <= MAX_EMBED_TOTAL_CHARS
    assert messages[0].content == (
        "**Trending papers — Sat 21 Nov 2026**\n-# From Hugging Face Daily Papers"
    )
    assert all(not m.content for m in messages[1:])
    titles = [e["title"] for m in messages for e in m.embeds]
    assert titles[0].startswith("1. ") and titles[24].startswith("25. ")


def test_card_embed_reads_well() -> None:
    card = Card(
        paper_id="2509.04664",
        title="Why Language Models Hallucinate",
        url="https://huggingface.co/papers/2509.04664",
        authors=("Adam Tauman Kalai", "Ofir Nachum", "Santosh S. Vempala", "Edwin Zhang"),
        summary="Language models hallucinate because training rewards guessing.",
        upvotes=26,
        comments=2,
        github="https://github.com/example/repo",
        github_stars=123,
        project_page="https://example.org/project",
        thumbnail="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2509.04664.png",
        keywords=("hallucinations", "evaluation"),
        published=date(2025, 9, 8),
        arxiv_url="https://arxiv.org/abs/2509.04664",
    )
    embed = card_embed(card)
    assert embed["title"] == "Why Language Models Hallucinate"
    assert embed["url"] == card.url
    assert embed["author"]["name"].startswith("Adam Tauman Kalai, Ofir Nachum")
    assert embed["description"] == card.summary
    assert embed["thumbnail"]["url"] == card.thumbnail
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Activity"] == "▲ 26 upvotes · 💬 2 comments"
    assert "[arXiv](https://arxiv.org/abs/2509.04664)" in fields["Links"]
    assert "[Code](https://github.com/example/repo) ★ 123" in fields["Links"]
    assert "[Project](https://example.org/project)" in fields["Links"]
    assert embed["footer"]["text"] == "2509.04664 · 8 Sep 2025 · hallucinations, evaluation"


def test_markdown_and_mentions_are_neutralised() -> None:
    card = Card(paper_id="x", title="**Bold** _claims_ @everyone", url="https://h.co/x")
    reply = Reply(title="@here *now*", text="see https://a.b/c_d and `code`", cards=(card,))
    [message] = render_reply(reply)
    assert card_embed(card)["title"] == r"\*\*Bold\*\* \_claims\_ @everyone"
    assert message.content.startswith(r"**@here \*now\***")
    assert "<https://a.b/c_d>" in message.content  # no link preview duplicating the embed
    assert message.to_json()["allowed_mentions"] == {"parse": []}


def test_suppress_embeds_only_on_plain_text_messages() -> None:
    long_text = ("A line mentioning https://huggingface.co/papers and more words. " * 80).strip()
    messages = render_reply(Reply(text=long_text, cards=cards(2)))
    assert len(messages) >= 3
    for message in messages:
        assert bool(message.flags & FLAG_SUPPRESS_EMBEDS) == (not message.embeds)
        assert len(message.content) <= MAX_CONTENT_CHARS


def test_bad_links_are_left_out_not_sent() -> None:
    card = Card(
        paper_id="x",
        title="t",
        url="https://h.co/x",
        github="github.com/no-scheme",
        thumbnail="not a url",
        project_page="javascript:alert(1)",
    )
    embed = card_embed(card)
    assert "thumbnail" not in embed
    assert "Code" not in str(embed.get("fields")) and "Project" not in str(embed.get("fields"))


def reply_buttons(message) -> list[dict]:
    """The reply's own buttons of a message (its cards' "Similar: ..." left out)."""
    return [
        b
        for row in message.components
        for b in row["components"]
        if not b["label"].startswith("Similar: ")
    ]


def test_buttons_carry_the_command_line() -> None:
    messages = render_reply(lookup(3))
    ids = [b["custom_id"] for b in reply_buttons(messages[-1])]
    decoded = [decode_custom_id(i) for i in ids]
    assert [(d.action, d.command) for d in decoded if d] == [
        (ButtonAction.SHARE, "search diffusion --page 1"),
        (ButtonAction.RUN, "search diffusion --page 2"),
    ]
    # posted in a channel, "share" makes no sense and is left out
    message = render_reply(lookup(3), in_channel=True)[-1]
    assert [b["label"] for b in reply_buttons(message)] == ["More"]


def test_each_card_has_a_similar_button_in_the_message_that_shows_it() -> None:
    reply = lookup(3)
    messages = render_reply(replace(reply, cards=reply.cards * 5))  # 15 cards: 2 messages
    assert len(messages) == 2
    for message in messages:
        similar = [b for row in message.components for b in row["components"]][: len(message.cards)]
        commands = [decode_custom_id(b["custom_id"]).command for b in similar]  # type: ignore[union-attr]
        assert commands == [f"similar {paper_id}" for paper_id in message.cards]
        assert len(message.components) <= 5
        assert all(len(row["components"]) <= 5 for row in message.components)


def test_long_commands_are_compressed_or_fall_back() -> None:
    long_query = "search " + " ".join(["diffusion"] * 15) + " --page 2"
    custom_id = encode_custom_id(Button("More", long_query))
    assert custom_id is not None and len(custom_id) <= 100 and long_query not in custom_id
    assert decode_custom_id(custom_id).command == long_query  # type: ignore[union-attr]
    random_words = "search " + " ".join(f"w{i * 7919 % 10007}" for i in range(60))
    assert encode_custom_id(Button("More", random_words)) is None
    share = decode_custom_id(encode_custom_id(Button("Share", random_words, share=True)) or "")
    assert share is not None and share.action is ButtonAction.COPY
    assert decode_custom_id("someone-else:123") is None
    assert decode_custom_id("pb1:R:not base85 ~~~") is None


def test_a_copy_share_button_is_offered_only_on_a_reply_of_one_message() -> None:
    # Its command is too long for a custom id: "share" can only copy the message it sits
    # on, which is the whole reply only when the reply is one message.
    command = "search " + " ".join(f"w{i * 7919 % 10007}" for i in range(60))
    buttons = (Button("Share in channel", command, share=True),)

    def labels(messages: list) -> list[str]:
        return [b["label"] for m in messages for b in reply_buttons(m)]

    one = render_reply(Reply(title="Results", cards=cards(2), buttons=buttons))
    many = render_reply(Reply(title="Results", cards=cards(25), buttons=buttons))
    assert len(one) == 1 and labels(one) == ["Share in channel"]
    assert len(many) > 1 and labels(many) == []


def test_split_text_never_exceeds_the_limit_and_keeps_words() -> None:
    text = "word " * 1000
    chunks = split_text(text, 100)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split() == text.split()


_fragment = st.text(max_size=12) | st.sampled_from(
    [*"*_~`|>#@<:/\\\n", " ", "https://x.org/a_b", "@everyone", "<@123>", "🧪", "\u200b"]
)
_text = st.lists(_fragment, max_size=60).map("".join)
_url = st.sampled_from(
    [None, "https://huggingface.co/papers/1", "http://e.org/x)y", "ftp://x", "no url", ""]
)
_card = st.builds(
    Card,
    paper_id=st.text(min_size=1, max_size=30),
    title=_text | st.text(min_size=200, max_size=1200),
    url=st.sampled_from(["https://huggingface.co/papers/2401.01234", "https://arxiv.org/abs/x"]),
    authors=st.lists(st.text(max_size=80), max_size=300).map(tuple),
    summary=_text | st.text(max_size=6000),
    upvotes=st.none() | st.integers(0, 10**6),
    comments=st.none() | st.integers(0, 10**4),
    github=_url,
    github_stars=st.none() | st.integers(0, 10**6),
    project_page=_url,
    thumbnail=_url,
    keywords=st.lists(st.text(max_size=60), max_size=20).map(tuple),
    arxiv_url=_url,
)
_button = st.builds(Button, label=st.text(max_size=120), command=_text, share=st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cards_=st.lists(_card, max_size=35),
    title=st.none() | _text,
    text=_text | st.text(max_size=7000),
    footer=st.none() | _text,
    buttons=st.lists(_button, max_size=30),
    kind=st.sampled_from(list(ReplyKind)),
    in_channel=st.booleans(),
)
def test_no_reply_exceeds_a_limit_or_loses_a_paper(
    cards_: list[Card],
    title: str | None,
    text: str,
    footer: str | None,
    buttons: list[Button],
    kind: ReplyKind,
    in_channel: bool,
) -> None:
    reply = Reply(
        title=title,
        text=text,
        footer=footer,
        cards=tuple(cards_),
        buttons=tuple(buttons),
        kind=kind,
    )
    messages = render_reply(reply, in_channel=in_channel)
    assert messages
    assert [pid for m in messages for pid in m.cards] == [c.paper_id for c in cards_]
    assert sum(len(m.embeds) for m in messages) == len(cards_)
    for index, message in enumerate(messages):
        assert message_problems(message.to_json(nonce="0" * 25)) == []
        assert all(embed_length(e) <= MAX_EMBED_TOTAL_CHARS for e in message.embeds)
        if index < len(messages) - 1:
            assert not message.components  # buttons only under the last message
    for row in messages[-1].components:
        for spec in row["components"]:
            decoded = decode_custom_id(spec["custom_id"])
            assert decoded is not None


def test_one_paper_alone_shows_its_whole_abstract_and_several_stay_compact() -> None:
    abstract = " ".join(f"sentence{i} of the abstract." for i in range(40))  # ~1,200 chars
    card = replace(cards(1)[0], summary=abstract)
    (alone,) = render_reply(Reply(title=card.title, cards=(card,)))
    assert alone.embeds[0]["description"] == abstract
    assert not message_problems(alone.to_json(nonce="n"))
    several = render_reply(Reply(title="Results", cards=(card, card, card)))
    descriptions = [e["description"] for m in several for e in m.embeds]
    assert len(descriptions) == 3 and all(len(d) <= 700 < len(abstract) for d in descriptions)

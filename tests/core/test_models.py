"""The neutral model: replies hash once and stay value objects."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bot.models import Card, Reply, ReplyKind

texts = st.text(max_size=30)
cards = st.builds(Card, paper_id=texts, title=texts, url=texts, upvotes=st.none() | st.integers())
replies = st.builds(
    Reply,
    text=texts,
    cards=st.lists(cards, max_size=3).map(tuple),
    title=st.none() | texts,
    kind=st.sampled_from(ReplyKind),
)


@given(replies, texts)
def test_a_reply_is_a_value_whatever_hashed_first(reply: Reply, other_text: str) -> None:
    twin = replace(reply)
    assert hash(reply) == hash(reply) == hash(twin) and reply == twin
    changed = replace(reply, text=other_text)  # computes its own hash, not the cached one
    assert (changed == reply) == (other_text == reply.text)
    if other_text == reply.text:
        assert hash(changed) == hash(reply)
    assert {reply: 1}.get(twin) == 1


def test_the_cached_hash_is_not_part_of_the_value() -> None:
    a, b = Reply(text="x"), Reply(text="x")
    hash(a)
    assert (
        a == b
        and repr(a)
        == repr(b)
        == "Reply(text='x', cards=(), title=None, footer=None, "
        "ephemeral=True, kind=<ReplyKind.LOOKUP: 'lookup'>, buttons=(), first_number=1)"
    )

"""SlackAdapter.post / find_posted against the fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from adapters.slack import SlackAdapter
from adapters.slack.posting import METADATA_EVENT_TYPE, LookupFailed
from adapters.slack.render import render_digest
from bot.models import Destination, PostStatus, Reply, ReplyKind
from tests.adapters.slack.blockkit import assert_valid_message, card_links
from tests.adapters.slack.conftest import CARDS, FakeClock
from tests.fakes.slack import FakeSlack

CHANNEL = Destination("slack", "T1", "C1")
OTHER = Destination("slack", "T1", "C2")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def adapter(fake_slack: FakeSlack, clock: FakeClock) -> SlackAdapter:
    return make_adapter(fake_slack, clock)


def make_adapter(fake: FakeSlack, clock: FakeClock) -> SlackAdapter:
    return SlackAdapter(
        bot_token="xoxb-test",
        app_token="xapp-test",
        api_url=fake.api_url,
        clock=clock,
        sleep=clock.sleep,
    )


def lookup(n: int = 2) -> Reply:
    return Reply(title="Results", cards=CARDS[:n], ephemeral=False, kind=ReplyKind.ALERT)


def digest(n: int = 12) -> Reply:
    return Reply(
        title="Trending papers — Sat 21 Nov 2026",
        cards=CARDS[:n],
        ephemeral=False,
        kind=ReplyKind.DIGEST,
    )


async def test_post_sends_blocks_with_key_metadata_and_no_unfurls(adapter, fake_slack) -> None:
    result = await adapter.post(CHANNEL, lookup(), key="alert:slack:T1:ch:C1:p1")
    assert result.status is PostStatus.SENT
    [call] = fake_slack.calls_of("chat.postMessage")
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.args["channel"] == "C1"
    assert call.args["unfurl_links"] is False and call.args["unfurl_media"] is False
    assert call.args["metadata"] == {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"key": "alert:slack:T1:ch:C1:p1", "part": 0, "parts": 1},
    }
    assert_valid_message({"text": call.args["text"], "blocks": call.args["blocks"]})
    assert result.message_ids == (fake_slack.messages["C1"][0]["ts"],)


async def test_long_digest_posts_header_then_cards_in_its_thread(adapter, fake_slack, clock):
    result = await adapter.post(CHANNEL, digest(12), key="digest:1")
    assert result.status is PostStatus.SENT
    posted = fake_slack.messages["C1"]
    assert result.message_ids == tuple(m["ts"] for m in posted)
    parent, *thread = posted
    assert "thread_ts" not in parent and card_links(parent) == []
    assert thread and all(m["thread_ts"] == parent["ts"] for m in thread)
    assert [u for m in thread for u in card_links(m)] == [c.url for c in CARDS[:12]]
    # about one message per second in the channel, without really waiting
    assert clock.sleeps == [1.0] * (len(posted) - 1)


async def test_short_digest_is_a_single_message(adapter, fake_slack) -> None:
    result = await adapter.post(CHANNEL, digest(3), key="digest:short")
    assert result.ok and len(result.message_ids) == 1
    assert card_links(fake_slack.messages["C1"][0]) == [c.url for c in CARDS[:3]]


async def test_pacing_is_per_channel(adapter, fake_slack, clock) -> None:
    await adapter.post(CHANNEL, lookup(1), key="a")
    await adapter.post(OTHER, lookup(1), key="b")
    assert clock.sleeps == []
    await adapter.post(CHANNEL, lookup(1), key="c")
    assert clock.sleeps == [1.0]


async def test_concurrent_posts_to_one_channel_take_turns(adapter, fake_slack, clock) -> None:
    results = await asyncio.gather(
        adapter.post(CHANNEL, lookup(1), key="x"), adapter.post(CHANNEL, lookup(1), key="y")
    )
    assert all(r.ok for r in results)
    assert clock.sleeps == [1.0]
    assert len(fake_slack.messages["C1"]) == 2


async def test_429_waits_retry_after_then_posts_once(adapter, fake_slack, clock) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.SENT
    assert len(fake_slack.calls_of("chat.postMessage")) == 2
    assert len(fake_slack.messages["C1"]) == 1
    assert clock.sleeps == [3.0]


async def test_429_asking_too_long_comes_back_as_retry(adapter, fake_slack, clock) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=120)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.RETRY
    assert result.retry_after == 120.0
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert clock.sleeps == []


async def test_persistent_429_gives_up_after_two_retries(adapter, fake_slack, clock) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1, times=5)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.RETRY and result.retry_after == 1.0
    assert len(fake_slack.calls_of("chat.postMessage")) == 3


async def test_ratelimited_error_body_is_retry(adapter, fake_slack) -> None:
    fake_slack.fail_next("chat.postMessage", error="ratelimited")
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert (result.status, result.error) == (PostStatus.RETRY, "ratelimited")


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503, "body": "<html>"}])
async def test_server_errors_are_unknown_and_not_retried(adapter, fake_slack, failure) -> None:
    fake_slack.fail_next("chat.postMessage", **failure)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.UNKNOWN
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_dropped_connection_is_unknown_and_never_posted_twice(adapter, fake_slack) -> None:
    fake_slack.fail_next("chat.postMessage", drop_connection=True)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.UNKNOWN
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_refused_connection_is_retry(clock) -> None:
    async with FakeSlack() as fake:
        url = fake.api_url
    adapter = SlackAdapter(bot_token="xoxb-t", app_token="xapp-t", api_url=url, sleep=clock.sleep)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert result.status is PostStatus.RETRY


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("channel_not_found", PostStatus.GONE),
        ("not_in_channel", PostStatus.GONE),
        ("is_archived", PostStatus.GONE),
        ("account_inactive", PostStatus.AUTH),
        ("invalid_auth", PostStatus.AUTH),
        ("token_revoked", PostStatus.AUTH),
        ("missing_scope", PostStatus.FORBIDDEN),
        ("restricted_action", PostStatus.FORBIDDEN),
        ("msg_blocks_too_long", PostStatus.FAILED),
    ],  # invalid_blocks: see the image tests below
)
async def test_slack_errors_become_typed_results(adapter, fake_slack, error, status) -> None:
    fake_slack.fail_next("chat.postMessage", error=error)
    result = await adapter.post(CHANNEL, lookup(), key="k")
    assert (result.status, result.error, result.message_ids) == (status, error, ())


async def test_unknown_channel_of_the_fake_workspace_is_gone(fake_slack, clock) -> None:
    fake_slack.channels["C1"] = {"id": "C1", "is_archived": True}
    fake_slack.channels["C2"] = {"id": "C2"}
    adapter = make_adapter(fake_slack, clock)
    assert (await adapter.post(CHANNEL, lookup(), key="a")).status is PostStatus.GONE
    missing = Destination("slack", "T1", "C404")
    assert (await adapter.post(missing, lookup(), key="b")).status is PostStatus.GONE
    assert (await adapter.post(OTHER, lookup(), key="c")).ok


def fail_call_number(fake: FakeSlack, number: int, error: str) -> None:
    """Make the ``number``-th chat.postMessage from now answer ``ok: false, error``."""
    original = fake._m_chat_postMessage
    count = 0

    def flaky(args):
        nonlocal count
        count += 1
        if count == number:
            return {"ok": False, "error": error}
        return original(args)

    fake._m_chat_postMessage = flaky  # type: ignore[method-assign]


async def test_a_failed_part_is_resumed_without_reposting_the_others(adapter, fake_slack):
    reply = digest(25)
    total = len((await adapter.post(OTHER, reply, key="probe")).message_ids)
    assert total >= 4

    fail_call_number(fake_slack, 3, "service_unavailable")
    partial = await adapter.post(CHANNEL, reply, key="digest:partial")
    assert partial.status is PostStatus.RETRY and len(partial.message_ids) == 2

    again = await adapter.post(CHANNEL, reply, key="digest:partial")
    assert again.ok and len(again.message_ids) == total
    assert again.message_ids[:2] == partial.message_ids
    posted = fake_slack.messages["C1"]
    assert len(posted) == total  # nothing posted twice
    assert all(m["thread_ts"] == posted[0]["ts"] for m in posted[1:])
    parts = [m["metadata"]["event_payload"]["part"] for m in posted]
    assert parts == list(range(total))


async def test_a_retry_of_a_rebuilt_reply_posts_every_card_once(adapter, fake_slack):
    # The delivery layer rebuilds a retried digest from the papers as they are by then.
    # With 40 authors and 20 keywords a card, longer summaries no longer fit 10 cards in
    # a message: the thread splits at other cards. The rest goes out as first rendered.
    authors = tuple(f"Author Number {i}" for i in range(40))
    keywords = tuple(f"keyword {i}" for i in range(20))
    wide = tuple(replace(c, authors=authors, keywords=keywords) for c in CARDS[:25])
    reply = replace(digest(25), cards=wide)
    longer = tuple(replace(c, summary="Summarized at last. " * 100) for c in wide)
    rebuilt = replace(reply, cards=longer)
    split = [[len(card_links(m)) for m in render_digest(r).messages] for r in (reply, rebuilt)]
    assert split[0] != split[1]
    await adapter.post(OTHER, reply, key="probe")
    expected = [u for m in fake_slack.messages["C2"] for u in card_links(m)]

    fail_call_number(fake_slack, 3, "service_unavailable")
    partial = await adapter.post(CHANNEL, reply, key="digest:rebuilt")
    assert partial.status is PostStatus.RETRY
    again = await adapter.post(CHANNEL, rebuilt, key="digest:rebuilt")

    assert again.ok
    assert [u for m in fake_slack.messages["C1"] for u in card_links(m)] == expected


async def test_a_permanent_failure_forgets_the_progress(adapter, fake_slack) -> None:
    reply = digest(25)
    fail_call_number(fake_slack, 2, "channel_not_found")
    gone = await adapter.post(CHANNEL, reply, key="digest:gone")
    assert gone.status is PostStatus.GONE and len(gone.message_ids) == 1
    assert adapter.poster.progress("digest:gone") == {}


async def test_find_posted_finds_a_whole_digest(adapter, fake_slack) -> None:
    sent = await adapter.post(CHANNEL, digest(12), key="digest:day")
    await adapter.post(CHANNEL, lookup(), key="something-else")
    found = await adapter.find_posted(CHANNEL, "digest:day")
    assert found is not None and found.status is PostStatus.SENT
    assert found.message_ids == sent.message_ids
    history = fake_slack.calls_of("conversations.history")[0].args
    assert history["include_all_metadata"] in ("1", "true", True)
    assert await adapter.find_posted(CHANNEL, "digest:never") is None


async def test_find_posted_after_unknown_lets_a_new_process_finish_the_thread(fake_slack, clock):
    reply = digest(25)
    first = make_adapter(fake_slack, clock)
    sent = 0
    original = fake_slack._m_chat_postMessage

    def dies_after_two(args):
        nonlocal sent
        sent += 1
        if sent > 2:
            raise RuntimeError("process died")  # the fake answers 500: outcome unknown
        return original(args)

    fake_slack._m_chat_postMessage = dies_after_two
    result = await first.post(CHANNEL, reply, key="digest:crash")
    assert result.status is PostStatus.UNKNOWN and len(result.message_ids) == 2
    fake_slack._m_chat_postMessage = original

    second = make_adapter(fake_slack, clock)  # a restarted process: no memory of parts
    found = await second.find_posted(CHANNEL, "digest:crash")
    assert found is not None and found.status is PostStatus.RETRY
    assert found.message_ids == result.message_ids
    finished = await second.post(CHANNEL, reply, key="digest:crash")
    assert finished.ok and finished.message_ids[:2] == result.message_ids
    posted = fake_slack.messages["C1"]
    assert len(posted) == len(finished.message_ids)
    assert len({m["metadata"]["event_payload"]["part"] for m in posted}) == len(posted)


async def test_direct_messages_post_to_the_user_and_are_found_again(adapter, fake_slack):
    dm = Destination("slack", "T1", "U7", is_dm=True)
    sent = await adapter.post(dm, lookup(), key="alert:dm")
    assert sent.ok
    assert fake_slack.calls_of("chat.postMessage")[0].args["channel"] == "U7"
    found = await adapter.find_posted(dm, "alert:dm")
    assert found is not None and found.message_ids == sent.message_ids


async def test_find_posted_reports_a_refused_lookup(adapter, fake_slack) -> None:
    fake_slack.fail_next("conversations.history", error="invalid_auth")
    found = await adapter.find_posted(CHANNEL, "k")
    assert found is not None and found.status is PostStatus.AUTH


@pytest.mark.parametrize(
    "failure", [{"status": 429, "retry_after": 120}, {"status": 500}, {"error": "ratelimited"}]
)
async def test_find_posted_raises_when_it_cannot_tell(adapter, fake_slack, failure) -> None:
    fake_slack.fail_next("conversations.history", **failure)
    with pytest.raises(LookupFailed) as caught:
        await adapter.find_posted(CHANNEL, "k")
    assert caught.value.result.status in (PostStatus.RETRY, PostStatus.UNKNOWN)


def _images(message: dict) -> int:
    return sum(
        1
        for block in message["blocks"]
        if block.get("type") == "image" or (block.get("accessory") or {}).get("type") == "image"
    )


async def test_a_message_refused_for_its_images_is_posted_without_them(adapter, fake_slack):
    # Slack answers invalid_blocks ("downloading image failed") when a thumbnail is
    # unreachable; the cards still go out, without thumbnails.
    fake_slack.fail_next("chat.postMessage", error="invalid_blocks")
    result = await adapter.post(CHANNEL, lookup(2), key="alert:thumbs")
    assert result.ok
    first, second = (call.args for call in fake_slack.calls_of("chat.postMessage"))
    assert _images(first) == 2 and _images(second) == 0
    (posted,) = fake_slack.messages["C1"]
    assert card_links(posted) == card_links(first)  # the same cards, only the images gone
    assert_valid_message(posted)


async def test_invalid_blocks_without_images_is_a_failure_posted_once(adapter, fake_slack):
    reply = Reply(title="Results", cards=tuple(replace(c, thumbnail=None) for c in CARDS[:2]))
    fake_slack.fail_next("chat.postMessage", error="invalid_blocks")
    result = await adapter.post(CHANNEL, reply, key="alert:plain")
    assert result.status is PostStatus.FAILED and result.error == "invalid_blocks"
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_a_public_channel_the_bot_is_not_in_is_joined_to_read_its_history(
    fake_slack, clock
) -> None:
    # chat:write.public lets the bot post without joining; reading history needs a member.
    fake_slack.channels["C1"] = {"id": "C1", "is_member": False}
    adapter = make_adapter(fake_slack, clock)
    sent = await adapter.post(CHANNEL, digest(3), key="digest:public")
    assert sent.ok and fake_slack.channels["C1"]["is_member"] is False

    found = await adapter.find_posted(CHANNEL, "digest:public")
    assert found is not None and found.status is PostStatus.SENT
    assert found.message_ids == sent.message_ids
    assert [c.args["channel"] for c in fake_slack.calls_of("conversations.join")] == ["C1"]
    assert await adapter.find_posted(CHANNEL, "digest:other") is None  # member now: no join
    assert len(fake_slack.calls_of("conversations.join")) == 1


async def test_without_channels_join_a_non_member_lookup_is_refused_and_said(
    fake_slack, clock, caplog
) -> None:
    fake_slack.channels["C1"] = {"id": "C1", "is_member": False}
    fake_slack.missing_scopes.add("channels:join")
    adapter = make_adapter(fake_slack, clock)
    found = await adapter.find_posted(CHANNEL, "digest:public")
    assert found is not None and found.status is PostStatus.FORBIDDEN
    assert "channels:join" in caplog.text and "digest:public" in caplog.text

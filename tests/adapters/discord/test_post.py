"""Posting over REST against the fake Discord API: nonces, typed failures, retries."""

from __future__ import annotations

import socket

import pytest

from adapters.discord.adapter import AdapterState, DiscordAdapter, nonce_for
from adapters.discord.render import FLAG_SUPPRESS_EMBEDS
from bot.models import Destination, PostStatus, Reply
from tests.adapters.discord.conftest import RecordingSleep, digest, digest_rebuilt, embed_urls
from tests.fakes.discord import FakeDiscord

CHANNEL = Destination("discord", "100", "555")
MESSAGES = r"/channels/555/messages"
KEY = "digest:discord:100:ch:555:2026-11-21"


async def test_login_then_post_a_digest_with_nonces(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    result = await adapter.post(CHANNEL, digest(12), key=KEY)

    assert result.status is PostStatus.SENT
    posted = fake_discord.messages["555"]
    assert result.message_ids == tuple(m["id"] for m in posted)
    assert len(posted) >= 2  # 12 cards never fit one message
    assert fake_discord.requests[0].path == "/users/@me"  # logged in first, no gateway needed
    bodies = [r.json for r in fake_discord.calls("POST", MESSAGES)]
    assert [b["nonce"] for b in bodies] == [nonce_for(KEY, i) for i in range(len(bodies))]
    assert all(len(b["nonce"]) <= 25 and b["enforce_nonce"] is True for b in bodies)
    assert sum(len(b["embeds"]) for b in bodies) == 12
    assert all(not (b.get("flags", 0) & FLAG_SUPPRESS_EMBEDS) for b in bodies if b["embeds"])
    assert all(b["allowed_mentions"] == {"parse": []} for b in bodies)


async def test_a_retried_post_carries_the_same_nonces_and_shows_once(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    first = await adapter.post(CHANNEL, digest(12), key=KEY)
    again = await adapter.post(CHANNEL, digest(12), key=KEY)

    assert again.status is PostStatus.SENT
    assert again.message_ids == first.message_ids
    bodies = [r.json for r in fake_discord.calls("POST", MESSAGES)]
    half = len(bodies) // 2
    assert [b["nonce"] for b in bodies[:half]] == [b["nonce"] for b in bodies[half:]]
    assert len(fake_discord.messages["555"]) == half
    other = await adapter.post(CHANNEL, digest(1), key=KEY + "-other")
    assert other.message_ids[0] not in first.message_ids


async def test_rate_limit_is_waited_out_and_the_retry_keeps_the_nonce(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, discord_sleeps: RecordingSleep
) -> None:
    fake_discord.rate_limit_next("POST", "/channels/555/messages", retry_after=0.25)

    result = await adapter.post(CHANNEL, digest(1), key=KEY)

    assert result.status is PostStatus.SENT
    assert discord_sleeps.delays == [0.25]  # discord.py waited exactly retry_after
    attempts = fake_discord.calls("POST", MESSAGES)
    assert len(attempts) == 2 and attempts[0].json["nonce"] == attempts[1].json["nonce"]
    assert len(fake_discord.messages["555"]) == 1


async def test_429_without_via_header_is_not_retried_blindly(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    # no Via header: Cloudflare, not Discord's rate limiter; discord.py must not hammer it
    fake_discord.rate_limit_next("POST", "/channels/555/messages", retry_after=60, via=False)

    result = await adapter.post(CHANNEL, digest(1), key=KEY)

    assert result.status is PostStatus.RETRY
    assert result.retry_after == 60
    assert len(fake_discord.calls("POST", MESSAGES)) == 1


async def test_server_error_is_retried_with_the_same_nonce(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, discord_sleeps: RecordingSleep
) -> None:
    fake_discord.fail_next("POST", "/channels/555/messages", status=500)

    result = await adapter.post(CHANNEL, digest(1), key=KEY)

    assert result.status is PostStatus.SENT
    attempts = fake_discord.calls("POST", MESSAGES)
    assert len(attempts) == 2 and attempts[0].json["nonce"] == attempts[1].json["nonce"]
    assert discord_sleeps.delays == [1]


async def test_persistent_server_errors_come_back_as_retry(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    for _ in range(5):
        fake_discord.fail_next("POST", "/channels/555/messages", status=502)

    result = await adapter.post(CHANNEL, digest(1), key=KEY)

    assert result.status is PostStatus.RETRY
    assert result.message_ids == ()
    assert "502" in (result.error or "")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, 50001, PostStatus.FORBIDDEN),  # Missing Access
        (403, 50013, PostStatus.FORBIDDEN),  # Missing Permissions
        (404, 10003, PostStatus.GONE),  # Unknown Channel
        (400, 50035, PostStatus.FAILED),  # Invalid Form Body: do not retry
        (503, 0, PostStatus.RETRY),
    ],
)
async def test_platform_errors_are_typed_results(
    adapter: DiscordAdapter,
    fake_discord: FakeDiscord,
    status: int,
    code: int,
    expected: PostStatus,
) -> None:
    fake_discord.fail_next("POST", "/channels/555/messages", status=status, code=code)

    result = await adapter.post(CHANNEL, digest(1), key=KEY)

    assert result.status is expected
    assert str(status) in (result.error or "")
    if code:
        assert f"({code})" in (result.error or "")


async def test_a_failure_midway_reports_what_was_already_sent(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    fake_discord.fail_next("POST", "/channels/555/messages", status=403, code=50013, after=1)

    result = await adapter.post(CHANNEL, digest(12), key=KEY)

    assert result.status is PostStatus.FORBIDDEN
    assert result.message_ids == (fake_discord.messages["555"][0]["id"],)
    assert len(fake_discord.calls("POST", MESSAGES)) == 2  # stopped at the refusal


async def test_a_post_that_times_out_is_unknown(
    fake_discord: FakeDiscord, discord_sleeps: RecordingSleep
) -> None:
    adapter = DiscordAdapter(
        token="fake-bot-token",
        api_url=fake_discord.api_url,
        connect_gateway=False,
        request_timeout=0.2,
    )
    try:
        await adapter.login()
        fake_discord.hang_next("POST", "/channels/555/messages")
        result = await adapter.post(CHANNEL, digest(1), key=KEY)
    finally:
        await adapter.close()
    assert result.status is PostStatus.UNKNOWN


async def test_direct_messages_open_the_dm_channel_once(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    to_user = Destination("discord", "", "4242", is_dm=True)

    first = await adapter.post(to_user, Reply(text="A new paper matches your watch"), key="a1")
    second = await adapter.post(to_user, Reply(text="Another one"), key="a2")

    assert first.ok and second.ok
    opened = fake_discord.calls("POST", r"/users/@me/channels")
    assert len(opened) == 1 and opened[0].json == {"recipient_id": 4242}
    [body, _] = [r.json for r in fake_discord.calls("POST", r"/channels/74242/messages")]
    assert body["flags"] & FLAG_SUPPRESS_EMBEDS  # plain text: no link previews


async def test_a_rejected_token_disables_posting_without_hammering(
    fake_discord: FakeDiscord, discord_sleeps: RecordingSleep
) -> None:
    adapter = DiscordAdapter(token="wrong", api_url=fake_discord.api_url, connect_gateway=False)
    try:
        first = await adapter.post(CHANNEL, digest(1), key=KEY)
        second = await adapter.post(CHANNEL, digest(1), key=KEY)
    finally:
        await adapter.close()
    assert first.status is PostStatus.AUTH and second.status is PostStatus.AUTH
    assert adapter.state is AdapterState.AUTH_FAILED
    assert len(fake_discord.requests) == 1  # one GET /users/@me, then nothing


async def test_unreachable_discord_is_a_retry(discord_sleeps: RecordingSleep) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = DiscordAdapter(
        token="t", api_url=f"http://127.0.0.1:{port}/api/v10", connect_gateway=False
    )
    try:
        result = await adapter.post(CHANNEL, digest(1), key=KEY)
    finally:
        await adapter.close()
    assert result.status is PostStatus.RETRY


async def test_a_retry_after_the_nonces_expired_posts_only_the_missing_parts(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    fake_discord.fail_next("POST", MESSAGES, status=503, after=1)  # the 2nd part fails
    failed = await adapter.post(CHANNEL, digest(12), key=KEY)
    assert failed.status is PostStatus.RETRY and len(failed.message_ids) == 1

    fake_discord.expire_nonces()  # the relay's backoff outlasted Discord's nonce memory
    done = await adapter.post(CHANNEL, digest(12), key=KEY)

    assert done.status is PostStatus.SENT and done.message_ids[0] == failed.message_ids[0]
    posted = fake_discord.messages["555"]
    assert [m["id"] for m in posted] == list(done.message_ids)  # nothing posted twice
    assert sum(len(m["embeds"]) for m in posted) == 12


async def test_a_retry_of_a_rebuilt_reply_posts_every_card_once(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    # The delivery layer rebuilds a retried digest from the papers as they are by then;
    # the rest of the post is sent as first planned, whatever the new split would be.
    fake_discord.fail_next("POST", MESSAGES, status=503, after=1)
    failed = await adapter.post(CHANNEL, digest(12), key=KEY)
    assert failed.status is PostStatus.RETRY

    fake_discord.expire_nonces()
    done = await adapter.post(CHANNEL, digest_rebuilt(12), key=KEY)

    assert done.status is PostStatus.SENT
    posted = fake_discord.messages["555"]
    assert embed_urls(posted) == [card.url for card in digest(12).cards]


async def test_a_permanent_failure_forgets_the_progress(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    fake_discord.fail_next("POST", MESSAGES, status=403, code=50013, after=1)
    failed = await adapter.post(CHANNEL, digest(12), key=KEY)
    assert failed.status is PostStatus.FORBIDDEN

    fake_discord.expire_nonces()
    again = await adapter.post(CHANNEL, digest(12), key=KEY)  # e.g. permission given back
    assert again.ok and again.message_ids[0] != failed.message_ids[0]  # starts over

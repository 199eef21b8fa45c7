"""Webhook mode: digests without a bot, against the fake's webhook endpoint."""

from __future__ import annotations

from pydantic import SecretStr

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.render import render_reply
from adapters.discord.webhook import WebhookPoster
from bot.config import Settings
from bot.models import Destination, PostStatus
from tests.adapters.discord.conftest import StubCore, digest, digest_rebuilt, embed_urls, lookup
from tests.fakes.discord import FakeDiscord

HOOK = "/webhooks/123456789012345678/hook-token"
ANYWHERE = Destination("discord", "", "ignored")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def settings_for(fake: FakeDiscord) -> Settings:
    return Settings(
        discord_webhook_url=SecretStr(fake.api_url + HOOK),
        discord_api_url=fake.api_url,
        _env_file=None,  # type: ignore[call-arg]
    )


async def test_webhook_mode_posts_a_digest(fake_discord: FakeDiscord) -> None:
    adapter = DiscordAdapter.from_settings(settings_for(fake_discord))
    try:
        await adapter.start(StubCore().handle)  # posting only: nothing to connect
        result = await adapter.post(ANYWHERE, digest(12), key="digest:1")
    finally:
        await adapter.close()

    assert result.status is PostStatus.SENT
    calls = fake_discord.calls("POST", HOOK)
    assert len(result.message_ids) == len(calls) >= 2
    assert all(c.query == {"wait": "true"} for c in calls)
    assert sum(len(c.json["embeds"]) for c in calls) == 12
    assert not any("/users/@me" in r.path for r in fake_discord.requests)


async def test_webhook_messages_carry_no_buttons(fake_discord: FakeDiscord) -> None:
    poster = WebhookPoster(fake_discord.api_url + HOOK)
    try:
        result = await poster.post(lookup(3))
    finally:
        await poster.close()
    assert result.ok
    [call] = fake_discord.calls("POST", HOOK)
    assert call.json["components"] == [] and "nonce" not in call.json


async def test_webhook_waits_out_a_short_rate_limit(fake_discord: FakeDiscord) -> None:
    sleeps = Sleeps()
    fake_discord.rate_limit_next("POST", HOOK, retry_after=0.5)
    poster = WebhookPoster(fake_discord.api_url + HOOK, sleep=sleeps)
    try:
        result = await poster.post(digest(1))
    finally:
        await poster.close()
    assert result.status is PostStatus.SENT
    assert sleeps.delays == [0.5]
    assert len(fake_discord.calls("POST", HOOK)) == 2


async def test_webhook_hands_a_long_rate_limit_back(fake_discord: FakeDiscord) -> None:
    sleeps = Sleeps()
    fake_discord.rate_limit_next("POST", HOOK, retry_after=120)
    poster = WebhookPoster(fake_discord.api_url + HOOK, sleep=sleeps)
    try:
        result = await poster.post(digest(1))
    finally:
        await poster.close()
    assert (result.status, result.retry_after, sleeps.delays) == (PostStatus.RETRY, 120, [])


async def test_webhook_errors_are_typed(fake_discord: FakeDiscord) -> None:
    fake_discord.fail_next("POST", HOOK, status=404, code=10015, message="Unknown Webhook")
    fake_discord.fail_next("POST", HOOK, status=401, code=50027, message="Invalid Webhook Token")
    fake_discord.fail_next("POST", HOOK, status=500)
    poster = WebhookPoster(fake_discord.api_url + HOOK)
    try:
        results = [await poster.post(digest(1)) for _ in range(3)]
    finally:
        await poster.close()
    assert [r.status for r in results] == [PostStatus.GONE, PostStatus.AUTH, PostStatus.RETRY]
    assert results[0].error == "404 Unknown Webhook"


async def test_webhook_timeout_is_unknown(fake_discord: FakeDiscord) -> None:
    fake_discord.hang_next("POST", HOOK)
    poster = WebhookPoster(fake_discord.api_url + HOOK, timeout=0.2)
    try:
        result = await poster.post(digest(1))
    finally:
        await poster.close()
    assert result.status is PostStatus.UNKNOWN


async def test_a_retried_webhook_post_sends_only_the_rest_as_first_planned(
    fake_discord: FakeDiscord,
) -> None:
    first, rebuilt = digest(12), digest_rebuilt(12)
    planned = render_reply(first, in_channel=True)
    assert len(planned) >= 2  # several messages, split at other cards once rebuilt:
    assert [len(m.embeds) for m in render_reply(rebuilt, in_channel=True)] != [
        len(m.embeds) for m in planned
    ]
    fake_discord.fail_next("POST", HOOK, status=503, after=1)  # the 2nd message fails
    poster = WebhookPoster(fake_discord.api_url + HOOK)
    try:
        failed = await poster.post(first, key="digest:1")
        done = await poster.post(rebuilt, key="digest:1")
    finally:
        await poster.close()

    assert failed.status is PostStatus.RETRY and len(failed.message_ids) == 1
    assert done.status is PostStatus.SENT and len(done.message_ids) == len(planned)
    calls = [c.json for c in fake_discord.calls("POST", HOOK)]
    delivered = [calls[0], *calls[2:]]  # calls[1] was refused
    assert embed_urls(delivered) == [card.url for card in first.cards]  # each card once

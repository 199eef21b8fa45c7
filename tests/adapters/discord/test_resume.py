"""A split post that failed midway resumes after the parts already posted."""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter
from bot.models import Destination, PostStatus
from tests.adapters.discord.conftest import digest
from tests.fakes.discord import FakeDiscord

CHANNEL = Destination("discord", "100", "555")
MESSAGES = r"/channels/555/messages"
KEY = "digest:discord:100:ch:555:2026-11-22"


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


async def test_a_permanent_failure_forgets_the_progress(
    adapter: DiscordAdapter, fake_discord: FakeDiscord
) -> None:
    fake_discord.fail_next("POST", MESSAGES, status=403, code=50013, after=1)
    failed = await adapter.post(CHANNEL, digest(12), key=KEY)
    assert failed.status is PostStatus.FORBIDDEN

    fake_discord.expire_nonces()
    again = await adapter.post(CHANNEL, digest(12), key=KEY)  # e.g. permission given back
    assert again.ok and again.message_ids[0] != failed.message_ids[0]  # starts over

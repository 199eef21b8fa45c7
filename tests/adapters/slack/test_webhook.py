"""Posting-only Slack through an incoming webhook, and building adapters from settings."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.slack import SlackAdapter
from bot.config import Settings
from bot.logs import setup_logging
from bot.models import Destination, PostStatus, Reply, ReplyKind
from tests.adapters.slack.blockkit import assert_valid_message, card_links
from tests.adapters.slack.conftest import CARDS, FakeClock
from tests.fakes.slack import FakeSlack

ANYWHERE = Destination("slack", "", "webhook")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def adapter(fake_slack: FakeSlack, clock: FakeClock) -> SlackAdapter:
    return SlackAdapter(webhook_url=fake_slack.webhook_url(), clock=clock, sleep=clock.sleep)


def digest(n: int) -> Reply:
    return Reply(title="Trending papers", cards=CARDS[:n], ephemeral=False, kind=ReplyKind.DIGEST)


async def test_webhook_digest_posts_every_message_in_order(adapter, fake_slack, clock) -> None:
    result = await adapter.post(ANYWHERE, digest(25), key="digest:webhook")
    assert result.status is PostStatus.SENT
    posts = fake_slack.webhook_posts
    assert len(posts) >= 3
    for post in posts:
        assert post["unfurl_links"] is False and post["unfurl_media"] is False
        assert "thread_ts" not in post
        assert_valid_message(post)
    assert [u for p in posts for u in card_links(p)] == [c.url for c in CARDS[:25]]
    assert clock.sleeps == [1.0] * (len(posts) - 1)  # paced like a channel


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, "no_service", PostStatus.GONE),
        (403, "invalid_token", PostStatus.AUTH),
        (403, "action_prohibited", PostStatus.FORBIDDEN),
        (404, "channel_not_found", PostStatus.GONE),
        (410, "channel_is_archived", PostStatus.GONE),
        (400, "invalid_payload", PostStatus.FAILED),
        (500, "oops", PostStatus.UNKNOWN),
    ],
)
async def test_webhook_errors_are_typed(adapter, fake_slack, status, body, expected) -> None:
    fake_slack.fail_next("webhook", status=status, error=body)
    result = await adapter.post(ANYWHERE, digest(1), key="k")
    assert (result.status, result.error) == (expected, body)


async def test_webhook_refusing_the_images_gets_the_cards_without_them(adapter, fake_slack):
    fake_slack.fail_next("webhook", status=400, error="invalid_blocks")
    result = await adapter.post(ANYWHERE, digest(1), key="k")
    assert result.ok
    (post,) = fake_slack.webhook_posts
    assert card_links(post) == [CARDS[0].url]
    assert "image" not in json.dumps(post["blocks"])


async def test_webhook_429_is_waited_out(adapter, fake_slack, clock) -> None:
    fake_slack.fail_next("webhook", status=429, error="rate_limited", retry_after=7)
    result = await adapter.post(ANYWHERE, digest(1), key="k")
    assert result.ok and len(fake_slack.webhook_posts) == 1
    assert clock.sleeps == [7.0]


async def test_webhook_dropped_connection_is_unknown_and_not_resent(adapter, fake_slack) -> None:
    fake_slack.fail_next("webhook", drop_connection=True)
    result = await adapter.post(ANYWHERE, digest(1), key="k")
    assert result.status is PostStatus.UNKNOWN
    assert len(fake_slack.calls_of("webhook")) == 1


async def test_webhook_cannot_reconcile_and_has_no_routes(adapter) -> None:
    assert await adapter.find_posted(ANYWHERE, "k") is None
    assert adapter.web_routes() == []


def test_from_settings_picks_the_mode(fake_slack: FakeSlack) -> None:
    http = SlackAdapter.from_settings(
        Settings(
            slack_bot_token="xoxb-1",
            slack_signing_secret="s",
            slack_mode="http",
            slack_api_url=fake_slack.api_url,
            _env_file=None,
        )
    )
    assert http.mode == "http" and [r.path for r in http.web_routes()] == ["/slack/events"]
    assert http.client is not None and http.client.base_url == fake_slack.api_url
    socket = SlackAdapter.from_settings(
        Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1", _env_file=None)
    )
    assert socket.mode == "socket" and socket.web_routes() == []
    webhook = SlackAdapter.from_settings(
        Settings(slack_webhook_url=fake_slack.webhook_url(), _env_file=None)
    )
    assert webhook.client is None and webhook.app is None


async def test_the_webhook_url_stays_out_of_debug_logs(fake_slack, clock, capsys) -> None:
    # The URL is the secret; slack_sdk logs each request's URL at DEBUG.
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in ("slack_sdk", "httpx", "aiohttp")}
    try:
        setup_logging("DEBUG")
        url = fake_slack.webhook_url("B0SECRET42")
        adapter = SlackAdapter(webhook_url=url, clock=clock, sleep=clock.sleep)
        result = await adapter.post(ANYWHERE, digest(1), key="k")
        assert result.status is PostStatus.SENT and fake_slack.webhook_posts
        assert "B0SECRET42" not in capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

"""ChatPostSender (the lean chat.postMessage path) against the fake Slack on 127.0.0.1
(both its aiohttp and its lean server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.slack import SlackAdapter
from adapters.slack.posting import metadata_for
from adapters.slack.render import render_reply
from adapters.slack.sender import ChatPostSender
from bot.models import PostStatus, Reply, ReplyKind
from tests.adapters.slack.conftest import CARDS, FakeClock
from tests.fakes.slack import FakeSlack

MESSAGE = render_reply(Reply(title="Results", cards=CARDS[:2], kind=ReplyKind.ALERT))[0]
METADATA = metadata_for("digest:1:20261121T090000Z", 1, 2)


@pytest.fixture(params=["aiohttp", "lean"])
async def fake_slack(request: pytest.FixtureRequest) -> AsyncIterator[FakeSlack]:
    """The sender's whole contract against both of the fake's servers: the benchmark's
    lean one must fail the way the tests' aiohttp one does."""
    async with FakeSlack(server=request.param) as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def senders() -> AsyncIterator[list[ChatPostSender]]:
    made: list[ChatPostSender] = []
    yield made
    for sender in made:
        await sender.close()


@pytest.fixture
def sender_for(senders: list[ChatPostSender]):
    def make(fake: FakeSlack, clock: FakeClock, *, timeout: float = 10.0) -> ChatPostSender:
        sender = ChatPostSender(
            token="xoxb-test", api_url=fake.api_url, timeout=timeout, sleep=clock.sleep
        )
        senders.append(sender)
        return sender

    return make


async def send(sender: ChatPostSender, *, thread_ts: str | None = None):
    return await sender.send("C1", MESSAGE, thread_ts=thread_ts, metadata=METADATA)


async def test_a_post_returns_its_ts_and_sends_the_real_wire_format(fake_slack, clock, sender_for):
    result, ts = await send(sender_for(fake_slack, clock), thread_ts="1700000000.000100")
    assert result.status is PostStatus.SENT
    [stored] = fake_slack.messages["C1"]
    assert ts == stored["ts"] and result.message_ids == (ts,)
    [call] = fake_slack.calls_of("chat.postMessage")
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.headers["Content-Type"] == "application/json; charset=utf-8"
    assert call.args == {
        "channel": "C1",
        "text": MESSAGE["text"],
        "blocks": MESSAGE["blocks"],
        "thread_ts": "1700000000.000100",
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": METADATA,
    }
    assert stored["metadata"] == METADATA and stored["thread_ts"] == "1700000000.000100"


async def test_posts_reuse_one_kept_alive_connection(fake_slack, clock, sender_for):
    sender = sender_for(fake_slack, clock)
    for _ in range(3):
        result, _ts = await send(sender)
        assert result.ok
    assert sender.pool.connections_opened == 1
    assert len(fake_slack.messages["C1"]) == 3
    assert all("thread_ts" not in c.args for c in fake_slack.calls_of("chat.postMessage"))


async def test_a_post_after_a_dropped_connection_opens_a_new_one(fake_slack, clock, sender_for):
    sender = sender_for(fake_slack, clock)
    fake_slack.fail_next("chat.postMessage", drop_connection=True)
    assert (await send(sender))[0].status is PostStatus.UNKNOWN
    assert (await send(sender))[0].ok
    assert sender.pool.connections_opened == 2


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("channel_not_found", PostStatus.GONE),
        ("not_in_channel", PostStatus.GONE),
        ("is_archived", PostStatus.GONE),
        ("invalid_auth", PostStatus.AUTH),
        ("missing_scope", PostStatus.FORBIDDEN),
        ("ratelimited", PostStatus.RETRY),
        ("internal_error", PostStatus.UNKNOWN),
        ("invalid_blocks", PostStatus.FAILED),
    ],
)
async def test_ok_false_errors_become_typed_results(fake_slack, clock, sender_for, error, status):
    fake_slack.fail_next("chat.postMessage", error=error)
    result, ts = await send(sender_for(fake_slack, clock))
    assert (result.status, result.error, result.message_ids, ts) == (status, error, (), None)
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_429_waits_retry_after_then_posts_once(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3)
    result, ts = await send(sender_for(fake_slack, clock))
    assert result.ok and ts == fake_slack.messages["C1"][0]["ts"]
    assert clock.sleeps == [3.0]
    assert len(fake_slack.calls_of("chat.postMessage")) == 2
    assert len(fake_slack.messages["C1"]) == 1


async def test_429_without_retry_after_waits_a_second(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", status=429)
    result, _ts = await send(sender_for(fake_slack, clock))
    assert result.ok and clock.sleeps == [1.0]


async def test_429_asking_too_long_is_retry_with_its_wait(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=120)
    result, _ts = await send(sender_for(fake_slack, clock))
    assert (result.status, result.retry_after, result.error) == (
        PostStatus.RETRY,
        120.0,
        "ratelimited",
    )
    assert clock.sleeps == [] and len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_persistent_429_gives_up_after_two_retries(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=2, times=5)
    result, _ts = await send(sender_for(fake_slack, clock))
    assert (result.status, result.retry_after) == (PostStatus.RETRY, 2.0)
    assert clock.sleeps == [2.0, 2.0] and len(fake_slack.calls_of("chat.postMessage")) == 3


@pytest.mark.parametrize(
    ("failure", "status", "error"),
    [
        ({"status": 500}, PostStatus.UNKNOWN, "internal_error"),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, PostStatus.UNKNOWN, "http_502"),
        ({"status": 200, "body": "<html>oops</html>"}, PostStatus.UNKNOWN, "malformed_response"),
        ({"status": 404, "body": "<html>Not found</html>"}, PostStatus.GONE, "http_404"),
        ({"status": 400, "body": "{not json"}, PostStatus.FAILED, "http_400"),
    ],
)
async def test_server_errors_and_malformed_bodies_are_never_retried(
    fake_slack, clock, sender_for, failure, status, error
):
    fake_slack.fail_next("chat.postMessage", **failure)
    result, ts = await send(sender_for(fake_slack, clock))
    assert (result.status, result.error, ts) == (status, error, None)
    assert len(fake_slack.calls_of("chat.postMessage")) == 1 and clock.sleeps == []


async def test_a_timeout_is_unknown_and_never_retried(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", hang=True)
    result, _ts = await send(sender_for(fake_slack, clock, timeout=0.05))
    assert (result.status, result.error) == (PostStatus.UNKNOWN, "timeout")
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


async def test_a_dropped_connection_is_unknown_and_never_retried(fake_slack, clock, sender_for):
    fake_slack.fail_next("chat.postMessage", drop_connection=True)
    result, _ts = await send(sender_for(fake_slack, clock))
    assert result.status is PostStatus.UNKNOWN
    assert len(fake_slack.calls_of("chat.postMessage")) == 1 and fake_slack.messages["C1"] == []


async def test_a_refused_connection_is_retry(clock, sender_for):
    async with FakeSlack() as gone:
        pass
    result, _ts = await send(sender_for(gone, clock))
    assert result.status is PostStatus.RETRY


def test_posts_take_the_proxy_slack_sdk_reads_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    adapter = SlackAdapter(bot_token="xoxb-test", signing_secret="s", mode="http")
    assert adapter.client is not None and adapter.client.proxy == "http://proxy.internal:3128"
    assert adapter._sender is not None
    assert adapter._sender.pool._proxy == ("proxy.internal", 3128)

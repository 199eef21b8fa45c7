"""Gateway supervision: IDENTIFYs are rationed, fatal errors stop, others back off."""

from __future__ import annotations

import asyncio
import logging

import discord
import discord.http
import pytest
import yarl
from discord.gateway import DiscordWebSocket

from adapters.discord.adapter import AdapterState, DiscordAdapter
from adapters.discord.gateway import (
    DAY_SECONDS,
    Backoff,
    GatewayOutcome,
    IdentifyThrottle,
    supervise,
)
from bot.models import Destination, PostStatus, Reply
from tests.adapters.discord.conftest import RecordingSleep, StubCore
from tests.adapters.discord.payloads import slash
from tests.fakes.discord import TOKEN, FakeDiscord


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def throttle(clock: FakeClock, **kwargs: float) -> IdentifyThrottle:
    return IdentifyThrottle(clock=clock, sleep=clock.sleep, jitter=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


async def test_first_identify_is_immediate_and_repeats_back_off() -> None:
    clock = FakeClock()
    gate = throttle(clock, base_delay=5, max_delay=60, streak_window=900)

    for _ in range(6):
        await gate.wait()

    assert clock.sleeps == [5, 10, 20, 40, 60]
    clock.now += 901 + 60  # a quiet quarter of an hour: the streak is over
    await gate.wait()
    assert clock.sleeps[-1] == 60  # ...except the last identify, still within the window
    clock.now += 10_000
    before = len(clock.sleeps)
    await gate.wait()
    assert len(clock.sleeps) == before  # immediate again


async def test_daily_identify_budget_is_never_exceeded() -> None:
    clock = FakeClock()
    gate = throttle(clock, daily_budget=3, base_delay=0.001, max_delay=0.001, streak_window=1)
    identified_at = []

    for _ in range(4):
        await gate.wait()
        identified_at.append(clock.now)
        clock.now += 100

    assert identified_at[2] - identified_at[0] < 1000  # within budget: (almost) no waiting
    assert identified_at[3] >= identified_at[0] + DAY_SECONDS  # the 4th waited a day


def closed(code: int) -> discord.ConnectionClosed:
    class Socket:
        close_code = code

    return discord.ConnectionClosed(Socket(), shard_id=None, code=code)  # type: ignore[arg-type]


async def test_supervisor_backs_off_and_stops_on_a_fatal_close() -> None:
    clock = FakeClock()
    failures = [OSError("network down"), closed(4000), closed(4004)]
    reopened = 0

    async def connect() -> None:
        raise failures.pop(0)

    async def reopen() -> None:
        nonlocal reopened
        reopened += 1

    outcome = await supervise(
        connect,
        reopen,
        closing=lambda: False,
        sleep=clock.sleep,
        clock=clock,
        backoff=Backoff(base=2, cap=100, jitter=lambda: 1.0),
    )

    assert outcome is GatewayOutcome.FATAL  # 4004: authentication failed, never retried
    assert clock.sleeps == [2, 4]
    assert reopened == 2


async def test_supervisor_resets_backoff_after_a_stable_connection() -> None:
    clock = FakeClock()
    runs = 0

    async def connect() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            clock.now += 3600  # this connection stayed up an hour
        if runs == 5:
            raise discord.LoginFailure("token revoked")
        raise OSError("reset")

    async def reopen() -> None:
        return None

    outcome = await supervise(
        connect,
        reopen,
        closing=lambda: False,
        sleep=clock.sleep,
        clock=clock,
        backoff=Backoff(base=1, cap=100, jitter=lambda: 1.0),
    )

    assert outcome is GatewayOutcome.FATAL
    assert clock.sleeps == [1, 2, 1, 2]


async def test_supervisor_stops_when_closing() -> None:
    clock = FakeClock()
    stopping = False

    async def connect() -> None:
        nonlocal stopping
        stopping = True

    async def reopen() -> None:
        raise AssertionError("must not reconnect while closing")

    outcome = await supervise(connect, reopen, closing=lambda: stopping, sleep=clock.sleep)
    assert outcome is GatewayOutcome.CLOSED


async def test_start_with_a_bad_token_logs_once_and_stays_off(
    fake_discord: FakeDiscord, discord_sleeps: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = DiscordAdapter(token="revoked", api_url=fake_discord.api_url)
    try:
        with caplog.at_level(logging.ERROR, logger="adapters.discord"):
            await adapter.start(StubCore().handle)
        result = await adapter.post(Destination("discord", "1", "2"), Reply(text="x"), key="k")
    finally:
        await adapter.close()

    assert adapter.state is AdapterState.AUTH_FAILED
    assert result.status is PostStatus.AUTH
    assert [r.path for r in fake_discord.requests] == ["/users/@me"]  # no gateway, no retries
    assert "PAPERBOY_DISCORD_TOKEN" in caplog.text and "revoked" not in caplog.text


async def test_start_warns_when_registered_commands_differ(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapters.discord"):
        await adapter.start(StubCore().handle)

    assert "/papers is not registered" in caplog.text
    assert "paperboy discord sync" in caplog.text
    assert not fake_discord.calls("PUT", r"/applications/.*")  # warned, never synced on start

    # once registered, the same check is quiet
    await adapter.client.tree.sync()
    assert await adapter.warn_if_commands_differ() == []
    fake_discord.global_commands[0]["options"][2]["description"] = "an older description"
    [problem] = await adapter.warn_if_commands_differ()
    assert problem.startswith("/papers differs: options[top]")


# --- the real discord.py gateway loop against the fake gateway ------------------------


@pytest.fixture
def gateway_adapter(
    fake_discord: FakeDiscord, discord_sleeps: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> tuple[DiscordAdapter, FakeClock]:
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake_discord.gateway_url))
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    clock = FakeClock()
    adapter = DiscordAdapter(
        token=TOKEN, api_url=fake_discord.api_url, throttle=throttle(clock), defer_after=5.0
    )
    return adapter, clock


def identifies(fake: FakeDiscord) -> list[str]:
    return [r.path for r in fake.requests if r.method == "WS"]


async def test_a_slash_command_arrives_through_the_gateway(
    gateway_adapter: tuple[DiscordAdapter, FakeClock], fake_discord: FakeDiscord
) -> None:
    adapter, _ = gateway_adapter
    interaction = slash("today")
    fake_discord.gateway_plans.append([("dispatch", "INTERACTION_CREATE", interaction)])
    core = StubCore()
    try:
        await adapter.start(core.handle)
        path = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
        [callback] = await fake_discord.wait_for(lambda r: r.path == path)
    finally:
        await adapter.close()

    assert [r.subcommand for r in core.requests] == ["today"]
    assert callback.json["type"] == 4
    identify = next(r for r in fake_discord.requests if r.path == "identify")
    assert identify.json["d"]["token"] == TOKEN
    assert identify.json["d"]["intents"] == discord.Intents(guilds=True).value  # nothing privileged


async def test_reconnects_resume_and_identifies_are_throttled(
    gateway_adapter: tuple[DiscordAdapter, FakeClock], fake_discord: FakeDiscord
) -> None:
    adapter, clock = gateway_adapter
    fake_discord.gateway_plans.extend(
        [[("close", 4000)], [("invalid_session", False)], []]  # drop, then a lost session
    )
    try:
        await adapter.start(StubCore().handle)
        await fake_discord.wait_for(lambda r: r.path == "identify", count=2)
    finally:
        await adapter.close()

    assert identifies(fake_discord) == ["identify", "resume", "identify"]
    assert clock.sleeps == [5.0]  # the second IDENTIFY waited; the RESUME cost none


async def test_an_authentication_close_stops_for_good(
    gateway_adapter: tuple[DiscordAdapter, FakeClock], fake_discord: FakeDiscord
) -> None:
    adapter, _ = gateway_adapter
    fake_discord.gateway_plans.append([("close", 4004)])
    try:
        await adapter.start(StubCore().handle)
        assert adapter._gateway_task is not None
        outcome = await asyncio.wait_for(adapter._gateway_task, 10)
    finally:
        await adapter.close()

    assert outcome is GatewayOutcome.FATAL
    assert identifies(fake_discord) == ["identify"]  # no crash loop


async def test_discord_down_at_start_is_retried_in_the_background(
    gateway_adapter: tuple[DiscordAdapter, FakeClock], fake_discord: FakeDiscord
) -> None:
    adapter, clock = gateway_adapter
    adapter._sleep = clock.sleep  # the login backoff, recorded instead of slept
    fake_discord.fail_next("GET", "/users/@me", status=503)
    try:
        await adapter.start(StubCore().handle)  # returns at once: the bot keeps running
        assert adapter.state is AdapterState.CONNECTING
        await fake_discord.wait_for(lambda r: r.path == "identify")
    finally:
        await adapter.close()

    logins = [r for r in fake_discord.requests if r.path == "/users/@me"]
    assert len(logins) == 2 and len(clock.sleeps) == 1

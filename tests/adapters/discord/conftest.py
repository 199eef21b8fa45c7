"""Shared pieces for the Discord adapter tests: corpus cards, a stub core, the fake API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import discord
import discord.http
import pytest

from adapters.discord.adapter import DiscordAdapter
from bot.models import Button, Card, CommandRequest, Paper, Reply, ReplyKind
from bot.sources.huggingface import parse_daily_items
from tests.fakes.discord import TOKEN, FakeDiscord, fake_discord  # noqa: F401

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "hf_daily_papers_seed.json"
_real_sleep = asyncio.sleep


@cache
def corpus() -> tuple[Paper, ...]:
    papers, _problems = parse_daily_items(json.loads(SEED.read_text()))
    return tuple(papers)


def cards(count: int, *, start: int = 0) -> tuple[Card, ...]:
    return tuple(Card.from_paper(p) for p in corpus()[start : start + count])


def digest(count: int) -> Reply:
    return Reply(
        title="Trending papers — Sat 21 Nov 2026",
        cards=cards(count),
        ephemeral=False,
        kind=ReplyKind.DIGEST,
        footer="From Hugging Face Daily Papers",
    )


def lookup(count: int = 3, command: str = "search diffusion") -> Reply:
    return Reply(
        title="Search: diffusion",
        text="27 papers match.",
        cards=cards(count),
        footer="Papers 1–3",
        buttons=(
            Button("Share in channel", f"{command} --page 1", share=True),
            Button("More", f"{command} --page 2"),
        ),
    )


class StubCore:
    """Records every request; answers with ``reply`` (optionally held until ``release``)."""

    def __init__(self, reply: Reply | None = None, *, hold: bool = False) -> None:
        self.reply = reply or lookup()
        self.requests: list[CommandRequest] = []
        self.received = asyncio.Event()
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()

    async def handle(self, request: CommandRequest) -> Reply:
        self.requests.append(request)
        self.received.set()
        await self.gate.wait()
        return self.reply


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` inside discord.py: records, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float, result: Any = None) -> Any:
        if delay > 0:  # discord.py also sleeps(0) just to yield
            self.delays.append(delay)
        await _real_sleep(0)
        return result


class _AsyncioWithSleep:
    def __init__(self, sleep: RecordingSleep) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture(autouse=True)
def restore_route_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DiscordAdapter points discord.py's global ``Route.BASE`` at its ``api_url``:
    put the real one back after each test, whichever way the adapter was built."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)


@pytest.fixture
def discord_sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    """discord.py's retry and rate-limit waits, recorded instead of slept."""
    recorder = RecordingSleep()
    monkeypatch.setattr(discord.http, "asyncio", _AsyncioWithSleep(recorder))
    return recorder


@pytest.fixture
async def adapter(
    fake_discord: FakeDiscord,  # noqa: F811
    discord_sleeps: RecordingSleep,
) -> AsyncIterator[DiscordAdapter]:
    """A bot-mode adapter pointed at the fake (REST only, no gateway)."""
    instance = DiscordAdapter(
        token=TOKEN,
        api_url=fake_discord.api_url,
        connect_gateway=False,
        request_timeout=5.0,
        defer_after=5.0,
    )
    yield instance
    await instance.close()


def digest_rebuilt(count: int) -> Reply:
    """``digest(count)`` as the delivery layer might rebuild it for a retry: the papers'
    summaries grew since (so the messages split at other cards)."""
    longer = tuple(replace(c, summary="Summarized at last. " * 40) for c in cards(count))
    return replace(digest(count), cards=longer)


def embed_urls(bodies: list[dict]) -> list[str]:
    return [embed["url"] for body in bodies for embed in body.get("embeds", [])]

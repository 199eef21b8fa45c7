"""An errbot-style test bot: the whole command pipeline, in memory, over a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import Commands
from bot.models import Author, CommandRequest, Destination, Paper, Reply
from tests.fakes.huggingface import fake_hf  # noqa: F401

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
CHANNEL = Destination(platform="console", workspace="local", channel="test")


def paper(
    paper_id: str,
    title: str,
    *,
    age_days: float = 0,
    upvotes: int = 0,
    abstract: str = "An abstract.",
    authors: tuple[str, ...] = ("Ada Lovelace",),
) -> Paper:
    at = NOW - timedelta(days=age_days, hours=1)
    return Paper(
        id=paper_id,
        title=title,
        abstract=abstract,
        authors=tuple(Author(a) for a in authors),
        published_at=at,
        submitted_at=at,
        upvotes=upvotes,
        sources=("huggingface",),
    )


class TestBot:
    """``await bot.exec("/papers search x")`` -> the Reply a user would see."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.requests: list[CommandRequest] = []

    async def exec(self, line: str, *, can_manage: bool = True) -> Reply:
        request = CommandRequest.from_text(
            line, user="U1", destination=CHANNEL, can_manage_channel=can_manage
        )
        self.requests.append(request)
        return await self.commands.handle(request)

    async def press(self, reply: Reply, label: str) -> Reply:
        button = next(b for b in reply.buttons if b.label == label)
        return await self.exec(button.command)


@pytest.fixture
def make_bot(store, engine):
    def build(**kwargs) -> TestBot:
        kwargs.setdefault("clock", lambda: NOW)
        return TestBot(Commands(store, engine, **kwargs))

    return build

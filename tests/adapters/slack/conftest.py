"""Fixtures for the Slack adapter tests: corpus cards, the fake Slack, a recording handler."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.models import Button, Card, CommandRequest, Paper, Reply, ReplyKind
from bot.sources.huggingface import parse_daily_items
from tests.fakes.slack import FakeSlack

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "hf_daily_papers_seed.json"


def load_papers() -> list[Paper]:
    papers, _skipped = parse_daily_items(json.loads(SEED.read_text()))
    return papers


PAPERS = load_papers()
CARDS = tuple(Card.from_paper(p) for p in PAPERS)


def rich_card(index: int = 0) -> Card:
    """A corpus card with every optional field set (links, stars, keywords)."""
    return replace(
        CARDS[index],
        github="https://github.com/example/repo",
        github_stars=1234,
        project_page="https://example.org/project?a=1&b=2",
        arxiv_url="https://arxiv.org/abs/2401.01234",
        keywords=("diffusion", "video & audio"),
    )


class FakeClock:
    """Monotonic time that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingHandler:
    """A stand-in for ``Commands.handle``: records requests, answers corpus cards."""

    def __init__(self, cards: int = 3) -> None:
        self.requests: list[CommandRequest] = []
        self.cards = cards

    async def __call__(self, request: CommandRequest) -> Reply:
        self.requests.append(request)
        query = request.args or "everything"
        return Reply(
            title=f"Results for {query}",
            cards=CARDS[: self.cards],
            footer="page 1",
            ephemeral=True,
            kind=ReplyKind.LOOKUP,
            buttons=(
                Button("More", f"search {query} --page 2"),
                Button("Share in channel", f"search {query}", share=True),
            ),
        )


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()

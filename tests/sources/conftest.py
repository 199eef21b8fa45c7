"""Fixtures for the source tests: the fake Hugging Face server and a sleep recorder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.sources.huggingface import HuggingFaceSource
from tests.fakes.huggingface import FakeHuggingFace, fake_hf  # noqa: F401

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_real_shape_items() -> list[dict[str, Any]]:
    """Five items in the exact shape of the live API (good, versioned, sparse, bad)."""
    return json.loads((FIXTURES / "hf_daily_papers_real_shape.json").read_text("utf-8"))


class SleepRecorder:
    """An injected ``sleep`` that returns at once and remembers every wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_source(
    sleeps: SleepRecorder,
) -> AsyncIterator[Callable[..., HuggingFaceSource]]:
    """Build ``HuggingFaceSource`` objects that never really sleep; closed after the test."""
    made: list[HuggingFaceSource] = []

    def build(hf: FakeHuggingFace | str, **kwargs: Any) -> HuggingFaceSource:
        url = hf if isinstance(hf, str) else hf.url
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("timeout", 2.0)
        source = HuggingFaceSource(url, **kwargs)
        made.append(source)
        return source

    yield build
    for source in made:
        await source.close()

"""Keeps the store fresh: polls the paper source, backs off while it is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.metrics import Metrics
from bot.models import Paper, utcnow
from bot.ports import PaperSource, SourceError
from bot.store import PaperStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    fetched: int
    inserted: int
    updated: int


class Poller:
    """Fetch today's and yesterday's lists (a day's list fills in during that day)."""

    def __init__(
        self,
        source: PaperSource,
        store: PaperStore,
        *,
        interval: float = 900.0,
        days: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.source = source
        self.store = store
        self.interval = interval
        self.days = days
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.last_success: datetime | None = None
        self.last_error: str | None = None

    async def poll_once(self) -> PollResult:
        """One poll. Raises :class:`SourceError` when the source cannot be reached."""
        today = utcnow().date()
        papers: dict[str, Paper] = {}
        timing = (
            self.metrics.time_fetch(self.source.name)
            if self.metrics is not None
            else contextlib.nullcontext()
        )
        with timing:
            for offset in range(self.days):
                for paper in await self.source.fetch_day(today - timedelta(days=offset)):
                    papers.setdefault(paper.id, paper)
        result = await self.store.upsert(papers.values())
        self.last_success = utcnow()
        self.last_error = None
        return PollResult(len(papers), result.inserted, result.updated)

    def retry_delay(self, failures: int) -> float:
        """Exponential backoff with jitter: 30 s, 60 s, 120 s … capped at the interval."""
        base = min(self.interval, 30.0 * 2 ** (failures - 1))
        return base * (0.5 + self.rng.random() / 2)

    async def run_forever(
        self, on_poll: Callable[[PollResult], Awaitable[None]] | None = None
    ) -> None:
        failures = 0
        while True:
            try:
                result = await self.poll_once()
            except Exception as exc:  # nothing may end the loop; SourceError is the usual case
                failures += 1
                delay = self.retry_delay(failures)
                error = str(exc) or type(exc).__name__
                # Said once, again when it changes, and every tenth time: an outage of
                # hours is a few lines, not one per retry.
                repeated = error == self.last_error and failures % 10 != 1
                self.last_error = error
                if isinstance(exc, SourceError):
                    level = logging.DEBUG if repeated else logging.WARNING
                    log.log(level, "%s; retrying in %.0f s", exc, delay)
                else:
                    log.exception("poll failed; retrying in %.0f s", delay)
                await self.sleep(delay)
                continue
            if failures:
                log.info("%s is reachable again", self.source.name)
            failures = 0
            log.info(
                "polled %s: %d papers (%d new, %d updated)",
                self.source.name,
                result.fetched,
                result.inserted,
                result.updated,
            )
            if on_poll is not None:
                await on_poll(result)
            await self.sleep(self.interval)

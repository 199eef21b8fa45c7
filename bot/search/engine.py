"""Search over the stored papers: what commands, the CLI and watches ask.

:class:`SearchEngine` answers from the derived indexes (:mod:`bot.search.lexical`, kept
in step by :mod:`bot.search.sync`) and reads the papers themselves from the database.
Commands never wait for indexing: a search first gives a catch-up already under way
(or one it starts, when this process stored papers since the last) a short moment,
then answers from what the index holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.models import Paper, utcnow
from bot.query import Query
from bot.search.lexical import Filters
from bot.search.state import OwnerLock
from bot.search.sync import LexicalFollower, Progress
from bot.store import PaperStore

log = logging.getLogger(__name__)

FRESHNESS_WAIT_SECONDS = 1.0  # a search waits at most this long for a catch-up
FOLLOW_INTERVAL_SECONDS = 5.0  # how often to look for other processes' changes


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of results, best first; ``partial`` when no paper matched every group of
    the query (the results then match some of it)."""

    papers: list[Paper]
    partial: bool = False


class SearchEngine:
    """Searches ``store``'s papers through indexes kept under ``directory`` (None: in
    memory). ``open()`` before use; ``close()`` after."""

    def __init__(
        self,
        store: PaperStore,
        directory: Path | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory = directory
        self.lexical = LexicalFollower(store, directory)
        self._owner = OwnerLock(directory) if directory is not None else None
        self._dirty = asyncio.Event()
        self._catch_up_task: asyncio.Task[int] | None = None
        self._following = False
        store.on_change.append(self._dirty.set)

    async def open(self) -> SearchEngine:
        """Open the indexes; this process maintains them unless another one already does
        (that one keeps them current, this one reads them)."""
        owner = self._owner.acquire() if self._owner is not None else True
        await self.lexical.open(owner=owner)
        if await self.lexical.behind():
            self._dirty.set()
        return self

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.on_change.remove(self._dirty.set)
        task = self._catch_up_task
        if task is not None and not task.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self.lexical.close()
        if self._owner is not None:
            self._owner.release()

    # --- keeping up ----------------------------------------------------------------------

    async def catch_up(self, progress: Progress | None = None) -> int:
        """Index every change stored since the last catch-up; returns how many."""
        self._dirty.clear()
        return await self.lexical.catch_up(progress)

    def _start_catch_up(self) -> asyncio.Task[int]:
        task = self._catch_up_task
        if task is None or task.done():
            task = self._catch_up_task = asyncio.create_task(self.catch_up())
            task.add_done_callback(_log_failure)
        return task

    async def _fresh(self) -> None:
        """Give pending changes a moment to reach the index (never an error)."""
        task = self._catch_up_task
        if self._dirty.is_set() and (task is None or task.done()):
            task = self._start_catch_up()
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=FRESHNESS_WAIT_SECONDS)

    async def follow(self, interval: float = FOLLOW_INTERVAL_SECONDS) -> None:
        """Keep the indexes current until cancelled: at once when this process stores
        papers, and every ``interval`` seconds for changes made by other processes."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=interval)
            try:
                await self.follow_once()
            except Exception:
                log.exception("keeping the search index current failed; retrying")
                await asyncio.sleep(interval)

    async def follow_once(self) -> int:
        """One step of :meth:`follow`: catch up if anything changed; returns how many
        changes were indexed."""
        if self._dirty.is_set() or await self.lexical.behind() or not self.owner:
            return await self._start_catch_up()
        return 0

    @property
    def owner(self) -> bool:
        """Whether this process maintains the indexes (else another one does)."""
        return self.lexical.writable

    async def rebuild(self, progress: Progress | None = None) -> int:
        """Rebuild the indexes from the database (``paperboy index rebuild``); only the
        owner may (see :attr:`owner`)."""
        if not self.owner:
            raise RuntimeError("another process maintains these search indexes")
        return await self.lexical.rebuild(progress)

    # --- asking ----------------------------------------------------------------------------

    def _index(self):  # type: ignore[no-untyped-def]
        index = self.lexical.index
        assert index is not None, "open() first"
        return index

    async def search(
        self,
        query: Query,
        *,
        limit: int = 10,
        offset: int = 0,
        since: datetime | None = None,
        min_upvotes: int | None = None,
    ) -> SearchResult:
        """The best papers for ``query`` (the order of :mod:`bot.search.ranking`).

        ``since`` keeps papers whose Daily Papers date (else arXiv date) is at or after
        it, ``min_upvotes`` those with at least that many upvotes."""
        await self._fresh()
        filters = Filters(since=since, min_upvotes=min_upvotes)
        index = self._index()
        offset = max(0, offset)
        hits = await asyncio.to_thread(
            index.ranked, query, filters, limit=offset + max(0, limit), today=self.clock()
        )
        page = hits[offset:]
        papers = await self.store.by_row_ids([h.row_id for h in page])
        partial = bool(hits) and not await asyncio.to_thread(
            index.full_matches, query, filters, limit=1
        )
        return SearchResult(papers=papers, partial=partial)

    async def full_matches(
        self, query: Query, *, limit: int = 100, since: datetime | None = None
    ) -> list[Paper]:
        """Papers matching every group of ``query`` (exactly those a watch fires on)."""
        await self._fresh()
        rows = await asyncio.to_thread(
            self._index().full_matches, query, Filters(since=since), limit=limit
        )
        return await self.store.by_row_ids(rows)

    async def count_matching(self, query: Query, *, since: datetime | None = None) -> int:
        """How many papers match every group of ``query`` (what a watch would fire on),
        among those of Daily Papers date (else arXiv date) at or after ``since``."""
        await self._fresh()
        return await asyncio.to_thread(self._index().count_matching, query, Filters(since=since))

    async def status(self) -> dict[str, object]:
        """For ``paperboy status``: how much of the store the index holds."""
        index = self._index()
        return {
            "lexical_papers": index.size,
            "lexical_behind": await self.lexical.behind(),
            "lexical_writable": self.lexical.writable,
        }


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("updating the search index failed", exc_info=task.exception())


__all__ = ["SearchEngine", "SearchResult"]

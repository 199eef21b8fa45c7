"""Search over the stored papers: what commands, the CLI and watches ask.

:class:`SearchEngine` answers from the derived indexes (:mod:`bot.search.lexical` and,
once the model is loaded and the papers embedded, :mod:`bot.search.semantic`), ranks by
:mod:`bot.search.ranking`, and reads the papers themselves from the database. Commands
never wait for indexing: a search first gives a catch-up already under way (or one it
starts, when this process stored papers since the last) a short moment, then answers
from what the indexes hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from bot.models import Paper, utcnow
from bot.query import Field, Query, Term, free_text, matches, paper_terms, term_matches
from bot.search.embedding import Embedder
from bot.search.lexical import Filters, LexicalIndex
from bot.search.ranking import (
    POOL,
    Candidate,
    Hit,
    day_of,
    dense_scores,
    epoch_day,
    fuse,
    prior,
)
from bot.search.semantic import Semantic, SemanticStatus
from bot.search.state import OwnerLock
from bot.search.sync import LexicalFollower, Progress
from bot.store import PaperStore
from bot.store.writer import Written
from bot.terms import analyze

log = logging.getLogger(__name__)

FRESHNESS_WAIT_SECONDS = 1.0  # a search waits at most this long for a catch-up
MAX_POOL = 16 * POOL  # candidates of the largest pool: results past its half are cut
FOLLOW_INTERVAL_SECONDS = 5.0  # how often to look for other processes' changes
# Below this dense score a paper that shares no word with the query is not a result:
# every query has nearest neighbours, even one about nothing the library holds.
DENSE_FLOOR = 0.3


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of results, best first; ``partial`` when no paper matched every group of
    the query (the results then match some of it, or its meaning)."""

    papers: list[Paper]
    partial: bool = False


class SearchEngine:
    """Searches ``store``'s papers through indexes kept under ``directory`` (None: in
    memory). ``embedder`` builds the embedding model (None: search by words alone).
    ``open()`` before use; ``close()`` after."""

    def __init__(
        self,
        store: PaperStore,
        directory: Path | None,
        *,
        clock: Callable[[], datetime] = utcnow,
        embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory = directory
        self.lexical = LexicalFollower(store, directory)
        self.semantic = Semantic(store, directory, embedder)
        self._owner = OwnerLock(directory) if directory is not None else None
        self._dirty = asyncio.Event()
        self._catch_up_task: asyncio.Task[int] | None = None
        self._loading: asyncio.Task[None] | None = None
        store.on_change.append(self._stored)

    async def open(self) -> SearchEngine:
        """Open the indexes; this process maintains them unless another one already does
        (that one keeps them current, this one reads them). The embedding model loads in
        the background (:meth:`Semantic.wait_loaded`)."""
        owner = self._owner.acquire() if self._owner is not None else True
        await self.lexical.open(owner=owner)
        self.semantic.owner = owner
        if await self.lexical.behind():
            self._dirty.set()
        self._loading = asyncio.create_task(self.semantic.start(), name="embedding-model")
        return self

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.on_change.remove(self._stored)
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()  # a download under way is left to its daemon thread
        for task in (self._loading, self._catch_up_task):
            if task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        await self.semantic.close()
        await self.lexical.close()
        if self._owner is not None:
            self._owner.release()

    @property
    def owner(self) -> bool:
        """Whether this process maintains the indexes (else another one does)."""
        return self.lexical.writable

    def _stored(self, written: Written) -> None:
        self.lexical.offer(written)
        self._dirty.set()

    # --- keeping up ----------------------------------------------------------------------

    async def catch_up(self, progress: Progress | None = None) -> int:
        """Index every change stored since the last catch-up; returns how many papers."""
        self._dirty.clear()
        done = await self.lexical.catch_up(progress)
        if done:
            self.semantic.wanted.set()
        await self.semantic.refresh()
        return done

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
        await self.semantic.refresh()
        return 0

    async def rebuild(self, progress: Progress | None = None) -> int:
        """Rebuild the lexical index from the database (``paperboy index rebuild``); only
        the owner may (see :attr:`owner`)."""
        if not self.owner:
            raise RuntimeError("another process maintains these search indexes")
        return await self.lexical.rebuild(progress)

    # --- asking ----------------------------------------------------------------------------

    def _index(self) -> LexicalIndex:
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
        offset, wanted = max(0, offset), max(0, offset) + max(0, limit)
        text = free_text(query)
        if self.semantic.usable and text and wanted:
            hits = await self._hybrid(query, text, filters, wanted)
        else:
            hits = await asyncio.to_thread(
                index.ranked, query, filters, limit=wanted, today=self.clock()
            )
        papers = await self.store.by_row_ids([h.row_id for h in hits[offset:wanted]])
        return SearchResult(papers=papers, partial=await self._partial(query, filters, papers))

    async def _partial(self, query: Query, filters: Filters, shown: list[Paper]) -> bool:
        """Whether no paper has every group of ``query``: the page's papers first (the
        best usually does), else one question to the index."""
        if not shown or any(matches(query, paper_terms(p)) for p in shown):
            return False
        full = await asyncio.to_thread(self._index().full_matches, query, filters, limit=1)
        return not full

    async def _hybrid(self, query: Query, text: str, filters: Filters, wanted: int) -> list[Hit]:
        vector = await self.semantic.embed_query(text)
        today = epoch_day(self.clock()) or 0

        async def pool(size: int) -> tuple[list[Hit], bool]:
            candidates, exhausted = await self._hybrid_candidates(query, filters, vector, size)
            coverage = await self._coverage(query, candidates)
            return fuse(candidates, coverage, today), exhausted

        return await _tiered(pool, wanted)

    async def _hybrid_candidates(
        self, query: Query, filters: Filters, vector: np.ndarray, size: int
    ) -> tuple[list[Candidate], bool]:
        """The lexical and the dense candidates of a pool of ``size``, with their dense
        scores; and whether the pool held every paper there is to rank."""
        index, follower = self._index(), self.semantic.follower
        assert follower is not None
        lexical = await asyncio.to_thread(index.pool, query, filters, size=size)
        nearest = await asyncio.to_thread(follower.index.nearest, vector, size)
        known = {c.row_id for c in lexical}
        extra = [row for row in nearest if row not in known]
        admitted = await asyncio.to_thread(index.admitted, extra, query, filters)
        candidates = lexical + [admitted[row] for row in extra if row in admitted]
        assert self.semantic.vectors is not None
        vectors = await self.semantic.vectors.of([c.row_id for c in candidates])
        scores = dense_scores(vector, vectors)
        scored = []
        nearby = 0  # dense candidates that pass the floor
        for c in candidates:
            dense = scores.get(c.row_id)
            if c.lexical == 0 and (dense is None or dense < DENSE_FLOOR):
                continue
            nearby += c.lexical == 0
            scored.append(Candidate(c.row_id, c.lexical, dense, c.upvotes, c.when_us))
        # A larger pool could only add lexical hits the pool cut off, or papers farther
        # than these nearest ones: when most of those failed the floor, none would pass.
        dense_done = len(nearest) < size or nearby < len(extra) // 2
        return scored, len(lexical) < size and dense_done

    async def _coverage(self, query: Query, candidates: list[Candidate]) -> float:
        """The share of ``query``'s groups that its best lexical hit contains."""
        best = max((c for c in candidates if c.lexical > 0), key=lambda c: c.lexical, default=None)
        if best is None:
            return 0.0
        papers = await self.store.by_row_ids([best.row_id])
        if not papers:
            return 0.0
        fields = paper_terms(papers[0])
        matched = sum(any(term_matches(t, fields) for t in group) for group in query.groups)
        return matched / len(query.groups)

    async def similar(
        self, paper: Paper, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[Paper], bool]:
        """Papers most like ``paper``, best first, and whether they were found by meaning
        (else by the words of its title and keywords: no model, or not embedded yet)."""
        await self._fresh()
        row_id = await self.store.row_id(paper.id)
        wanted = max(0, offset) + max(0, limit)
        store = self.semantic.vectors
        own = None
        if store is not None and self.semantic.follower is not None and row_id is not None:
            own = (await store.of([row_id])).get(row_id)
        if own is not None and wanted:
            hits = await self._similar_by_meaning(row_id, own[0], wanted)
            by_meaning = True
        else:
            hits = await self._similar_by_words(paper, row_id, wanted)
            by_meaning = False
        papers = await self.store.by_row_ids([h.row_id for h in hits[max(0, offset) : wanted]])
        return papers, by_meaning

    async def _similar_by_meaning(
        self, row_id: int | None, vector: np.ndarray, wanted: int
    ) -> list[Hit]:
        follower = self.semantic.follower
        assert follower is not None
        today = epoch_day(self.clock()) or 0
        index = self._index()

        async def pool(size: int) -> tuple[list[Hit], bool]:
            nearest = await asyncio.to_thread(follower.index.nearest, vector, size + 1)
            rows = [r for r in nearest if r != row_id]
            facts = await asyncio.to_thread(index.admitted, rows, Query(groups=()), Filters())
            assert self.semantic.vectors is not None
            scores = dense_scores(vector, await self.semantic.vectors.of(rows))
            hits = [
                Hit(r, scores[r] * prior(f.upvotes, day_of(f.when_us), today))
                for r in rows
                if r in scores and (f := facts.get(r)) is not None
            ]
            hits.sort(key=lambda h: (-h.score, -h.row_id))
            return hits, len(nearest) < size + 1

        return await _tiered(pool, wanted)

    async def _similar_by_words(self, paper: Paper, row_id: int | None, wanted: int) -> list[Hit]:
        words = dict.fromkeys(analyze(" ".join((paper.title, *paper.ai_keywords))))
        if not words or not wanted:
            return []
        query = Query(groups=tuple((Term((w,), Field.ANY, w),) for w in list(words)[:12]))
        hits = await asyncio.to_thread(
            self._index().ranked, query, Filters(), limit=wanted + 1, today=self.clock()
        )
        return [h for h in hits if h.row_id != row_id][:wanted]

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
        """For ``paperboy status`` and ``/metrics``: what the indexes hold."""
        index = self._index()
        semantic: SemanticStatus = self.semantic.status
        return {
            "lexical_papers": index.size,
            "lexical_behind": await self.lexical.behind(),
            "owner": self.owner,
            "semantic": semantic.state,
            "semantic_model": semantic.model,
            "semantic_reason": semantic.reason,
            "embedded": semantic.embedded,
            "papers": semantic.papers,
        }


Pool = Callable[[int], Awaitable[tuple[list[Hit], bool]]]


async def _tiered(pool: Pool, wanted: int) -> list[Hit]:
    """The first ``wanted`` results of pools of ``POOL``, ``4 * POOL``, ... papers: each
    pool fills the places up to half its size (a pool ranks its top half reliably),
    after the papers the smaller pools listed, until a pool held every paper (or the
    largest, ``MAX_POOL``, was reached: commands page through 250 results at most)."""
    shown: list[Hit] = []
    seen: set[int] = set()
    size = POOL
    while True:
        hits, exhausted = await pool(size)
        exhausted = exhausted or size >= MAX_POOL
        for hit in hits:
            if not exhausted and len(shown) >= size // 2:
                break
            if hit.row_id not in seen:
                seen.add(hit.row_id)
                shown.append(hit)
        if exhausted or len(shown) >= wanted:
            return shown[:wanted]
        size *= 4


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("updating the search index failed", exc_info=task.exception())


__all__ = ["DENSE_FLOOR", "SearchEngine", "SearchResult"]

"""Keeping the lexical index in step with the database, which stays the truth.

The follower reads the store's change feed (:meth:`PaperStore.changes_after`) from the
revision its index has reached and applies it: new and changed papers are indexed
again, deleted ones removed. It commits every ``COMMIT_EVERY`` changes and at the end,
and records the revision reached beside the index only after tantivy's commit, so a
crash at any point leaves an index that is behind, never ahead: the next catch-up
applies the same changes again, which is harmless. An index folder that is missing,
unreadable, of another version or built from another database is built again.

A rebuild (``paperboy index rebuild``) fills a new folder while searches go on in the
old one, then swaps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from collections.abc import Callable
from pathlib import Path

from bot.models import Paper
from bot.search.lexical import VERSION, IndexBusy, LexicalIndex
from bot.search.state import IndexState, read_state, write_state
from bot.store import PaperStore
from bot.store.writer import Written

log = logging.getLogger(__name__)

FEED_PAGE = 2000  # changes read per query
COMMIT_EVERY = 50_000  # changes applied between commits in a long catch-up

Progress = Callable[[int, int], object]  # (done, total)


class LexicalFollower:
    """A :class:`LexicalIndex` at ``directory / "lexical"`` that follows ``store``
    (``directory`` None: in memory, rebuilt in every process)."""

    def __init__(self, store: PaperStore, directory: Path | None) -> None:
        self.store = store
        self.directory = directory
        self.index: LexicalIndex | None = None
        self.revision = 0  # the store revision the index has reached
        self.writable = True  # False while another process holds the writer
        self._database_id = ""
        self._lock = asyncio.Lock()
        self._offers: deque[Written] = deque()

    @property
    def _folder(self) -> Path | None:
        return None if self.directory is None else self.directory / "lexical"

    @property
    def _state_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "lexical.json"

    async def open(self, *, owner: bool = True) -> None:
        """Open the index. The ``owner`` of the folder (see
        :class:`bot.search.state.OwnerLock`) starts a new, empty one when the folder
        cannot be trusted; another process only reads what the owner keeps."""
        self._database_id = await self.store.db.database_id()
        self.writable = owner
        folder, state_path = self._folder, self._state_path
        if not owner:
            assert folder is not None and state_path is not None  # in memory: always owner
            state = read_state(state_path)
            self.revision = state.revision if state is not None else 0
            if LexicalIndex.exists(folder):
                with contextlib.suppress(ValueError):
                    self.index = await asyncio.to_thread(LexicalIndex, folder)
            if self.index is None:  # nothing readable yet: an empty index until there is
                self.index = await asyncio.to_thread(LexicalIndex, None)
            return
        latest = await self.store.latest_revision()
        state = read_state(state_path) if state_path is not None else None
        trusted = (
            folder is not None
            and state is not None
            and state.matches(self._database_id, VERSION, latest)
            and LexicalIndex.exists(folder)
        )
        if trusted:
            assert folder is not None and state is not None
            try:
                self.index = await asyncio.to_thread(LexicalIndex, folder)
                self.revision = state.revision
            except ValueError as exc:  # tantivy could not read the folder
                log.warning("the search index at %s is unreadable (%s): rebuilding", folder, exc)
        if self.index is None:
            if folder is not None and state is not None:
                log.info("the search index at %s is out of date: rebuilding it", folder)
            self.index = await asyncio.to_thread(self._new_index, folder)
            await self._commit(0)

    @staticmethod
    def _new_index(folder: Path | None) -> LexicalIndex:
        if folder is not None and folder.exists():
            shutil.rmtree(folder)
        return LexicalIndex(folder)

    async def behind(self) -> int:
        """How many revisions the store is ahead of the index (0: up to date)."""
        return max(0, await self.store.latest_revision() - self.revision)

    async def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every change since the index's revision; returns how many were applied.

        Another process holding the writer (a running bot) keeps the index current: then
        this only reloads what that process committed."""
        index = self.index
        assert index is not None, "open() first"
        if self._lock.locked() and progress is None:
            return 0  # a catch-up is under way; its result will be visible shortly
        async with self._lock:
            if not self.writable:
                await self._follow_owner()
                return 0
            latest = await self.store.latest_revision()
            total = max(0, latest - self.revision)
            applied = pending = 0
            reached = self.revision
            while batch := await self._next_batch(reached):
                try:
                    pending += await asyncio.to_thread(index.apply, batch[1])
                except IndexBusy:
                    self.writable = False
                    return applied
                reached = batch[0]
                if pending >= COMMIT_EVERY:
                    await self._commit(reached)
                    applied, pending = applied + pending, 0
                if progress is not None:
                    progress(applied + pending, max(total, applied + pending))
            # Every change up to ``latest`` was committed before the feed was read, so
            # the index holds all of them (revisions of other kinds of changes included).
            if pending or latest > reached:
                await self._commit(max(reached, latest), changed=bool(pending))
                applied += pending
            return applied

    def offer(self, written: Written) -> None:
        """What this process just stored: indexed from memory when its turn comes in the
        feed, instead of being read back from the database."""
        if self.writable and written.last > self.revision:
            self._offers.append(written)

    async def _next_batch(self, reached: int) -> tuple[int, list[tuple[int, Paper | None]]] | None:
        """The next changes after revision ``reached`` and the revision they end at: an
        offer that follows ``reached`` exactly, else a page of the feed (up to the next
        offer), else None when there is nothing more."""
        offers = self._offers
        while offers and offers[0].last <= reached:
            offers.popleft()
        until = None
        if offers:
            head = offers[0]
            complete = len(head.papers) == head.last - head.first + 1
            if head.first == reached + 1 and complete:
                offers.popleft()
                return head.last, [(row_id, paper) for _, row_id, paper in head.papers]
            until = head.first - 1 if complete and head.first > reached else None
        changes = await self.store.changes_after(reached, limit=FEED_PAGE, until=until)
        if changes:
            return changes[-1].revision, [(c.row_id, c.paper) for c in changes]
        if until is not None:
            # Nothing stored between: a revision drawn by a transaction that was rolled
            # back (all earlier ones were committed before this offer's, under the lock).
            return await self._next_batch(until)
        return None

    async def _follow_owner(self) -> None:
        """Not the owner: see what the owner committed, and the revision it reached."""
        state_path, folder = self._state_path, self._folder
        assert state_path is not None and folder is not None
        state = read_state(state_path)
        if state is None or state.database_id != self._database_id:
            return
        index = self.index
        if index is None or index.path is None:  # opened before the owner made the folder
            with contextlib.suppress(ValueError):
                self.index = index = await asyncio.to_thread(LexicalIndex, folder)
        if index is not None and index.path is not None:
            await asyncio.to_thread(index.reload)
            self.revision = state.revision

    async def _commit(self, revision: int, *, changed: bool = True) -> None:
        """Commit what was applied (if ``changed``) and record ``revision`` as reached."""
        index = self.index
        assert index is not None
        if changed:
            await asyncio.to_thread(index.commit)
        self.revision = revision
        state_path = self._state_path
        if state_path is not None:
            state = IndexState(self._database_id, VERSION, revision)
            await asyncio.to_thread(write_state, state_path, state)

    async def rebuild(self, progress: Progress | None = None) -> int:
        """Build the index again from every stored paper, in a new folder that replaces
        the current one when complete; returns how many papers it holds."""
        async with self._lock:
            old = self.index
            folder = self._folder
            fresh_folder = None if folder is None else folder.with_name("lexical.new")
            fresh = await asyncio.to_thread(self._new_index, fresh_folder)
            total = await self.store.count()
            done, revision = 0, 0
            while changes := await self.store.changes_after(revision, limit=FEED_PAGE):
                await asyncio.to_thread(
                    fresh.apply, [(c.row_id, c.paper) for c in changes if c.paper is not None]
                )
                done += sum(1 for c in changes if c.paper is not None)
                revision = changes[-1].revision
                if progress is not None:
                    progress(done, max(total, done))
            await asyncio.to_thread(fresh.commit)
            if old is not None:
                await asyncio.to_thread(old.close)
            if folder is not None and fresh_folder is not None:
                await asyncio.to_thread(fresh.close)
                await asyncio.to_thread(_swap, fresh_folder, folder)
                fresh = await asyncio.to_thread(LexicalIndex, folder)
            self.index, self.revision, self.writable = fresh, 0, True
            await self._commit(revision)
            return done

    async def close(self) -> None:
        if self.index is not None:
            await asyncio.to_thread(self.index.close)


def _swap(fresh: Path, current: Path) -> None:
    retired = current.with_name(current.name + ".old")
    if retired.exists():
        shutil.rmtree(retired)
    if current.exists():
        current.rename(retired)
    fresh.rename(current)
    shutil.rmtree(retired, ignore_errors=True)


__all__ = ["COMMIT_EVERY", "FEED_PAGE", "LexicalFollower"]

"""The vector index: one vector per paper, for nearest-neighbour search (usearch HNSW).

Each paper is found by the embedding of its whole text (title and abstract), stored as
int8 (:func:`quantize`): 384 bytes a paper, 520 MB at a million papers with the graph.
Its passages' vectors stay in the database, which the ranking reads for the few hundred
candidates it scores exactly (:mod:`bot.search.ranking`): an index of every passage
would be five times the size and build five times slower (bench/README.md, "Vector
index").

Like the lexical index it is derived data: :class:`VectorFollower` fills it from the
``paper_vectors`` feed and saves it beside the lexical index, to a temporary file renamed
over the old one (a crash leaves the old file or the new, and the revision saved with
it says where to resume; a file being read is never overwritten in place). It is saved
every few minutes while it changes and on close; what changed since the last save is
read from the database again on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from usearch.index import Index

from bot.search.state import IndexState, read_state, write_state
from bot.store import PaperStore
from bot.store.vectors import StoredVectors, VectorStore

log = logging.getLogger(__name__)

VERSION = 2  # bump when what is indexed changes (bot.search.embedding.paper_texts)
FEED_PAGE = 2000
SAVE_EVERY_SECONDS = 600.0
# HNSW settings (bench/README.md, "Vector index"): 16 links per node, 128 candidates
# while adding, 512 while searching (recall@10 0.95 at a million papers).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 512
# Up to this many papers a search compares the query with every one of them (exact,
# and still a few milliseconds); beyond, it walks the HNSW graph.
EXACT_UP_TO = 50_000
# int8 quantisation of unit vectors: their components stay within about ±0.3, so a
# scale of 400 uses the int8 range (usearch's own cast scales by 127 and lost 4 points
# of recall@10).
QUANTIZE_SCALE = 400.0


def quantize(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors as the int8 the index holds (queries go through it too)."""
    return np.clip(np.rint(vectors * QUANTIZE_SCALE), -127, 127).astype(np.int8)


class VectorIndex:
    """One vector of ``dimensions`` floats per paper row id, int8 in memory."""

    def __init__(self, dimensions: int, path: Path | None = None) -> None:
        self.dimensions = dimensions
        self.path = path
        self.index = Index(
            ndim=dimensions,
            metric="cos",
            dtype="i8",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        if path is not None and path.exists():
            self.index.load(str(path))

    @property
    def size(self) -> int:
        """Papers held."""
        return len(self.index)

    def apply(self, changes: Sequence[StoredVectors]) -> int:
        """Replace each paper's vector by its stored whole-text one (none: the paper is
        gone)."""
        removed = [c.row_id for c in changes if self.index.contains(c.row_id)]
        if removed:
            self.index.remove(np.asarray(removed, dtype=np.uint64))
        latest: dict[int, np.ndarray] = {}
        for change in changes:  # a paper changed twice in one page: its last vector
            if change.vectors is not None and len(change.vectors):
                latest[change.row_id] = change.vectors[0]
            else:
                latest.pop(change.row_id, None)
        if latest:
            keys = np.fromiter(latest, dtype=np.uint64, count=len(latest))
            # Every core: the graph then depends on thread timing, which only a search past
            # EXACT_UP_TO papers (walking it) can notice.
            self.index.add(keys, quantize(np.stack(list(latest.values()))))
        return len(changes)

    def nearest(self, query: np.ndarray, papers: int) -> list[int]:
        """Row ids of up to ``papers`` papers nearest ``query``, nearest first."""
        if not len(self.index) or papers <= 0:
            return []
        count = min(len(self.index), papers)
        found = self.index.search(quantize(query), count, exact=len(self.index) <= EXACT_UP_TO)
        return [int(key) for key in found.keys]

    def save(self, path: Path) -> None:
        """Write the index to ``path`` through a temporary file (atomic on POSIX)."""
        temporary = path.with_name(path.name + ".tmp")
        self.index.save(str(temporary))
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)


class VectorFollower:
    """A :class:`VectorIndex` at ``directory / "vectors.usearch"`` that follows
    ``vectors`` (the stored embeddings of one model) and the store's deletions."""

    def __init__(self, store: PaperStore, vectors: VectorStore, directory: Path | None) -> None:
        self.store = store
        self.vectors = vectors
        self.directory = directory
        self.index = VectorIndex(vectors.dimensions)
        self.revision = 0
        self.owner = True
        self.version = f"{VERSION}:{vectors.model}:{vectors.dimensions}"
        self._database_id = ""
        self._lock = asyncio.Lock()
        self._saved_at = time.monotonic()
        self._unsaved = False

    @property
    def _file(self) -> Path | None:
        return None if self.directory is None else self.directory / "vectors.usearch"

    @property
    def _state_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "vectors.json"

    async def open(self, *, owner: bool = True) -> None:
        """Load the saved index when it can be trusted (see :mod:`bot.search.state`);
        otherwise start empty and build it from the database."""
        self.owner = owner
        self._database_id = await self.store.db.database_id()
        path, state_path = self._file, self._state_path
        if path is None or state_path is None:
            return
        state = read_state(state_path)
        usable = (
            state is not None
            and path.exists()
            and state.matches(self._database_id, self.version, await self.store.latest_revision())
        )
        if usable:
            assert state is not None
            try:
                self.index = await asyncio.to_thread(VectorIndex, self.vectors.dimensions, path)
                self.revision = state.revision
                return
            except (RuntimeError, ValueError, OSError) as exc:
                log.warning("the vector index at %s is unreadable (%s): rebuilding", path, exc)
        self.index = VectorIndex(self.vectors.dimensions)
        self.revision = 0

    async def catch_up(self) -> int:
        """Apply every stored change since the index's revision; returns how many."""
        if not self.owner:
            return await self._reload_if_saved()
        async with self._lock:
            applied = 0
            latest = await self.store.latest_revision()
            while changes := await self.vectors.changes_after(self.revision, limit=FEED_PAGE):
                applied += await asyncio.to_thread(self.index.apply, changes)
                self.revision = changes[-1].revision
                self._unsaved = True
            # Every change up to ``latest`` was committed before the feed was read: the
            # index holds all of them (revisions of other kinds of changes included).
            if latest > self.revision:
                self.revision, self._unsaved = latest, True
            if self._unsaved and time.monotonic() - self._saved_at > SAVE_EVERY_SECONDS:
                await self._save()
            return applied

    async def _save(self) -> None:
        path, state_path = self._file, self._state_path
        self._saved_at = time.monotonic()
        if path is None or state_path is None or not self._unsaved:
            return
        revision = self.revision
        await asyncio.to_thread(self.index.save, path)
        await asyncio.to_thread(
            write_state, state_path, IndexState(self._database_id, self.version, revision)
        )
        self._unsaved = False

    async def _reload_if_saved(self) -> int:
        """Not the owner: load what the owner saved, when it saved something newer."""
        path, state_path = self._file, self._state_path
        if path is None or state_path is None:
            return 0
        state = read_state(state_path)
        if state is None or state.version != self.version or state.revision <= self.revision:
            return 0
        with contextlib.suppress(RuntimeError, ValueError, OSError):
            self.index = await asyncio.to_thread(VectorIndex, self.vectors.dimensions, path)
            self.revision = state.revision
        return 0

    async def close(self) -> None:
        if self.owner:
            async with self._lock:
                await self._save()


__all__ = ["VERSION", "VectorFollower", "VectorIndex"]

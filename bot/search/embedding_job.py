"""Embedding stored papers in the background.

After a poll or an import, papers without vectors are embedded a few at a time, newest
first, in a worker thread, and their vectors stored (:class:`bot.store.vectors.VectorStore`);
the vector index then follows them like the lexical index follows the papers. Commands
and digests never wait for it. On PostgreSQL only the leader embeds (one model's work
for all replicas).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.models import Paper
from bot.search.embedding import Embedder, paper_texts
from bot.store.vectors import VectorStore

log = logging.getLogger(__name__)

BATCH = 16  # papers per round: one transaction, and at most a few seconds of CPU


@dataclass
class EmbeddingProgress:
    """What the job has done in this process, for ``status``."""

    embedded: int = 0
    failed: int = 0
    running: bool = False


class EmbeddingJob:
    """Embeds the papers of ``vectors``'s database that lack vectors of ``embedder``."""

    def __init__(
        self,
        vectors: VectorStore,
        embedder: Embedder,
        *,
        run: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self.vectors = vectors
        self.embedder = embedder
        self._run = run or asyncio.to_thread  # where the model's work runs
        self.progress = EmbeddingProgress()
        self._failed: set[int] = set()  # row ids the model could not embed (this process)
        self._lock = asyncio.Lock()

    async def run(self, on_progress: Callable[[int], object] | None = None) -> int:
        """Embed every paper still missing vectors; returns how many were embedded.
        ``on_progress`` is called with the papers of each round once stored."""
        done = 0
        async with self._lock:
            self.progress.running = True
            try:
                while True:
                    waiting = [
                        (row_id, paper)
                        for row_id, paper in await self.vectors.missing(BATCH + len(self._failed))
                        if row_id not in self._failed
                    ][:BATCH]
                    if not waiting:
                        return done
                    embedded = await self._run(self._embed, waiting)
                    stored = await self.vectors.save(embedded)
                    done += stored
                    self.progress.embedded += stored
                    if on_progress is not None:
                        on_progress(len(waiting))
            finally:
                self.progress.running = False

    def _embed(self, papers: list[tuple[int, Paper]]) -> list[tuple[int, Paper, np.ndarray]]:
        texts = [paper_texts(paper) for _, paper in papers]
        try:
            flat = self.embedder.embed_passages([t for group in texts for t in group])
        except Exception:
            if len(papers) == 1:
                row_id = papers[0][0]
                log.exception("embedding paper row %d failed; it is skipped", row_id)
                self._failed.add(row_id)
                self.progress.failed += 1
                return []
            return [item for one in papers for item in self._embed([one])]
        out, start = [], 0
        for (row_id, paper), group in zip(papers, texts, strict=True):
            out.append((row_id, paper, flat[start : start + len(group)]))
            start += len(group)
        return out


__all__ = ["BATCH", "EmbeddingJob", "EmbeddingProgress"]

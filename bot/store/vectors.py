"""Papers' embeddings in the database (``paper_vectors``, migration 0009).

Each paper has at most one row: the model's name and its vectors, float16, one per
embedded text (:func:`bot.search.embedding.paper_texts`). The rows are stamped from the
papers' revision counter, so the vector index follows them as the lexical index follows
the papers; editing a paper's embedded text deletes its row (bot/store/writer.py), and
the embedding job computes it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.models import Paper
from bot.store.database import Database
from bot.store.papers import PaperStore, merge_feeds
from bot.store.records import ROW_COLUMNS, decode
from bot.store.writer import lock_papers, next_revisions

_COLUMNS = ", ".join(f"p.{c}" for c in ROW_COLUMNS)


@dataclass(frozen=True, slots=True)
class StoredVectors:
    """An entry of the vectors' feed: a paper's vectors stored at ``revision``, or (with
    ``vectors`` None) the paper deleted then."""

    revision: int
    row_id: int
    vectors: np.ndarray | None  # (texts, dimensions), float32


def encode_vectors(vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(vectors, dtype="<f2").tobytes()


def decode_vectors(blob: bytes, dimensions: int) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32).reshape(-1, dimensions)


class VectorStore:
    """Reads and writes ``paper_vectors`` for one model (``model``, ``dimensions``)."""

    def __init__(self, db: Database, model: str, dimensions: int) -> None:
        self.db = db
        self.model = model
        self.dimensions = dimensions

    async def missing(self, limit: int) -> list[tuple[int, Paper]]:
        """Up to ``limit`` stored papers without vectors of this model, newest first
        (new papers matter most to searches and digests)."""
        async with self.db.reader() as raw:
            rows = await raw.fetch(
                f"SELECT p.id, {_COLUMNS} FROM papers p "
                "LEFT JOIN paper_vectors v ON v.row_id = p.id AND v.model = ? "
                "WHERE v.row_id IS NULL ORDER BY p.id DESC LIMIT ?",
                [self.model, limit],
            )
        return [(row[0], decode(row[1:])) for row in rows]

    async def count(self) -> int:
        """Papers that have vectors of this model."""
        async with self.db.reader() as raw:
            rows = await raw.fetch(
                "SELECT count(*) FROM paper_vectors WHERE model = ?", [self.model]
            )
        return int(rows[0][0])

    async def save(self, items: Sequence[tuple[int, Paper, np.ndarray]]) -> int:
        """Store the vectors of ``(row id, paper as embedded, vectors)``; a paper whose
        embedded text changed meanwhile, or that was deleted, is left for the next round.
        Returns how many were stored."""
        if not items:
            return 0
        from bot.store.driver import RawConnection
        from bot.store.records import EMBEDDED_FIELDS

        async with self.db.write() as conn:
            raw = await RawConnection.of(conn)
            await lock_papers(raw)
            among, param = raw.among([row_id for row_id, _, _ in items])
            fields = ", ".join(EMBEDDED_FIELDS)
            current = {
                row[0]: row[1:]
                for row in await raw.fetch(
                    f"SELECT id, {fields} FROM papers WHERE id{among}", [param]
                )
            }
            fresh = [
                (row_id, vectors)
                for row_id, paper, vectors in items
                if current.get(row_id) == tuple(getattr(paper, f) for f in EMBEDDED_FIELDS)
            ]
            revisions = await next_revisions(raw, len(fresh))
            rows = [
                (row_id, self.model, encode_vectors(vectors), revision)
                for (row_id, vectors), revision in zip(fresh, revisions, strict=True)
            ]
            await raw.executemany(
                "INSERT INTO paper_vectors (row_id, model, vectors, revision) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (row_id) DO UPDATE SET "
                "model = excluded.model, vectors = excluded.vectors, "
                "revision = excluded.revision",
                rows,
            )
        return len(rows)

    async def latest_revision(self) -> int:
        async with self.db.reader() as raw:
            rows = await raw.fetch("SELECT coalesce(max(revision), 0) FROM paper_vectors")
        return int(rows[0][0])

    async def changes_after(self, revision: int, *, limit: int = 2000) -> list[StoredVectors]:
        """Up to ``limit`` changes after ``revision``, oldest first: vectors of this model
        stored, and papers deleted (see :func:`bot.store.papers.merge_feeds`)."""
        async with self.db.reader() as raw:
            rows = await raw.fetch(
                "SELECT revision, row_id, vectors FROM paper_vectors "
                "WHERE revision > ? AND model = ? ORDER BY revision LIMIT ?",
                [revision, self.model, limit],
            )
        stored = [
            StoredVectors(row[0], row[1], decode_vectors(bytes(row[2]), self.dimensions))
            for row in rows
        ]
        deleted = await PaperStore(self.db).deletions_after(revision, limit=limit)
        return merge_feeds(
            stored, [StoredVectors(r, row_id, None) for r, row_id in deleted], limit=limit
        )

    async def of(self, row_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of each of ``row_ids`` that has vectors of this model."""
        if not row_ids:
            return {}
        async with self.db.reader() as raw:
            among, param = raw.among(row_ids)
            rows = await raw.fetch(
                f"SELECT row_id, vectors FROM paper_vectors WHERE row_id{among} AND model = ?",
                [param, self.model],
            )
        return {row[0]: decode_vectors(bytes(row[1]), self.dimensions) for row in rows}


__all__ = ["StoredVectors", "VectorStore", "decode_vectors", "encode_vectors"]

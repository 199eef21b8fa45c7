"""Writing papers: batched upsert with merge semantics, stamped for the change feed.

Every inserted paper, and every stored paper whose content changes, gets a new
``revision`` from one counter (migration 0009); the search indexes follow that feed. A
paper seen again unchanged only has its ``last_seen_at`` moved, without a revision. A
paper whose embedded text changes loses its stored embeddings, which the embedding job
then computes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Paper
from bot.store.driver import RawConnection
from bot.store.records import (
    ROW_COLUMNS,
    content_differs,
    decode,
    embedding_differs,
    encode,
    merge,
    sqlite_datetime,
)

# Writers of papers (upserts, the deletion trigger, embeddings) take this PostgreSQL
# transaction lock before drawing revisions, so revisions become visible in the order
# they were drawn and a reader following "revision > n" never skips one.
PAPERS_LOCK = 7205550211
# SQLite: writers are serialised by BEGIN IMMEDIATE; the next revision is one past the
# largest of the three tables that carry them (each read through its index).
_SQLITE_NEXT_REVISION = (
    "SELECT 1 + max((SELECT coalesce(max(revision), 0) FROM papers), "
    "(SELECT coalesce(max(revision), 0) FROM paper_deletions), "
    "(SELECT coalesce(max(revision), 0) FROM paper_vectors))"
)

_COLUMNS = ", ".join(ROW_COLUMNS)
_INSERT = (
    f"INSERT INTO papers (id, {_COLUMNS}, revision) "
    f"VALUES ({', '.join('?' * (len(ROW_COLUMNS) + 2))})"
)
_UPDATE = (
    f"UPDATE papers SET {', '.join(f'{c} = ?' for c in ROW_COLUMNS[1:])}, revision = ? WHERE id = ?"
)


@dataclass(frozen=True, slots=True)
class Written:
    """What one write transaction stored: revisions ``first`` to ``last`` (each of them
    one of ``papers``: (revision, row id, paper as stored), in revision order)."""

    first: int
    last: int
    papers: tuple[tuple[int, int, Paper], ...]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """Papers inserted, updated (stored content changed) and skipped (invalid).

    A paper seen again without any change counts in none of them (only its
    ``last_seen_at`` moves).
    """

    inserted: int = 0
    updated: int = 0
    skipped: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.skipped + other.skipped,
        )


async def lock_papers(raw: RawConnection) -> None:
    """Take the papers' write lock for the rest of the transaction (PostgreSQL; on
    SQLite the ``BEGIN IMMEDIATE`` of :meth:`Database.write` already holds it)."""
    if raw.dialect == "postgresql":
        await raw.execute(f"SELECT pg_advisory_xact_lock({PAPERS_LOCK})")


async def next_revisions(raw: RawConnection, count: int) -> list[int]:
    """``count`` new, increasing revisions, inside a transaction holding the lock."""
    if count <= 0:
        return []
    if raw.dialect == "postgresql":
        rows = await raw.fetch(
            "SELECT nextval('paper_revisions') FROM generate_series(1, ?::int)", [count]
        )
        return [row[0] for row in rows]
    first = (await raw.fetch(_SQLITE_NEXT_REVISION))[0][0]
    return list(range(first, first + count))


async def _existing(raw: RawConnection, ids: Sequence[str]) -> dict[str, tuple[int, Paper]]:
    among, param = raw.among(ids, "text")
    rows = await raw.fetch(f"SELECT id, {_COLUMNS} FROM papers WHERE paper_id{among}", [param])
    return {row[1]: (row[0], decode(row[1:])) for row in rows}


async def _new_ids(raw: RawConnection, count: int) -> list[int]:
    if raw.dialect == "postgresql":
        rows = await raw.fetch(
            "SELECT nextval('papers_id_seq') FROM generate_series(1, ?::int)", [count]
        )
        return [row[0] for row in rows]
    # Under BEGIN IMMEDIATE nobody else can insert until we commit.
    rows = await raw.fetch("SELECT coalesce(max(id), 0) FROM papers")
    first = rows[0][0] + 1
    return list(range(first, first + count))


async def upsert_chunk(
    conn: AsyncConnection, dialect: str, papers: Sequence[Paper], *, now: datetime
) -> tuple[UpsertResult, Written | None]:
    """Upsert valid, id-unique ``papers`` inside the caller's write transaction; returns
    the counts and what was stored (None: nothing changed)."""
    raw = await RawConnection.of(conn)
    await lock_papers(raw)  # replicas upserting the same papers take turns
    existing = await _existing(raw, [p.id for p in papers])
    fresh = [p for p in papers if p.id not in existing]
    changed: list[tuple[int, Paper, Paper]] = []
    seen_only: list[int] = []
    for paper in papers:
        if paper.id not in existing:
            continue
        row_id, old = existing[paper.id]
        merged = merge(old, paper, now=now)
        if content_differs(old, merged):
            changed.append((row_id, old, merged))
        else:
            seen_only.append(row_id)

    revisions = await next_revisions(raw, len(fresh) + len(changed))
    ids = await _new_ids(raw, len(fresh)) if fresh else []
    stored = [(r, i, p) for r, i, p in zip(revisions, ids, fresh, strict=False)]
    stored += [(r, i, new) for r, (i, _, new) in zip(revisions[len(fresh) :], changed, strict=True)]
    if fresh:
        await raw.executemany(
            _INSERT,
            [(i, *encode(p, dialect=dialect, now=now), r) for r, i, p in stored[: len(fresh)]],
        )
    if changed:
        await raw.executemany(
            _UPDATE,
            [(*encode(p, dialect=dialect)[1:], r, i) for r, i, p in stored[len(fresh) :]],
        )
        stale = [i for i, old, new in changed if embedding_differs(old, new)]
        if stale:
            among, param = raw.among(stale)
            await raw.execute(f"DELETE FROM paper_vectors WHERE row_id{among}", [param])
    if seen_only:
        stamp = sqlite_datetime(now) if dialect == "sqlite" else now
        among, param = raw.among(seen_only)
        await raw.execute(f"UPDATE papers SET last_seen_at = ? WHERE id{among}", [stamp, param])
    written = Written(revisions[0], revisions[-1], tuple(stored)) if stored else None
    return UpsertResult(inserted=len(fresh), updated=len(changed)), written


__all__ = [
    "PAPERS_LOCK",
    "UpsertResult",
    "Written",
    "lock_papers",
    "next_revisions",
    "upsert_chunk",
]

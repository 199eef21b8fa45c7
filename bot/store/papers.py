"""The paper repository: what the rest of the bot uses to keep and find papers.

Searching is not here: the search indexes (:mod:`bot.search`) are derived from these
rows and follow them through :meth:`PaperStore.changes_after`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Protocol, TypeVar

from bot.models import Paper, utcnow
from bot.store.database import Database
from bot.store.records import (
    ROW_COLUMNS,
    InvalidPaper,
    decode,
    decode_datetime,
    merge,
    sqlite_datetime,
    validate,
)
from bot.store.writer import UpsertResult, Written, upsert_chunk

log = logging.getLogger(__name__)

UPSERT_CHUNK = 5000  # papers per batch, each in its own write transaction
_COLUMNS = ", ".join(ROW_COLUMNS)
_DAY = "coalesce(submitted_at, published_at)"


def _is_data_error(exc: BaseException) -> bool:
    """Whether the database refused the *data* (so retrying paper by paper can isolate
    the culprit), as opposed to being unreachable, locked or full."""
    import sqlite3

    exc = getattr(exc, "orig", None) or exc
    data_errors: tuple[type[BaseException], ...] = (
        sqlite3.IntegrityError,
        sqlite3.DataError,
        sqlite3.InterfaceError,
        sqlite3.ProgrammingError,
        ValueError,
        TypeError,
        OverflowError,
    )
    try:
        import asyncpg

        data_errors += (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        pass
    return isinstance(exc, data_errors)


def _until(until: int | None) -> tuple[str, list[int]]:
    return ("", []) if until is None else (" AND revision <= ?", [until])


class _Revised(Protocol):
    @property
    def revision(self) -> int: ...


T = TypeVar("T", bound=_Revised)


def merge_feeds(first: Sequence[T], second: Sequence[T], *, limit: int) -> list[T]:
    """Pages of two feeds (each in revision order, at most ``limit`` long) as one feed in
    revision order, cut where both are known to be complete: a full page may go on past
    its last revision, so nothing of the other page after that revision is returned."""
    merged = sorted([*first, *second], key=lambda change: change.revision)
    ends = [page[-1].revision for page in (first, second) if len(page) >= limit]
    if not ends:
        return merged
    return [change for change in merged if change.revision <= min(ends)]


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: a paper stored or changed at ``revision``, or (with
    ``paper`` None) deleted then."""

    revision: int
    row_id: int
    paper: Paper | None


class PaperStore:
    """Papers in the database, and the feed of their changes.

    ``clock`` stamps ``first_seen_at``/``last_seen_at`` (injectable for tests).
    ``on_change`` callbacks get what each write transaction that changed a paper stored
    (:class:`bot.store.writer.Written`), after its commit, in this process; other
    processes' changes are found through :meth:`changes_after`.
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.on_change: list[Callable[[Written], object]] = []

    # --- writing -------------------------------------------------------------------------

    async def upsert(
        self, papers: Iterable[Paper], *, progress: Callable[[int], object] | None = None
    ) -> UpsertResult:
        """Insert new papers and merge known ones (see :func:`bot.store.records.merge`).

        ``progress`` is called with the number of papers of each batch once it is written.
        Invalid papers are skipped and logged; the rest are written in batches of
        ``UPSERT_CHUNK``, each in its own transaction. Idempotent.
        """
        now = self.clock()
        iterator = iter(papers)
        total = UpsertResult()
        while batch := list(islice(iterator, UPSERT_CHUNK)):
            valid, skipped = self._prepare(batch, now)
            total += await self._write(valid, now) + UpsertResult(skipped=skipped)
            if progress is not None:
                progress(len(batch))
        return total

    @staticmethod
    def _prepare(items: Sequence[object], now: datetime) -> tuple[list[Paper], int]:
        """Valid papers of ``items``, one per id (repeats merged in order), and how many
        were skipped as invalid."""
        unique: dict[str, Paper] = {}
        skipped = 0
        for item in items:
            try:
                paper = validate(item)
            except InvalidPaper as exc:
                skipped += 1
                label = getattr(item, "id", None)
                log.warning("skipping paper %r: %s", label if isinstance(label, str) else "?", exc)
                continue
            seen = unique.get(paper.id)
            unique[paper.id] = merge(seen, paper, now=now) if seen else paper
        return list(unique.values()), skipped

    async def _write(self, papers: list[Paper], now: datetime) -> UpsertResult:
        if not papers:
            return UpsertResult()
        try:
            async with self.db.write() as conn:
                result, written = await upsert_chunk(conn, self.db.dialect, papers, now=now)
        except Exception as exc:
            if not _is_data_error(exc):
                raise  # the database is unavailable, locked or full: the caller decides
            if len(papers) == 1:
                log.exception("skipping paper %r: the database refused it", papers[0].id)
                return UpsertResult(skipped=1)
            # Find the culprit(s) paper by paper rather than losing the whole batch.
            log.warning("a batch of %d papers failed; retrying one by one", len(papers))
            result = UpsertResult()
            for paper in papers:
                result += await self._write([paper], now)
            return result
        if written is not None:
            for callback in self.on_change:
                callback(written)
        return result

    # --- reading -------------------------------------------------------------------------

    async def get(self, paper_id: str) -> Paper | None:
        papers = await self.get_many([paper_id])
        return papers[0] if papers else None

    async def get_many(self, ids: Sequence[str]) -> list[Paper]:
        """The stored papers among ``ids``, in the order of ``ids`` (unknown ids left out)."""
        if not ids:
            return []
        async with self.db.reader() as raw:
            among, param = raw.among(ids, "text")
            rows = await raw.fetch(f"SELECT {_COLUMNS} FROM papers WHERE paper_id{among}", [param])
        by_id = {row[0]: decode(row) for row in rows}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    async def by_row_ids(self, row_ids: Sequence[int]) -> list[Paper]:
        """The stored papers with these row ids (what the search indexes call them), in
        the order of ``row_ids``; ids no longer stored are left out."""
        if not row_ids:
            return []
        async with self.db.reader() as raw:
            among, param = raw.among(row_ids)
            rows = await raw.fetch(f"SELECT id, {_COLUMNS} FROM papers WHERE id{among}", [param])
        by_row = {row[0]: decode(row[1:]) for row in rows}
        return [by_row[i] for i in row_ids if i in by_row]

    async def row_id(self, paper_id: str) -> int | None:
        """The row id of a stored paper (None when it is not stored)."""
        async with self.db.reader() as raw:
            rows = await raw.fetch("SELECT id FROM papers WHERE paper_id = ?", [paper_id])
        return int(rows[0][0]) if rows else None

    # --- the change feed -------------------------------------------------------------------

    async def latest_revision(self) -> int:
        """The newest revision of any stored change: papers, deletions, embeddings (0 for
        an empty store)."""
        largest = "max" if self.db.dialect == "sqlite" else "greatest"  # of several values
        async with self.db.reader() as raw:
            rows = await raw.fetch(
                f"SELECT {largest}((SELECT coalesce(max(revision), 0) FROM papers), "
                "(SELECT coalesce(max(revision), 0) FROM paper_deletions), "
                "(SELECT coalesce(max(revision), 0) FROM paper_vectors))"
            )
        return int(rows[0][0])

    async def deletions_after(
        self, revision: int, *, limit: int, until: int | None = None
    ) -> list[tuple[int, int]]:
        """``(revision, row id)`` of up to ``limit`` papers deleted after ``revision`` (and
        at most at ``until``)."""
        bound, params = _until(until)
        async with self.db.reader() as raw:
            rows = await raw.fetch(
                f"SELECT revision, row_id FROM paper_deletions WHERE revision > ?{bound} "
                "ORDER BY revision LIMIT ?",
                [revision, *params, limit],
            )
        return [(int(r), int(i)) for r, i in rows]

    async def changes_after(
        self, revision: int, *, limit: int = 2000, until: int | None = None
    ) -> list[Change]:
        """Up to ``limit`` changes after ``revision`` (and at most at ``until``), oldest
        first: papers stored or changed, and papers deleted. Every change of a revision
        up to the last one returned is included, so the last revision is a safe place to
        resume from."""
        bound, params = _until(until)
        async with self.db.reader() as raw:
            stored = await raw.fetch(
                f"SELECT revision, id, {_COLUMNS} FROM papers WHERE revision > ?{bound} "
                "ORDER BY revision LIMIT ?",
                [revision, *params, limit],
            )
        deleted = await self.deletions_after(revision, limit=limit, until=until)
        return merge_feeds(
            [Change(row[0], row[1], decode(row[2:])) for row in stored],
            [Change(r, row_id, None) for r, row_id in deleted],
            limit=limit,
        )

    # --- listings --------------------------------------------------------------------------

    async def top(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        limit: int = 10,
        offset: int = 0,
        min_upvotes: int = 0,
        trending_only: bool = True,
    ) -> list[Paper]:
        """Papers submitted to Daily Papers (else published) in ``[since, until)``,
        most upvoted first, then newest. ``trending_only`` keeps the papers Hugging Face
        lists (those only seen in arXiv feeds are for watches, or digests that ask)."""
        dialect = self.db.dialect
        when = sqlite_datetime if dialect == "sqlite" else (lambda v: v)
        clauses = [f"{_DAY} >= ?"]
        params: list[object] = [when(since)]
        if trending_only:
            column = "sources" if dialect == "sqlite" else "sources::text"
            clauses.append(f"{column} LIKE '%\"huggingface\"%'")
        if until is not None:
            clauses.append(f"{_DAY} < ?")
            params.append(when(until))
        if min_upvotes:
            clauses.append("coalesce(upvotes, 0) >= ?")
            params.append(min_upvotes)
        sql = (
            f"SELECT {_COLUMNS} FROM papers WHERE {' AND '.join(clauses)} "
            f"ORDER BY coalesce(upvotes, 0) DESC, {_DAY} DESC, id DESC LIMIT ? OFFSET ?"
        )
        async with self.db.reader() as raw:
            rows = await raw.fetch(sql, [*params, max(0, limit), max(0, offset)])
        return [decode(row) for row in rows]

    async def seen_since(self, since: datetime, *, limit: int | None = None) -> list[Paper]:
        """Papers first seen (stored) at or after ``since``, newest first: the new
        papers keyword watches are matched against."""
        when = sqlite_datetime(since) if self.db.dialect == "sqlite" else since
        sql = f"SELECT {_COLUMNS} FROM papers WHERE first_seen_at >= ? ORDER BY id DESC"
        params: list[object] = [when]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        async with self.db.reader() as raw:
            rows = await raw.fetch(sql, params)
        return [decode(row) for row in rows]

    async def count_since(self, since: datetime) -> int:
        """How many papers have a Daily Papers date (else arXiv date) at or after ``since``."""
        when = sqlite_datetime(since) if self.db.dialect == "sqlite" else since
        async with self.db.reader() as raw:
            rows = await raw.fetch(f"SELECT count(*) FROM papers WHERE {_DAY} >= ?", [when])
        return int(rows[0][0])

    async def count(self) -> int:
        async with self.db.reader() as raw:
            return int((await raw.fetch("SELECT count(*) FROM papers"))[0][0])

    async def latest_submitted_at(self) -> datetime | None:
        """The newest Daily Papers submission date stored (None when there is none)."""
        async with self.db.reader() as raw:
            rows = await raw.fetch("SELECT max(submitted_at) FROM papers")
        return decode_datetime(rows[0][0]) if rows else None


__all__ = ["UPSERT_CHUNK", "Change", "PaperStore", "merge_feeds"]

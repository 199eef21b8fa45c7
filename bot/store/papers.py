"""The paper repository: what the rest of the bot uses to keep and find papers."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from itertools import islice

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Paper, utcnow
from bot.query import Query
from bot.store import native
from bot.store.checkpoint import WAL_LIMIT_BYTES, WalCheckpointer
from bot.store.database import Database
from bot.store.driver import RawConnection
from bot.store.fulltext import fts5_match, tsquery_text
from bot.store.records import ROW_COLUMNS, InvalidPaper, decode, merge, sqlite_datetime, validate
from bot.store.search import SearchResult, search_page
from bot.store.writer import (
    Prepared,
    UpsertResult,
    merge_deferred,
    optimize_index,
    prepared_rows,
    set_merging,
    upsert_chunk,
)

log = logging.getLogger(__name__)

UPSERT_CHUNK = 5000  # papers per batch (and per write transaction, outside bulk imports)
# Papers per write transaction in a bulk import on SQLite with native batches: FTS5 keeps
# a transaction's postings in memory (~1.8 KB per paper) and writes them as one segment at
# commit, so larger transactions leave fewer segments to merge or search. The write lock
# is held meanwhile (a few seconds; other writers wait, readers do not).
BULK_TRANSACTION = 100_000
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


class PaperStore:
    """Papers in the database, with full-text search.

    ``clock`` stamps ``first_seen_at``/``last_seen_at`` (injectable for tests).
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._bulk = False
        self._bulk_inserted = 0
        self._checkpointer: WalCheckpointer | None = None

    # --- writing -------------------------------------------------------------------------

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[None]:
        """Many upserts in a row (imports, backfills): the search index defers merging
        its segments to one ``optimize`` on exit, about half the indexing work. Searches
        inside still see every paper, a little slower. Nested uses count as one.
        """
        if self._bulk or self.db.dialect != "sqlite":
            yield
            return
        self._bulk, self._bulk_inserted = True, 0
        await set_merging(self.db, "bulk")
        # What is alive now (typically the papers being imported) stays out of the
        # garbage collector's full passes, which would otherwise rescan it again and
        # again while the import allocates (15-20% of an import's CPU). Inside `paperboy
        # run` start-up already froze what lives long, and stays in charge of it.
        freezing = gc.get_freeze_count() == 0
        if freezing:
            gc.freeze()
        if native.AVAILABLE:  # the bulk transactions (_SharedTransaction) use it
            self._checkpointer = WalCheckpointer.for_database(self.db)
        try:
            yield
        finally:
            if freezing:
                gc.unfreeze()
            self._bulk = False
            checkpointer, self._checkpointer = self._checkpointer, None
            try:
                # The last transaction's checkpoint runs meanwhile.
                await merge_deferred(self.db, inserted=self._bulk_inserted)
            finally:
                if checkpointer is not None:
                    await checkpointer.close()

    async def upsert(
        self, papers: Iterable[Paper], *, progress: Callable[[int], object] | None = None
    ) -> UpsertResult:
        """Insert new papers and merge known ones (see :func:`bot.store.records.merge`).

        ``progress`` is called with the number of papers of each batch once it is written.

        Invalid papers are skipped and logged; the rest are written in batches of
        ``UPSERT_CHUNK``, each in its own transaction (in a bulk import on SQLite with
        native batches, ``BULK_TRANSACTION`` papers per transaction). Idempotent.
        """
        now = self.clock()
        iterator = iter(papers)
        first = list(islice(iterator, UPSERT_CHUNK))
        if len(first) < UPSERT_CHUNK or self._bulk:
            return await self._upsert(first, iterator, now, progress)
        async with self.bulk():  # more than one transaction's worth: a bulk import
            return await self._upsert(first, iterator, now, progress)

    async def _upsert(
        self,
        first: Sequence[object],
        rest: Iterable[object],
        now: datetime,
        progress: Callable[[int], object] | None = None,
    ) -> UpsertResult:
        shared = None
        if self._bulk and self.db.dialect == "sqlite" and native.AVAILABLE:
            shared = _SharedTransaction(self, now, self._checkpointer)
        try:
            total = await self._upsert_batches(first, rest, now, shared, progress)
            if shared is not None:
                committed = await shared.commit()
                total += committed
                self._bulk_inserted += committed.inserted
        except BaseException as exc:
            if shared is not None:
                await shared.roll_back(exc)
            raise
        return total

    async def _upsert_batches(
        self,
        first: Sequence[object],
        rest: Iterable[object],
        now: datetime,
        shared: _SharedTransaction | None,
        progress: Callable[[int], object] | None,
    ) -> UpsertResult:
        total = UpsertResult()
        iterator = iter(rest)
        sqlite = self.db.dialect == "sqlite"
        chunk, skipped, work = self._prepare_batch(first, now, sqlite)
        size = len(first)  # the items of this batch, before validation and de-duplication
        while chunk or skipped:
            total += UpsertResult(skipped=skipped)
            upcoming = list(islice(iterator, UPSERT_CHUNK))
            started: list[asyncio.Future[tuple[list[Paper], int, Prepared]]] = []

            def prepare_upcoming(
                items: list[object] = upcoming,
                started: list[asyncio.Future[tuple[list[Paper], int, Prepared]]] = started,
            ) -> Awaitable[object]:
                # Validation, analysis and encoding of the next batch run in a thread
                # while SQLite indexes this one (the GIL is released meanwhile).
                job = asyncio.to_thread(self._prepare_batch, items, now, sqlite)
                started.append(asyncio.ensure_future(job))
                return asyncio.sleep(0)

            overlap = prepare_upcoming if upcoming and sqlite else None
            if shared is not None:
                written = await shared.write(chunk, work, overlap)
            else:
                written = await self._write(chunk, work, now, overlap)
            total += written
            self._bulk_inserted += written.inserted
            if progress is not None:
                progress(size)
            size = len(upcoming)
            if started:
                chunk, skipped, work = await started[0]
            else:
                chunk, skipped, work = self._prepare_batch(upcoming, now, sqlite)
        return total

    @classmethod
    def _prepare_batch(
        cls, items: Sequence[object], now: datetime, sqlite: bool
    ) -> tuple[list[Paper], int, Prepared]:
        """``_prepare``, then (SQLite) the papers' index documents and encoded rows."""
        papers, skipped = cls._prepare(items, now)
        return papers, skipped, prepared_rows(papers, now) if sqlite else Prepared()

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

    async def _write(
        self,
        papers: list[Paper],
        work: Prepared,
        now: datetime,
        alongside: Callable[[], Awaitable[object]] | None = None,
    ) -> UpsertResult:
        if not papers:
            if alongside:
                await alongside()
            return UpsertResult()
        try:
            async with self.db.write() as conn:
                return await upsert_chunk(
                    conn,
                    self.db.dialect,
                    papers,
                    now=now,
                    prepared=work,
                    alongside=alongside,
                )
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
                result += await self._write([paper], work, now)
            return result

    async def optimize(self) -> None:
        """Compact the search index (call after a bulk import)."""
        await optimize_index(self.db)

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

    async def _by_row_ids(self, raw: RawConnection, row_ids: Sequence[int]) -> list[Paper]:
        if not row_ids:
            return []
        among, param = raw.among(row_ids)
        rows = await raw.fetch(f"SELECT id, {_COLUMNS} FROM papers WHERE id{among}", [param])
        by_row = {row[0]: decode(row[1:]) for row in rows}
        return [by_row[i] for i in row_ids if i in by_row]

    async def search(
        self,
        query: Query,
        *,
        limit: int = 10,
        offset: int = 0,
        since: datetime | None = None,
        min_upvotes: int | None = None,
    ) -> SearchResult:
        """The best papers for ``query`` (see :mod:`bot.store.search` for the order).

        ``since`` keeps papers whose Daily Papers date (else arXiv date) is at or after
        it; ``partial`` is set when no paper matched every group of the query.
        """
        async with self.db.reader() as raw:
            row_ids, partial = await search_page(
                raw,
                query,
                limit=limit,
                offset=max(0, offset),
                since=since,
                min_upvotes=min_upvotes,
            )
            papers = await self._by_row_ids(raw, row_ids)
        return SearchResult(papers=papers, partial=partial)

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

    async def count_matching(self, query: Query, *, since: datetime | None = None) -> int:
        """How many papers fully match ``query`` (exactly those a watch would fire on),
        among those of Daily Papers date (else arXiv date) at or after ``since``.

        Counts every match, so it costs a walk over the query's doclists: for occasional
        questions (how broad is this watch?), not for every search.
        """
        dialect = self.db.dialect
        where, params = "", []
        if since is not None:
            where = " AND coalesce(p.submitted_at, p.published_at) >= ?"
            params.append(sqlite_datetime(since) if dialect == "sqlite" else since)
        if dialect == "sqlite":
            sql = (
                "SELECT count(*) FROM papers_fts f JOIN papers p ON p.id = f.rowid "
                f"WHERE papers_fts MATCH ?{where}"
            )
            expression = fts5_match(query)
        else:
            sql = f"SELECT count(*) FROM papers p WHERE p.search @@ CAST(? AS tsquery){where}"
            expression = tsquery_text(query)
        async with self.db.reader() as raw:
            rows = await raw.fetch(sql, [expression, *params])
        return int(rows[0][0])

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
        from bot.store.records import _decode_datetime

        return _decode_datetime(rows[0][0]) if rows else None


class _SharedTransaction:
    """Consecutive batches of a bulk import written in one transaction, committed every
    ``BULK_TRANSACTION`` papers: FTS5 then writes one segment for all of them instead of
    one per batch (10 at 1M papers instead of 200 for the final merge).

    A batch the database refuses rolls the whole transaction back; its batches are then
    written again one transaction each, where ``PaperStore._write`` isolates the culprit.
    Only the papers are kept for that (their prepared rows would be ~3 KB each).

    With a ``checkpointer``, a commit leaves copying the write-ahead log into the
    database file to it, and only waits for it when the log has grown too large.
    """

    def __init__(
        self, store: PaperStore, now: datetime, checkpointer: WalCheckpointer | None = None
    ) -> None:
        self._store, self._now = store, now
        self._checkpointer = checkpointer
        self._transaction: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None
        self._batches: list[list[Paper]] = []
        self._pending = UpsertResult()

    async def write(
        self, papers: list[Paper], work: Prepared, alongside: Callable[[], Awaitable[object]] | None
    ) -> UpsertResult:
        """Write one batch; returns what this call committed (nothing until a commit)."""
        if not papers:
            if alongside:
                await alongside()
            return UpsertResult()
        if self._conn is None:
            self._transaction = self._store.db.write(checkpoint=self._checkpointer is None)
            self._conn = await self._transaction.__aenter__()
        try:
            result = await upsert_chunk(
                self._conn, "sqlite", papers, now=self._now, prepared=work, alongside=alongside
            )
        except Exception as exc:
            await self.roll_back(exc)
            if not _is_data_error(exc):
                raise
            log.warning("a bulk transaction failed; writing its batches one by one")
            batches, self._batches = [*self._batches, papers], []
            redone = UpsertResult()
            for batch in batches:
                redone += await self._store._write(batch, Prepared(), self._now)
            return redone
        self._batches.append(papers)
        self._pending += result
        if sum(map(len, self._batches)) >= BULK_TRANSACTION:
            return await self.commit()
        return UpsertResult()

    async def commit(self) -> UpsertResult:
        """Commit the open transaction (if any); returns what it wrote."""
        transaction, self._transaction, self._conn = self._transaction, None, None
        committed, self._pending, self._batches = self._pending, UpsertResult(), []
        if transaction is not None:
            await transaction.__aexit__(None, None, None)
            if self._checkpointer is not None:
                self._checkpointer.request()
                if self._checkpointer.log_bytes > WAL_LIMIT_BYTES:
                    await self._checkpointer.drain()
        return committed

    async def roll_back(self, exc: BaseException) -> None:
        """Roll the open transaction (if any) back, because of ``exc``."""
        transaction, self._transaction, self._conn = self._transaction, None, None
        self._pending = UpsertResult()
        if transaction is not None:
            await transaction.__aexit__(type(exc), exc, exc.__traceback__)


__all__ = ["BULK_TRANSACTION", "UPSERT_CHUNK", "PaperStore"]

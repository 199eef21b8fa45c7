"""Writing papers: batched upsert with merge semantics, and keeping the index in sync."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Paper
from bot.store.driver import RawConnection
from bot.store.fulltext import fts_document, tsvector_literals
from bot.store.records import (
    ROW_COLUMNS,
    content_differs,
    decode,
    encode,
    index_differs,
    merge,
    sqlite_datetime,
)

if TYPE_CHECKING:
    from bot.store.database import Database

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(ROW_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO papers (id, {_COLUMNS}) VALUES ({', '.join('?' * (len(ROW_COLUMNS) + 1))})"
)
_PG_INSERT = (
    f"INSERT INTO papers (id, {_COLUMNS}, search, search_head) "
    f"VALUES ({', '.join('?' * (len(ROW_COLUMNS) + 1))}, "
    "CAST(? AS tsvector), CAST(? AS tsvector))"
)
_UPDATE = f"UPDATE papers SET {', '.join(f'{c} = ?' for c in ROW_COLUMNS[1:])} WHERE id = ?"
_PG_UPDATE_INDEXED = (
    f"UPDATE papers SET {', '.join(f'{c} = ?' for c in ROW_COLUMNS[1:])}, "
    "search = CAST(? AS tsvector), search_head = CAST(? AS tsvector) WHERE id = ?"
)
# SQLite full-text tables: papers_fts (all INDEX_COLUMNS, votes) and papers_head_fts
# (title, keywords and votes, for the title tiers of the search plan). Rows: (rowid,
# *document).
#
# With bot._sqlitebatch (RawConnection.runs_batches_natively) a batch goes in row by row
# through one statement, in C, with the GIL released for the whole batch. FTS5 then keeps
# collecting postings in memory until the transaction commits, so a bulk transaction of
# many batches becomes one segment. Without it, a batch goes in as one
# JSON array per statement (one sqlite3_step, the GIL released for the entire insert;
# executemany re-takes it for every row and would stall behind the analyzer thread that a
# bulk import runs alongside). That costs a JSON parse of every row, and FTS5 writes a
# segment at the start of every such multi-row statement.
_FTS_ROWS = {
    "insert": (
        "INSERT INTO papers_fts (rowid, title, keywords, abstract, authors, votes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        "INSERT INTO papers_head_fts (rowid, title, keywords, votes) VALUES (?, ?, ?, ?)",
    ),
    # Contentless FTS5 (no contentless_delete before 3.43): deleting needs the exact old
    # column values, which the deterministic analyzer recomputes from the stored row.
    "delete": (
        "INSERT INTO papers_fts (papers_fts, rowid, title, keywords, abstract, authors, votes) "
        "VALUES ('delete', ?, ?, ?, ?, ?, ?)",
        "INSERT INTO papers_head_fts (papers_head_fts, rowid, title, keywords, votes) "
        "VALUES ('delete', ?, ?, ?, ?)",
    ),
}
# The title table gets its own, small array: `->>` parses a whole row, abstract included.
_FTS_JSON = {
    "insert": (
        "INSERT INTO papers_fts (rowid, title, keywords, abstract, authors, votes) "
        "SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 "
        "FROM json_each(?)",
        "INSERT INTO papers_head_fts (rowid, title, keywords, votes) "
        "SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?)",
    ),
    "delete": (
        "INSERT INTO papers_fts (papers_fts, rowid, title, keywords, abstract, authors, votes) "
        "SELECT 'delete', value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 "
        "FROM json_each(?)",
        "INSERT INTO papers_head_fts (papers_head_fts, rowid, title, keywords, votes) "
        "SELECT 'delete', value->>0, value->>1, value->>2, value->>3 FROM json_each(?)",
    ),
}
FTS_TABLES = ("papers_fts", "papers_head_fts")

Document = tuple[str, str, str, str, str]
IndexRows = Sequence[tuple[int, Document]]


def _fts_rows(rows: IndexRows) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of ``rows`` for ``papers_fts`` and for ``papers_head_fts``."""
    return [(i, *doc) for i, doc in rows], [(i, doc[0], doc[1], doc[4]) for i, doc in rows]


def _index_batches(kind: str, rows: IndexRows) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The statements and rows that add (``kind="insert"``) or remove (``"delete"``) the
    index entries ``rows``, one per full-text table, for native batches."""
    return list(zip(_FTS_ROWS[kind], _fts_rows(rows), strict=True))


def _fts_payloads(rows: IndexRows) -> tuple[str, str]:
    """The JSON arrays of ``rows`` for ``papers_fts`` and for ``papers_head_fts``."""
    full, head = _fts_rows(rows)
    return orjson.dumps(full).decode(), orjson.dumps(head).decode()


async def _fts_write(raw: RawConnection, kind: str, rows: IndexRows) -> None:
    """Add (``kind="insert"``) or remove (``"delete"``) the index entries ``rows``."""
    if not rows:
        return
    if raw.runs_batches_natively:
        await raw.execute_batches(_index_batches(kind, rows))
        return
    for statement, payload in zip(_FTS_JSON[kind], _fts_payloads(rows), strict=True):
        await raw.execute(statement, [payload])


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """Work done ahead for a batch (in a thread, while the previous batch is written):
    FTS5 documents and encoded ``papers`` rows (as a first sighting) by paper id."""

    documents: Mapping[str, Document] = field(default_factory=dict)
    rows: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


def prepared_rows(papers: Sequence[Paper], now: datetime) -> Prepared:
    """The SQLite documents and rows of ``papers`` (CPU-bound: the analyzer).

    A paper that cannot be prepared is left out: writing it prepares it again, inside
    the transaction, where a failure isolates that one paper (see ``PaperStore``)."""
    documents: dict[str, Document] = {}
    rows: dict[str, tuple[Any, ...]] = {}
    for paper in papers:
        try:
            row = encode(paper, dialect="sqlite", now=now)
            documents[paper.id] = fts_document(paper)
        except (ValueError, TypeError, OverflowError):
            continue
        rows[paper.id] = row
    return Prepared(documents=documents, rows=rows)


async def upsert_chunk(
    conn: AsyncConnection,
    dialect: str,
    papers: Sequence[Paper],
    *,
    now: datetime,
    prepared: Prepared | None = None,
    alongside: Callable[[], Awaitable[object]] | None = None,
) -> UpsertResult:
    """Upsert valid, id-unique ``papers`` inside the caller's write transaction.

    ``prepared``: documents and rows already computed for (some of) ``papers``.
    ``alongside`` starts work (preparing the next batch) to run while SQLite indexes
    this one.
    """
    raw = await RawConnection.of(conn)
    if dialect == "postgresql":
        # Replicas upserting the same papers take turns instead of racing on paper_id.
        await raw.execute("SELECT pg_advisory_xact_lock(7205550211)")
    existing = await _existing(raw, [p.id for p in papers])
    fresh = [p for p in papers if p.id not in existing]
    ids = await _new_ids(raw, len(fresh)) if fresh else []
    new_rows = list(zip(ids, fresh, strict=True))
    await _insert(raw, dialect, new_rows, prepared or Prepared(), alongside, now)

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
    await _update(raw, dialect, changed)
    encoded = (prepared or Prepared()).rows
    await _lower_day_floors(
        raw,
        [(i, _encoded_day(encoded.get(p.id)) or _day(p)) for i, p in new_rows]
        + [(i, _day(new)) for i, old, new in changed if _day(old) != _day(new)],
    )
    if seen_only:
        stamp = sqlite_datetime(now) if dialect == "sqlite" else now
        among, ids = raw.among(seen_only)
        await raw.execute(f"UPDATE papers SET last_seen_at = ? WHERE id{among}", [stamp, ids])
    return UpsertResult(inserted=len(new_rows), updated=len(changed))


def _day(paper: Paper) -> str | None:
    """The day (``YYYY-MM-DD``, UTC) searches filter ``since`` on."""
    when = paper.submitted_at or paper.published_at
    return sqlite_datetime(when)[:10] if when is not None else None  # type: ignore[index]


_PUBLISHED_AT, _SUBMITTED_AT = ROW_COLUMNS.index("published_at"), ROW_COLUMNS.index("submitted_at")


def _encoded_day(row: tuple[Any, ...] | None) -> str | None:
    """:func:`_day` read from a prepared SQLite row, whose dates are already UTC text
    (formatting them again cost ~2 us per imported paper on the writer's path)."""
    if row is None:
        return None
    when = row[_SUBMITTED_AT] or row[_PUBLISHED_AT]
    return when[:10] if when else None


async def _lower_day_floors(raw: RawConnection, rows: Sequence[tuple[int, str | None]]) -> None:
    """Keep ``paper_day_floors`` at or below the row id of every paper of each day
    (``rows``: row id and day)."""
    floors: dict[str, int] = {}
    for row_id, day in rows:
        if day is not None and row_id < floors.get(day, row_id + 1):
            floors[day] = row_id
    if floors:
        lowest = "least" if raw.dialect == "postgresql" else "min"  # SQLite's scalar min()
        await raw.execute_rows(
            "INSERT INTO paper_day_floors AS f (day, min_id) VALUES (?, ?) ON CONFLICT (day) "
            f"DO UPDATE SET min_id = {lowest}(f.min_id, excluded.min_id)",
            list(floors.items()),
        )


async def _insert(
    raw: RawConnection,
    dialect: str,
    rows: Sequence[tuple[int, Paper]],
    prepared: Prepared,
    alongside: Callable[[], Awaitable[object]] | None,
    now: datetime,
) -> None:
    background = None
    if dialect == "postgresql":
        await raw.executemany(
            _PG_INSERT,
            [(i, *encode(p, dialect=dialect, now=now), *tsvector_literals(p)) for i, p in rows],
        )
    elif rows:
        encoded, docs = prepared.rows, prepared.documents
        table_rows = [
            (i, *(encoded.get(p.id) or encode(p, dialect=dialect, now=now))) for i, p in rows
        ]
        documents = [(i, docs.get(p.id) or fts_document(p)) for i, p in rows]
        if raw.runs_batches_natively:
            # Everything built first, then one job on SQLite's thread for the three
            # tables with the GIL free, while the next batch is prepared: each hand-over
            # of the GIL to a busy analyzer thread can wait a switch interval (5 ms).
            batches = [(_SQLITE_INSERT, table_rows), *_index_batches("insert", documents)]
            if alongside is not None:
                await alongside()  # the preparation starts with the job below
                alongside = None
            await raw.execute_batches(batches)
        else:  # executemany takes the GIL for every row: nothing else may run meanwhile
            await raw.executemany(_SQLITE_INSERT, table_rows)
            background = alongside() if alongside else None
            await _fts_write(raw, "insert", documents)
    if background is None and alongside is not None:
        background = alongside()
    if background is not None:
        await background


async def _update(
    raw: RawConnection, dialect: str, changed: Sequence[tuple[int, Paper, Paper]]
) -> None:
    if not changed:
        return
    plain = [(i, new) for i, old, new in changed if not index_differs(old, new)]
    reindexed = [(i, old, new) for i, old, new in changed if index_differs(old, new)]
    await raw.executemany(_UPDATE, [(*encode(p, dialect=dialect)[1:], i) for i, p in plain])
    if dialect == "postgresql":
        await raw.executemany(
            _PG_UPDATE_INDEXED,
            [(*encode(p, dialect=dialect)[1:], *tsvector_literals(p), i) for i, _, p in reindexed],
        )
        return
    await raw.executemany(_UPDATE, [(*encode(p, dialect=dialect)[1:], i) for i, _, p in reindexed])
    await _fts_write(raw, "delete", [(i, fts_document(old)) for i, old, _ in reindexed])
    await _fts_write(raw, "insert", [(i, fts_document(new)) for i, _, new in reindexed])


async def index_rows(
    conn: AsyncConnection, dialect: str, rows: Sequence[tuple[int, Paper]], *, replace: bool
) -> None:
    """(Re)build the index entries of stored ``rows`` (id, paper); used by reindex."""
    raw = await RawConnection.of(conn)
    if dialect == "postgresql":
        await raw.executemany(
            "UPDATE papers SET search = CAST(? AS tsvector), search_head = CAST(? AS tsvector) "
            "WHERE id = ?",
            [(*tsvector_literals(p), i) for i, p in rows],
        )
    else:
        await _fts_write(raw, "insert", [(i, fts_document(p)) for i, p in rows])


# FTS5 merges its segments as it goes (automerge=4: every segment is rewritten about
# log4(segments) times). A bulk import turns that off, and lets the pending postings grow
# to a whole bulk transaction (see PaperStore.BULK_TRANSACTION) so that each of them
# becomes one large segment, then merges once at its end: searching even 10 segments at
# 1M papers took twice as long (p95 45 against 21 ms, bench/README.md). The settings
# persist in the FTS5 config table, so start-up puts them back (``restore_merging``) in
# case an import was killed midway.
_MERGING = {
    "normal": {"automerge": 4, "crisismerge": 16, "hashsize": 32 * 1024 * 1024},
    "bulk": {"automerge": 0, "crisismerge": 1000, "hashsize": 1024 * 1024 * 1024},
}


async def set_merging(db: Database, mode: str) -> None:
    """Switch the SQLite full-text tables' segment merging to ``normal`` or ``bulk``."""
    if db.dialect != "sqlite":
        return
    async with db.write() as conn:
        for table in FTS_TABLES:
            for name, value in _MERGING[mode].items():
                await conn.exec_driver_sql(
                    f"INSERT INTO {table}({table}, rank) VALUES ('{name}', {value})"
                )


async def segment_counts(db: Database) -> dict[str, int]:
    """How many FTS5 segments each full-text table has (SQLite; one index seek each)."""
    counts: dict[str, int] = {}
    async with db.read() as conn:
        for table in FTS_TABLES:
            segments, last = 0, -1
            while True:
                result = await conn.exec_driver_sql(
                    f"SELECT segid FROM {table}_idx WHERE segid > ? ORDER BY segid LIMIT 1",
                    (last,),
                )
                row = result.first()
                if row is None:
                    break
                segments, last = segments + 1, row[0]
            counts[table] = segments
    return counts


async def merge_deferred(db: Database, *, inserted: int) -> None:
    """Back to normal merging after a bulk import of ``inserted`` papers, and merge what
    it deferred (nothing when each table is one segment already): a full ``optimize`` when
    they are most of the index, otherwise the incremental merges automerge would have done
    (older, larger segments untouched)."""
    if db.dialect != "sqlite":
        return
    await set_merging(db, "normal")
    if max((await segment_counts(db)).values()) <= 1:
        return
    async with db.read() as conn:
        total = (await conn.exec_driver_sql("SELECT count(*) FROM papers")).scalar_one()
    if inserted * 2 >= total:
        await optimize_index(db)
        return
    for table in FTS_TABLES:
        while True:
            async with db.write() as conn:
                before = (await conn.exec_driver_sql("SELECT total_changes()")).scalar_one()
                await conn.exec_driver_sql(
                    f"INSERT INTO {table}({table}, rank) VALUES ('merge', 4000)"
                )
                after = (await conn.exec_driver_sql("SELECT total_changes()")).scalar_one()
            if after - before < 2:  # FTS5's documented "nothing left to merge" signal
                break


async def restore_merging(db: Database) -> bool:
    """Undo the bulk settings of an import that did not finish; True if it had to."""
    if db.dialect != "sqlite":
        return False
    async with db.read() as conn:
        result = await conn.exec_driver_sql("SELECT v FROM papers_fts_config WHERE k = 'automerge'")
        row = result.first()
    if row is None or int(row[0]) != 0:
        return False
    log.warning("an earlier bulk import did not finish: restoring the search index's merging")
    await set_merging(db, "normal")
    if max((await segment_counts(db)).values()) > 1:
        await optimize_index(db)
    return True


async def optimize_index(db: Database) -> None:
    """Merge the index into as few segments as possible (after bulk imports)."""
    async with db.write() as conn:
        if db.dialect == "sqlite":
            for table in FTS_TABLES:
                await conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # VACUUM also flushes the GIN pending lists, which every search scans linearly.
            await conn.exec_driver_sql("VACUUM (ANALYZE) papers")


__all__ = [
    "UpsertResult",
    "index_rows",
    "merge_deferred",
    "optimize_index",
    "restore_merging",
    "segment_counts",
    "set_merging",
    "upsert_chunk",
]

"""The full-text index: documents, match expressions, rebuilding.

One analyzer for everything: :func:`bot.query.index_fields` (``bot.terms``) turns a
paper into the analyzed text of each column in :data:`bot.query.INDEX_COLUMNS`.

* SQLite: the contentless FTS5 table ``papers_fts`` (rowid = ``papers.id``, tokenizer
  ``ascii``, which only splits our already-analyzed text on spaces), plus a ``votes``
  column of upvote tiers for ``min_upvotes`` searches.
* PostgreSQL: the ``papers.search`` tsvector column, written as a tsvector *literal* with
  explicit positions and weights (title A, keywords B, abstract C, authors D). Never
  ``to_tsvector``: its parser and dictionaries would disagree with our analyzer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING

from bot.models import Paper
from bot.query import (
    FIELD_COLUMNS,
    INDEX_COLUMNS,
    TSVECTOR_WEIGHTS,
    Field,
    Query,
    Term,
    index_fields,
)
from bot.terms import ANALYZER_VERSION

if TYPE_CHECKING:
    from bot.store.database import Database

log = logging.getLogger(__name__)

ANY_COLUMNS = FIELD_COLUMNS[Field.ANY]
MAX_TS_POSITION = 16383  # PostgreSQL's limit; larger positions are clamped to it
COLUMN_GAP = 2  # unused positions between columns, so `<->` never spans two columns


# Upvote tiers: the SQLite index's `votes` column holds every tier a paper's upvotes
# reach, so `min_upvotes N` becomes an FTS5 AND with the largest tier <= N (the exact
# filter still runs in SQL). Changing the list changes the index: bump ANALYZER_VERSION.
VOTE_TIERS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000)


def vote_tokens(upvotes: int | None) -> str:
    """The `votes` column of a paper with ``upvotes`` (e.g. ``"1 2 3 5 10"`` for 12)."""
    if not upvotes or upvotes < 1:
        return ""
    return " ".join(str(t) for t in VOTE_TIERS if upvotes >= t)


def vote_tier(min_upvotes: int | None) -> int | None:
    """The largest tier at most ``min_upvotes`` (None: no tier helps)."""
    if not min_upvotes or min_upvotes < 1:
        return None
    return max(t for t in VOTE_TIERS if t <= min_upvotes)


def fts5_with_votes(expression: str, min_upvotes: int | None) -> str:
    """``expression`` restricted to papers in ``min_upvotes``' tier (or unchanged)."""
    tier = vote_tier(min_upvotes)
    return expression if tier is None else f'({expression}) AND {{votes}} : "{tier}"'


def fts_document(paper: Paper) -> tuple[str, str, str, str, str]:
    """The FTS5 column values of ``paper``: INDEX_COLUMNS order, then ``votes``."""
    fields = index_fields(paper)
    return (
        fields["title"],
        fields["keywords"],
        fields["abstract"],
        fields["authors"],
        vote_tokens(paper.upvotes),
    )


def tsvector_literals(paper: Paper) -> tuple[str, str]:
    """The tsvector literals of ``paper``: all columns (``search``) and title plus
    keywords only (``search_head``), e.g. ``'term':1A,4A 'other':9C``."""
    fields = index_fields(paper)
    positions: dict[str, list[str]] = {}
    head = ""
    start = 1
    for column in INDEX_COLUMNS:
        weight = TSVECTOR_WEIGHTS[column]
        words = fields[column].split()
        for offset, word in enumerate(words):
            position = min(start + offset, MAX_TS_POSITION)
            slots = positions.setdefault(word, [])
            entry = f"{position}{weight}"
            if not slots or slots[-1] != entry:
                slots.append(entry)
        start += len(words) + COLUMN_GAP
        if column == "keywords":
            head = _literal(positions)
    votes = pg_vote_lexemes(paper.upvotes)
    return _literal(positions) + votes, head + votes


def pg_vote_lexemes(upvotes: int | None) -> str:
    """PostgreSQL's upvote tiers: lexemes like ``'!v10'`` (no position), appended to
    both tsvectors. The analyzer only emits letters and digits, so they never collide."""
    return "".join(f" '!v{t}'" for t in vote_tokens(upvotes).split())


def tsquery_with_votes(expression: str, min_upvotes: int | None) -> str:
    """``expression`` restricted to papers in ``min_upvotes``' tier (or unchanged)."""
    tier = vote_tier(min_upvotes)
    return expression if tier is None else f"({expression}) & '!v{tier}'"


def _literal(positions: dict[str, list[str]]) -> str:
    return " ".join(
        "'" + word.replace("\\", "\\\\").replace("'", "''") + "':" + ",".join(slots)
        for word, slots in positions.items()
    )


# --- match expressions -----------------------------------------------------------------


def _columns(term: Term, any_columns: Sequence[str]) -> Sequence[str]:
    return any_columns if term.field is Field.ANY else FIELD_COLUMNS[term.field]


def _fts5_term(term: Term, any_columns: Sequence[str]) -> str:
    phrase = " ".join(term.terms).replace('"', '""')
    return f'{{{" ".join(_columns(term, any_columns))}}} : "{phrase}"'


def _fts5_group(group: Sequence[Term], any_columns: Sequence[str]) -> str:
    return "(" + " OR ".join(_fts5_term(t, any_columns) for t in group) + ")"


def fts5_match(
    query: Query, *, any_columns: Sequence[str] = ANY_COLUMNS, at_least: int | None = None
) -> str:
    """FTS5 MATCH text for ``query``, searching unfielded terms in ``any_columns``.

    ``at_least=k`` asks for papers matching any ``k`` of the query's groups (partial
    matches). With the defaults this is exactly :func:`bot.query.to_fts5`.
    """
    groups = [_fts5_group(g, any_columns) for g in query.groups]
    positive = _at_least(groups, at_least, " AND ", " OR ")
    if not query.excluded:
        return positive
    return f"({positive}) NOT {_fts5_group(query.excluded, ANY_COLUMNS)}"


def fts5_excluded(query: Query) -> str:
    """FTS5 MATCH text that finds papers containing any excluded term of ``query``."""
    return _fts5_group(query.excluded, ANY_COLUMNS)


def _ts_term(term: Term, any_columns: Sequence[str]) -> str:
    weights = "".join(TSVECTOR_WEIGHTS[c] for c in _columns(term, any_columns))
    lexemes = (
        "'" + t.replace("\\", "\\\\").replace("'", "''") + "':" + weights for t in term.terms
    )
    return "(" + " <-> ".join(lexemes) + ")"


def _ts_group(group: Sequence[Term], any_columns: Sequence[str]) -> str:
    return "(" + " | ".join(_ts_term(t, any_columns) for t in group) + ")"


def tsquery_text(
    query: Query, *, any_columns: Sequence[str] = ANY_COLUMNS, at_least: int | None = None
) -> str:
    """The tsquery literal for ``query`` (see :func:`fts5_match`); defaults equal
    :func:`bot.query.to_tsquery`."""
    groups = [_ts_group(g, any_columns) for g in query.groups]
    text = _at_least(groups, at_least, " & ", " | ")
    if query.excluded:
        text = f"({text}) & !{_ts_group(query.excluded, ANY_COLUMNS)}"
    return text


def tsquery_excluded(query: Query) -> str:
    """tsquery text that finds papers containing any excluded term of ``query``."""
    return _ts_group(query.excluded, ANY_COLUMNS)


def _at_least(groups: list[str], k: int | None, and_: str, or_: str) -> str:
    if k is None or k >= len(groups):
        return and_.join(groups)
    return or_.join("(" + and_.join(subset) + ")" for subset in combinations(groups, k))


# --- maintenance ---------------------------------------------------------------------------

REINDEX_BATCH = 5000


async def stored_analyzer_version(db: Database) -> int | None:
    async with db.read() as conn:
        result = await conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'analyzer_version'")
        row = result.first()
    return int(row[0]) if row else None


async def _set_analyzer_version(conn: object, db: Database) -> None:
    upsert = (
        f"INSERT INTO meta (key, value) VALUES ('analyzer_version', '{int(ANALYZER_VERSION)}') "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    await conn.exec_driver_sql(upsert)  # type: ignore[attr-defined]


async def ensure_analyzer_version(db: Database) -> bool:
    """Rebuild the index if it was built by another analyzer version; True if rebuilt.

    Also finishes what a killed bulk import left (deferred segment merging)."""
    from bot.store.writer import restore_merging

    await restore_merging(db)
    version = await stored_analyzer_version(db)
    if version == ANALYZER_VERSION:
        return False
    async with db.read() as conn:
        has_papers = (await conn.exec_driver_sql("SELECT 1 FROM papers LIMIT 1")).first()
    if version is None and not has_papers:
        async with db.write() as conn:
            await _set_analyzer_version(conn, db)
        return False
    log.warning(
        "search index built by analyzer %s, current is %s: rebuilding", version, ANALYZER_VERSION
    )
    await reindex(db)
    return True


async def reindex(db: Database) -> int:
    """Rebuild the whole full-text index from the papers table; returns papers indexed."""
    from bot.store.records import decode
    from bot.store.writer import FTS_TABLES, index_rows, optimize_index, set_merging

    done = 0
    await set_merging(db, "bulk")  # one optimize at the end instead of merging throughout
    async with db.write() as conn:
        if db.dialect == "sqlite":
            for table in FTS_TABLES:
                await conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
        last_id = 0
        columns = ", ".join(("id",) + _row_columns())
        while True:
            result = await conn.exec_driver_sql(
                f"SELECT {columns} FROM papers WHERE id > {last_id} ORDER BY id "
                f"LIMIT {REINDEX_BATCH}"
            )
            rows = result.all()
            if not rows:
                break
            batch = [(row[0], decode(row[1:])) for row in rows]
            await index_rows(conn, db.dialect, batch, replace=db.dialect == "postgresql")
            done += len(batch)
            last_id = rows[-1][0]
        await _set_analyzer_version(conn, db)
    await set_merging(db, "normal")
    await optimize_index(db)
    return done


def _row_columns() -> tuple[str, ...]:
    from bot.store.records import ROW_COLUMNS

    return ROW_COLUMNS


__all__ = [
    "ANY_COLUMNS",
    "ensure_analyzer_version",
    "fts5_excluded",
    "fts5_match",
    "fts5_with_votes",
    "fts_document",
    "reindex",
    "stored_analyzer_version",
    "tsquery_excluded",
    "tsquery_text",
    "tsquery_with_votes",
    "tsvector_literals",
    "vote_tier",
    "vote_tokens",
]

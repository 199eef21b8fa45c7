"""Full-text search with candidate pruning and early termination.

Scoring every match of a common term (bm25, ts_rank) is what makes naive full-text
search slow on a million papers. Instead the store asks the index a few *tiered*
questions, newest first, each stopping after ``pool`` hits:

1. every query group in title or keywords, and when that finds ``pool`` papers or
   more, every group in the title (otherwise the first answer holds all title matches);
2. every group anywhere;
3. only when nothing matched every group: any ``k`` of the ``n`` groups, for
   ``k = n-1 .. 1`` (partial matches).

FTS5 walks its doclists lazily in rowid order (PostgreSQL walks the primary key
backwards), so a common term stops after ``pool`` hits instead of scoring all of them.
The title tiers run on an index of title and keywords only (``papers_head_fts`` on
SQLite, ``search_head`` on PostgreSQL, whose title-only tier has a GIN index of the
title lexemes alone: ``TITLE_VECTOR``), an order of magnitude smaller, and look at the
newest ``TITLE_TIER_WINDOW`` papers at most, so an AND of common words that rarely meet
in a title stays cheap. The candidates are then ordered by the rule of
:mod:`bot.store.ranking`, analyzing only their titles and keywords. When a tier has more
than ``pool`` hits, a title tier ranks the ``pool`` most upvoted of its newest
``SCAN_WINDOW`` (500) matches, the "anywhere" tier its newest ``pool``: among equally
relevant papers, recent ones are preferred, by design, but the title matches that lead
do not change with the page size. A page past the first ``POOL_MIN`` results takes the
papers a pool of 120 (then 240, ...) adds after those of the smaller pools, so paging
never repeats or skips a paper.

Filters narrow the walk itself rather than the papers it yields: ``min_upvotes`` ANDs an
upvote tier into the match (``fulltext.VOTE_TIERS``), and ``since`` bounds the row ids
walked from below (``paper_day_floors``, migrations 0005 and 0006); the exact conditions
still run in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from math import comb
from typing import Any

import orjson

from bot.models import Paper
from bot.query import Field, Query
from bot.store.driver import RawConnection
from bot.store.fulltext import (
    ANY_COLUMNS,
    fts5_excluded,
    fts5_match,
    fts5_with_votes,
    tsquery_excluded,
    tsquery_text,
    tsquery_with_votes,
)
from bot.store.ranking import NOT_FOUND, group_places
from bot.store.records import _decode_list, sqlite_datetime
from bot.terms import analyzed_text

POOL_MIN = 60  # candidates per tier for the first 60 results (then 120, 240, ...)
# Title tiers: their candidates are the `pool` most upvoted of this many newest matches.
SCAN_WINDOW = 500
TITLE_TIER_WINDOW = 250_000  # papers (newest first) the title tiers may scan
MAX_PARTIAL_SUBSETS = 20
HIT_CHECK_SPAN = 5000  # rows: below this, check candidates with a range scan
TIERS: tuple[tuple[str, ...], ...] = (("title",), ("title", "keywords"), ANY_COLUMNS)  # columns
TITLE_VECTOR = "ts_filter(p.search_head, '{a}')"  # PostgreSQL: title lexemes (weight A)
_OLDEST = {"sqlite": "", "postgresql": datetime.min.replace(tzinfo=UTC)}
_DAY = "coalesce(p.submitted_at, p.published_at)"
_RANK_COLUMNS = f"p.title, p.ai_keywords, p.authors, p.upvotes, {_DAY}"
# Row id bounds of the index walk, each an SQL expression of one parameter. The window:
# the title tiers look at the newest TITLE_TIER_WINDOW papers (parameter) at most. Since:
# a row id no paper dated on or after the day (parameter, YYYY-MM-DD) is below
# (migrations 0005, 0006); with no such day, one past the newest paper.
_WINDOW_FLOOR_SQL = "coalesce((SELECT max(id) FROM papers), 0) - ?"
_SINCE_FLOOR_SQL = (
    "coalesce((SELECT min(min_id) FROM paper_day_floors WHERE day >= ?), "
    "(SELECT coalesce(max(id), 0) + 1 FROM papers))"
)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of results; ``partial`` when no paper matched every group of the query
    (and some matched a part of it)."""

    papers: list[Paper]
    partial: bool = False


def _filters(
    dialect: str, since: datetime | None, min_upvotes: int | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append(f"{_DAY} >= ?")
        params.append(sqlite_datetime(since) if dialect == "sqlite" else since)
    if min_upvotes is not None and min_upvotes > 0:
        clauses.append("coalesce(p.upvotes, 0) >= ?")
        params.append(min_upvotes)
    return "".join(f" AND {c}" for c in clauses), params


class _Plan:
    """One search: the query, its filters, and the candidate queries it runs.

    Candidate rows are ``(id, title, ai_keywords, authors, upvotes, day)``.
    """

    def __init__(
        self,
        raw: RawConnection,
        query: Query,
        pool: int,
        since: datetime | None,
        min_upvotes: int | None,
    ) -> None:
        self.raw = raw
        self.query = query
        self.pool = pool
        self.where, self.params = _filters(raw.dialect, since, min_upvotes)
        self.min_upvotes = min_upvotes
        self.sqlite = raw.dialect == "sqlite"
        self.has_author_terms = any(t.field is Field.AUTHOR for t in query.terms)
        self.compile = fts5_match if self.sqlite else tsquery_text
        self.since = since
        self._floors: dict[str, int] = {}  # PostgreSQL: the bounds, by expression

    async def _rows(
        self, head: bool, expression: str, columns: str = _RANK_COLUMNS, *, title_only: bool = False
    ) -> list[tuple[Any, ...]]:
        where, params = self.where, list(self.params)
        # Bounds on the row id the index walk is ordered by: FTS5's rowid on SQLite (so
        # the walk itself stops there), the primary key on PostgreSQL.
        walked = "f.rowid" if self.sqlite else "p.id"
        if head:
            # Work budget: an AND of common words that rarely meet in a title would
            # otherwise walk their whole doclists. Older papers are still found by the
            # "anywhere" tier.
            bound, value = await self._floor(_WINDOW_FLOOR_SQL, TITLE_TIER_WINDOW)
            where += f" AND {walked} > {bound}"
            params.append(value)
        if self.since is not None:
            day = sqlite_datetime(self.since)[:10]  # type: ignore[index]
            bound, value = await self._floor(_SINCE_FLOOR_SQL, day)
            where += f" AND {walked} >= {bound}"
            params.append(value)
        if self.sqlite:
            table = "papers_head_fts" if head else "papers_fts"
            # Only papers in the upvote tier: FTS5 intersects doclists instead of walking
            # matches until enough pass the exact filter below.
            expression = fts5_with_votes(expression, self.min_upvotes)
            walk = (
                f"FROM {table} f JOIN papers p ON p.id = f.rowid WHERE {table} MATCH ?{where} "
                "ORDER BY f.rowid DESC LIMIT ?"
            )
            params = [expression, *params]
        else:
            vector = "p.search_head" if head else "p.search"
            if title_only:
                # The title lexemes alone, with a GIN index of their own (migration 0008):
                # on `search_head` a word rare in titles but common in keywords looks
                # common to the planner, which then walks the primary key through most
                # of the table for it (`data` at 200,000 papers: 184 ms, now 8.5 ms).
                vector = TITLE_VECTOR
            expression = tsquery_with_votes(expression, self.min_upvotes)
            # The cheap filters first: PostgreSQL keeps the written order of equally
            # costed conditions, and when it walks the primary key newest first, a
            # paper failing `upvotes >= N` is then skipped without reading its toasted
            # tsvector (min_upvotes 10 over 200,000 papers: 44-137 ms -> 7 ms).
            walk = (
                f"FROM papers p WHERE TRUE{where} AND {vector} @@ CAST(? AS tsquery) "
                "ORDER BY p.id DESC LIMIT ?"
            )
            params = [*params, expression]
        if not head:
            return await self.raw.fetch(f"SELECT p.id, {columns} {walk}", [*params, self.pool])
        # Title tiers: the `pool` most upvoted of the newest SCAN_WINDOW matches. The
        # ranking's tie-break, upvotes, picks the candidates, so a deeper page or a larger
        # limit extends the same order instead of changing it. Measured at 1M papers:
        # p50 +1 ms; the "anywhere" tier would cost 2-3x that, so it keeps the newest.
        # The `pool` are chosen before the join that reads their ranking columns: joining
        # all SCAN_WINDOW matches first read 500 rows to keep 60 (the title tiers' SQL
        # 1.40 -> 0.82 ms per query at 1M papers). The caller orders the rows itself.
        sql = (
            f"SELECT p.id, {columns} FROM (SELECT id FROM (SELECT p.id AS id, "
            f"coalesce(p.upvotes, 0) AS votes {walk}) m ORDER BY votes DESC, id DESC LIMIT ?) w "
            "JOIN papers p ON p.id = w.id"
        )
        scan = max(SCAN_WINDOW, self.pool)
        return await self.raw.fetch(sql, [*params, scan, self.pool])

    async def _floor(self, expression: str, param: Any) -> tuple[str, Any]:
        """The row id bound ``expression`` as SQL and its parameter. SQLite gets the
        expression itself, which it evaluates once before the walk (a round trip to the
        database thread fewer per search); PostgreSQL gets the number, which its planner
        needs (computed once per search)."""
        if self.sqlite:
            return expression, param
        if expression not in self._floors:
            rows = await self.raw.fetch(f"SELECT {expression}", [param])
            self._floors[expression] = rows[0][0]
        return "?", self._floors[expression]

    async def _hits(self, row_ids: Sequence[int], sqlite_match: str, tsquery: str) -> set[int]:
        """Which of ``row_ids`` match (one indexed lookup per id, not a scan)."""
        if not row_ids:
            return set()
        if self.sqlite and max(row_ids) - min(row_ids) <= HIT_CHECK_SPAN:
            # Close-together rows: one short range scan beats a doclist seek per row.
            hits = await self.raw.fetch(
                "SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? AND rowid BETWEEN ? AND ?",
                [sqlite_match, min(row_ids), max(row_ids)],
            )
            wanted = set(row_ids)
            return {hit[0] for hit in hits if hit[0] in wanted}
        if self.sqlite:
            hits = await self.raw.fetch(
                "SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? "
                "AND rowid IN (SELECT value FROM json_each(?))",
                [sqlite_match, orjson.dumps(list(row_ids)).decode()],
            )
        else:
            hits = await self.raw.fetch(
                "SELECT id FROM papers WHERE id = ANY(?::int[]) AND search @@ CAST(? AS tsquery)",
                [list(row_ids), tsquery],
            )
        return {hit[0] for hit in hits}

    async def _tier(self, columns_searched: Sequence[str]) -> tuple[list[tuple[Any, ...]], bool]:
        """Full matches with unfielded terms in ``columns_searched``; and whether the
        answer is complete (fewer than ``pool`` hits)."""
        # Title tiers use the title+keywords index, which has no author column: only
        # without author: terms. Exclusions are then checked on the full index.
        head = columns_searched != ANY_COLUMNS and not self.has_author_terms
        if head:
            positive = Query(groups=self.query.groups)
            rows = await self._rows(
                True,
                self.compile(positive, any_columns=columns_searched),
                title_only=tuple(columns_searched) == TIERS[0],
            )
        else:
            rows = await self._rows(False, self.compile(self.query, any_columns=columns_searched))
        complete = len(rows) < self.pool
        if head and rows and self.query.excluded:
            dropped = await self._hits(
                [row[0] for row in rows], fts5_excluded(self.query), tsquery_excluded(self.query)
            )
            rows = [row for row in rows if row[0] not in dropped]
        return rows, complete

    async def full_matches(self) -> dict[int, tuple[Any, ...]]:
        """Candidate rows of papers matching every group, enough for the top ``pool``."""
        found: dict[int, tuple[Any, ...]] = {}
        if not any(t.field is Field.ANY for t in self.query.terms):
            rows, _ = await self._tier(ANY_COLUMNS)
            return {row[0]: row for row in rows}
        # Title-or-keywords first: when that tier is complete, it also holds every
        # title-only match (ranked in Python), so the title tier need not run at all.
        title_or_keywords, complete = await self._tier(TIERS[1])
        if not complete:
            title_only, _ = await self._tier(TIERS[0])
            found.update((row[0], row) for row in title_only)
        for row in title_or_keywords:
            found.setdefault(row[0], row)
        if complete or len(found) < self.pool:
            anywhere, _ = await self._tier(ANY_COLUMNS)
            for row in anywhere:
                found.setdefault(row[0], row)
        return found

    async def partial_matches(self) -> tuple[dict[int, tuple[Any, ...]], dict[int, int]]:
        """Candidate rows of papers matching some groups, and how many groups each."""
        found: dict[int, tuple[Any, ...]] = {}
        groups = len(self.query.groups)
        for k in range(groups - 1, 0, -1):
            if k > 1 and comb(groups, k) > MAX_PARTIAL_SUBSETS:
                continue
            for row in await self._rows(False, self.compile(self.query, at_least=k)):
                found.setdefault(row[0], row)
            if len(found) >= self.pool:
                break
        matched = dict.fromkeys(found, 0)
        for group in self.query.groups:
            single = Query(groups=(group,))
            for row_id in await self._hits(list(found), fts5_match(single), tsquery_text(single)):
                matched[row_id] += 1
        return found, matched


def _head_places(query: Query, row: tuple[Any, ...], with_authors: bool) -> list[int]:
    """Per group: where it is seen in the title (0) or keywords (1) (fielded terms: 0),
    else NOT_FOUND (the abstract is not fetched for ranking)."""
    fields = {
        "title": analyzed_text(row[1]).split(),
        "keywords": analyzed_text(" ".join(_decode_list(row[2]))).split(),
    }
    if with_authors:
        fields["authors"] = analyzed_text(" ".join(_decode_list(row[3]))).split()
    return group_places(query, fields)


def _place(query: Query, row: tuple[Any, ...], with_authors: bool, groups_matched: int) -> int:
    """The worst place among the ``groups_matched`` groups the paper matches: a matching
    group not seen in title or keywords is in the abstract (2)."""
    seen = [p for p in _head_places(query, row, with_authors) if p != NOT_FOUND]
    return 2 if len(seen) < groups_matched else max(seen, default=2)


def rank_rows(
    query: Query,
    rows: Sequence[tuple[Any, ...]],
    dialect: str,
    matched: dict[int, int] | None = None,
) -> list[int]:
    """Row ids best first, by the rule of :mod:`bot.store.ranking`: groups matched
    (``matched``, else all), place, then upvotes, day and row id, descending."""
    oldest = _OLDEST[dialect]
    with_authors = any(t.field is Field.AUTHOR for t in query.terms)
    everything = len(query.groups)
    counts = matched if matched is not None else dict.fromkeys((r[0] for r in rows), everything)
    by_votes = sorted(rows, key=lambda r: (r[4] or 0, r[5] or oldest, r[0]), reverse=True)
    by_place = sorted(
        (r for r in by_votes if counts.get(r[0])),
        key=lambda r: (-counts[r[0]], _place(query, r, with_authors, counts[r[0]])),
    )
    return [row[0] for row in by_place]


async def search_page(
    raw: RawConnection,
    query: Query,
    *,
    limit: int,
    offset: int,
    since: datetime | None,
    min_upvotes: int | None,
) -> tuple[list[int], bool]:
    """Row ids of the requested page, best first, and whether they are partial matches.

    The order does not depend on the page asked for: the first ``POOL_MIN`` results are
    the ranking of a ``POOL_MIN`` pool, the next ones those of a pool twice as large that
    the first did not hold, and so on. A larger pool brings in older papers that would
    otherwise reorder the papers already shown, so pages would repeat or skip papers.
    """
    if limit <= 0:
        return [], False
    ranked: dict[int, None] = {}  # in order, without repeats
    partial = False
    pool = POOL_MIN
    while True:
        found, partial = await _ranked_pool(raw, query, pool, since, min_upvotes)
        ranked.update(dict.fromkeys(found))
        if len(ranked) >= offset + limit or len(found) < pool:
            break  # enough, or every candidate there is was in this pool
        pool *= 2
    return list(ranked)[offset : offset + limit], partial


async def _ranked_pool(
    raw: RawConnection,
    query: Query,
    pool: int,
    since: datetime | None,
    min_upvotes: int | None,
) -> tuple[list[int], bool]:
    """The candidates of a ``pool``-sized plan, best first, and whether they are partial
    matches."""
    plan = _Plan(raw, query, pool, since, min_upvotes)
    full = await plan.full_matches()
    if full:
        return rank_rows(query, list(full.values()), raw.dialect), False
    partial, matched = await plan.partial_matches()
    ranked = rank_rows(query, list(partial.values()), raw.dialect, matched)
    return ranked, bool(ranked)


__all__ = ["POOL_MIN", "SearchResult", "rank_rows", "search_page"]

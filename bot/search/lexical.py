"""The lexical index: papers in tantivy, queries compiled from the query language's AST.

tantivy (BM25, block-max WAND top-k, phrase queries, segment merging) holds one
document per paper, pre-analyzed by :mod:`bot.terms` (and so split on spaces here,
never analyzed again): ``all`` (title, keywords, AI summary and abstract, a ``|``
between them so that no phrase runs from one into the next), ``title`` and ``extra``
(keywords and AI summary) again for their boosts, ``authors``; its row id, upvotes and
date as fast fields. Queries
are built as tantivy query objects from :class:`bot.query.Query`, never as query text,
so user input cannot reach any syntax. The same analyzed terms are what keyword watches
match (:func:`bot.query.matches`): a paper is a *full match* here exactly when a watch
with the query fires on it.

The index is derived data: :mod:`bot.search.sync` fills it from the database's change
feed and may delete and rebuild it at any time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import tantivy
from tantivy import Occur, Query

from bot import query as q
from bot.models import Paper
from bot.search.ranking import (
    EXTRA_BOOST,
    MAX_PRIOR,
    TITLE_BOOST,
    Candidate,
    Hit,
    epoch_day,
    lexical_only,
)
from bot.terms import ANALYZER_VERSION

log = logging.getLogger(__name__)

# Bump when the documents or the schema change: an index of another version is rebuilt.
SCHEMA_VERSION = 2
VERSION = f"{SCHEMA_VERSION}.{ANALYZER_VERSION}"
TOKENIZER = "paperboy_terms"  # whitespace only: the text is bot.terms output already
TEXT_FIELDS = ("all", "title", "extra", "authors")
COLUMN_BREAK = " | "  # never a query term (bot.terms emits letters and digits only)
WRITER_HEAP_BYTES = 128_000_000
WRITER_THREADS = 2
POOL_MIN = 20  # candidates fetched for the first ranking pass (it grows as needed)


class IndexBusy(RuntimeError):
    """Another process holds this index's writer (a running bot keeps it up to date)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Conditions on papers that narrow a search without scoring: a Daily Papers date
    (else arXiv date) at or after ``since``, at least ``min_upvotes`` upvotes."""

    since: datetime | None = None
    min_upvotes: int | None = None


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for field in TEXT_FIELDS:
        builder.add_text_field(field, tokenizer_name=TOKENIZER)
    builder.add_integer_field("row", indexed=True, fast=True)
    builder.add_integer_field("upvotes", fast=True)
    builder.add_integer_field("when_us", fast=True)  # Daily Papers date, else arXiv date
    return builder.build()


def _microseconds(when: datetime) -> int:
    return math.floor(when.timestamp() * 1_000_000)


def document(row_id: int, paper: Paper) -> tantivy.Document:
    """The index document of a stored paper."""
    doc = tantivy.Document()
    columns = q.index_fields(paper)
    doc.add_text("all", COLUMN_BREAK.join(columns[c] for c in q.FIELD_COLUMNS[q.Field.ANY]))
    doc.add_text("title", columns["title"])
    doc.add_text("extra", COLUMN_BREAK.join((columns["keywords"], columns["summary"])))
    doc.add_text("authors", columns["authors"])
    doc.add_integer("row", row_id)
    doc.add_integer("upvotes", max(0, min(paper.upvotes or 0, 2**62)))
    when = paper.submitted_at or paper.published_at
    if when is not None:
        doc.add_integer("when_us", _microseconds(when))
    return doc


# --- queries ---------------------------------------------------------------------------


def _in_field(schema: tantivy.Schema, term: q.Term, field: str) -> Query:
    if term.is_phrase:
        return Query.phrase_query(schema, field, list(term.terms))
    return Query.term_query(schema, field, term.terms[0])


# Where a term of each field restriction is looked for: (index field, boost). The first
# decides whether a paper matches; the others only add to its score.
_FIELDS: dict[q.Field, tuple[tuple[str, float], ...]] = {
    q.Field.ANY: (("all", 1.0), ("title", TITLE_BOOST), ("extra", EXTRA_BOOST)),
    q.Field.TITLE: (("title", 1.0),),
    q.Field.AUTHOR: (("authors", 1.0),),
}


def _term(schema: tantivy.Schema, term: q.Term, *, scored: bool = True) -> Query:
    """``term`` where its field restriction looks (with the boosts, when ``scored``)."""
    fields = _FIELDS[term.field]
    if not scored or len(fields) == 1:
        return _in_field(schema, term, fields[0][0])
    return Query.boolean_query(
        [
            (Occur.Should, _in_field(schema, term, field))
            if boost == 1.0
            else (Occur.Should, Query.boost_query(_in_field(schema, term, field), boost))
            for field, boost in fields
        ]
    )


def _group(schema: tantivy.Schema, group: Sequence[q.Term]) -> Query:
    if len(group) == 1:
        return _term(schema, group[0])
    return Query.boolean_query([(Occur.Should, _term(schema, t)) for t in group])


def _filters(schema: tantivy.Schema, filters: Filters) -> list[tuple[Occur, Query]]:
    clauses = []
    if filters.since is not None:
        since = Query.range_query(
            schema, "when_us", tantivy.FieldType.Integer, _microseconds(filters.since), None
        )
        clauses.append((Occur.Must, Query.const_score_query(since, 0.0)))
    if filters.min_upvotes:
        votes = Query.range_query(
            schema, "upvotes", tantivy.FieldType.Integer, filters.min_upvotes, None
        )
        clauses.append((Occur.Must, Query.const_score_query(votes, 0.0)))
    return clauses


def ranking_query(schema: tantivy.Schema, query: q.Query, filters: Filters) -> Query:
    """Papers matching any group of ``query`` (and no excluded term), scored by BM25."""
    groups = [_group(schema, g) for g in query.groups]
    positive = (
        groups[0] if len(groups) == 1 else Query.boolean_query([(Occur.Should, g) for g in groups])
    )
    return _combine(schema, positive, query, filters)


def matching_query(schema: tantivy.Schema, query: q.Query, filters: Filters) -> Query:
    """Papers matching every group of ``query`` (and no excluded term): full matches."""
    groups = [_group(schema, g) for g in query.groups]
    positive = (
        groups[0] if len(groups) == 1 else Query.boolean_query([(Occur.Must, g) for g in groups])
    )
    return _combine(schema, positive, query, filters)


def _combine(schema: tantivy.Schema, positive: Query, query: q.Query, filters: Filters) -> Query:
    clauses = [(Occur.Must, positive), *_filters(schema, filters)]
    clauses += [(Occur.MustNot, _term(schema, t, scored=False)) for t in query.excluded]
    if len(clauses) == 1:
        return positive
    return Query.boolean_query(clauses)


# --- the index -------------------------------------------------------------------------


class LexicalIndex:
    """A tantivy index of papers at ``path`` (created if missing; in memory if None).

    Writing (:meth:`apply`, :meth:`commit`) takes the index's writer, which one process
    holds at a time (:class:`IndexBusy` otherwise); searching never waits for it. The
    methods block: call them from a worker thread.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.schema = build_schema()
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        else:
            self.index = tantivy.Index(self.schema)
        self.index.register_tokenizer(
            TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
        )
        self._writer: tantivy.IndexWriter | None = None
        self._searcher = self.index.searcher()

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether ``path`` holds a tantivy index (it may still be unreadable)."""
        return path.is_dir() and tantivy.Index.exists(str(path))

    # --- writing ---

    def _writer_or_busy(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self.index.writer(
                    heap_size=WRITER_HEAP_BYTES, num_threads=WRITER_THREADS
                )
            except ValueError as exc:
                if "LockBusy" in str(exc):
                    raise IndexBusy(f"the search index at {self.path} is being written") from exc
                raise
        return self._writer

    def apply(self, changes: Iterable[tuple[int, Paper | None]]) -> int:
        """Index ``(row id, paper)`` pairs (a paper stored or changed), or remove the row
        (paper None), in order. Visible to searches after :meth:`commit`."""
        writer = self._writer_or_busy()
        done = 0
        for row_id, paper in changes:
            writer.delete_documents_by_term("row", row_id)
            if paper is not None:
                writer.add_document(document(row_id, paper))
            done += 1
        return done

    def clear(self) -> None:
        """Remove every document (visible after :meth:`commit`)."""
        self._writer_or_busy().delete_all_documents()

    def commit(self) -> None:
        """Make everything applied so far durable and visible to searches."""
        if self._writer is None:
            return
        self._writer.commit()
        self.reload()

    def reload(self) -> None:
        """See the latest commit (also one made by another process)."""
        self.index.reload()
        self._searcher = self.index.searcher()

    def close(self) -> None:
        """Give the writer back (uncommitted changes are dropped)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.rollback()
            del writer

    # --- reading ---

    @property
    def size(self) -> int:
        """Papers in the index (as of the last commit or reload)."""
        return int(self._searcher.num_docs)

    def _candidates(self, query: Query, limit: int) -> list[Candidate]:
        searcher = self._searcher
        found = searcher.search(query, limit, count=False).hits
        if not found:
            return []
        addresses = [address for _, address in found]
        rows = searcher.fast_field_values("row", addresses)
        votes = searcher.fast_field_values("upvotes", addresses)
        when = searcher.fast_field_values("when_us", addresses)
        return [
            Candidate(int(row), float(score), None, int(v or 0), None if w is None else int(w))  # type: ignore[arg-type]
            for (score, _), row, v, w in zip(found, rows, votes, when, strict=True)
        ]

    def pool(self, query: q.Query, filters: Filters, *, size: int) -> list[Candidate]:
        """The ``size`` papers with the best lexical scores for ``query``, best first."""
        return self._candidates(ranking_query(self.schema, query, filters), size)

    def ranked(self, query: q.Query, filters: Filters, *, limit: int, today: datetime) -> list[Hit]:
        """The ``limit`` best papers for ``query`` by lexical score and prior
        (:mod:`bot.search.ranking`), best first.

        tantivy finds the best lexical scores with its top-k pruning; priors can raise a
        score by at most ``MAX_PRIOR``, so once the ``limit``-th final score beats the
        lowest lexical score fetched times ``MAX_PRIOR``, no paper left out could enter:
        otherwise the pool grows (x4) and the pass repeats."""
        if limit <= 0:
            return []
        compiled = ranking_query(self.schema, query, filters)
        reference = epoch_day(today) or 0
        size = max(POOL_MIN, 2 * limit)
        while True:
            found = self._candidates(compiled, size)
            hits = lexical_only(found, reference)
            if len(found) < size or len(hits) < limit:
                return hits[:limit]
            if hits[limit - 1].score > found[-1].lexical * MAX_PRIOR:
                return hits[:limit]
            size *= 4

    def admitted(
        self, row_ids: Sequence[int], query: q.Query, filters: Filters
    ) -> dict[int, Candidate]:
        """Those of ``row_ids`` that pass ``filters`` and contain no excluded term of
        ``query`` (their lexical score 0: they were not lexical candidates)."""
        if not row_ids:
            return {}
        among = Query.term_set_query(self.schema, "row", list(row_ids))
        clauses = [(Occur.Must, among), *_filters(self.schema, filters)]
        clauses += [(Occur.MustNot, _term(self.schema, t, scored=False)) for t in query.excluded]
        found = self._candidates(Query.boolean_query(clauses), len(row_ids))
        return {c.row_id: Candidate(c.row_id, 0.0, None, c.upvotes, c.when_us) for c in found}

    def full_matches(self, query: q.Query, filters: Filters, *, limit: int) -> list[int]:
        """Row ids of up to ``limit`` papers matching every group of ``query``."""
        if limit <= 0:
            return []
        found = self._candidates(matching_query(self.schema, query, filters), limit)
        return [c.row_id for c in found]

    def count_matching(self, query: q.Query, filters: Filters) -> int:
        """How many papers match every group of ``query`` (what a watch would fire on)."""
        result = self._searcher.search(matching_query(self.schema, query, filters), 1, count=True)
        return int(result.count or 0)  # type: ignore[attr-defined]  # not in tantivy's stub


__all__ = [
    "TEXT_FIELDS",
    "VERSION",
    "Filters",
    "IndexBusy",
    "LexicalIndex",
    "document",
    "matching_query",
    "ranking_query",
]

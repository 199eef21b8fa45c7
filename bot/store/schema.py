"""The tables of the store, as SQLAlchemy Core metadata.

The migrations under ``migrations/versions`` are the truth for the database schema; this
module mirrors them for queries. The full-text index is dialect-specific and lives in
:mod:`bot.store.fulltext`: an FTS5 table ``papers_fts`` on SQLite, the ``search``
tsvector column (GIN) on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

papers = Table(
    "papers",
    metadata,
    # Surrogate key in insertion order: it is the FTS5 rowid, and "newest first" for the
    # early-terminating search plan.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", Text, nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", JSON, nullable=False),  # list of names
    Column("published_at", DateTime(timezone=True)),
    Column("submitted_at", DateTime(timezone=True)),
    Column("upvotes", BigInteger),
    Column("comments", BigInteger),
    Column("ai_summary", Text),
    Column("ai_keywords", JSON, nullable=False),  # list of strings
    Column("github_repo", Text),
    Column("github_stars", BigInteger),
    Column("project_page", Text),
    Column("thumbnail", Text),
    Column("organization", Text),
    Column("sources", JSON, nullable=False),  # list of source names, unioned on upsert
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

PAPER_COLUMNS = tuple(c.name for c in papers.columns)

__all__ = ["PAPER_COLUMNS", "meta", "metadata", "papers"]

"""The tables of the store, as SQLAlchemy Core metadata.

The migrations under ``migrations/versions`` are the truth for the database schema; this
module mirrors them for queries. Search indexes are derived from these tables outside the
database (:mod:`bot.search`), following ``revision`` (migration 0009).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

papers = Table(
    "papers",
    metadata,
    # Surrogate key in insertion order: what the search indexes call a paper.
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
    # When its content last changed, from the counter the derived indexes follow.
    Column("revision", BigInteger, nullable=False, default=0),
)

paper_deletions = Table(
    "paper_deletions",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("row_id", BigInteger, nullable=False),
    Column("paper_id", Text, nullable=False),
)

paper_vectors = Table(
    "paper_vectors",
    metadata,
    Column(
        "row_id",
        Integer,
        ForeignKey("papers.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("model", Text, nullable=False),
    Column("vectors", LargeBinary, nullable=False),  # float16, one row per chunk
    Column("revision", BigInteger, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

PAPER_COLUMNS = tuple(c.name for c in papers.columns)

__all__ = ["PAPER_COLUMNS", "meta", "metadata", "paper_deletions", "paper_vectors", "papers"]

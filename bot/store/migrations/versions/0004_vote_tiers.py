"""SQLite full-text tables get a `votes` column (upvote tiers), for min-upvotes searches

The column holds one token per tier of `bot.store.fulltext.VOTE_TIERS` the paper's
upvotes reach ("1 2 3 5 10" for 12 upvotes), so a `min_upvotes` search intersects
doclists inside FTS5 instead of walking matches until enough pass the filter (with 5%
of papers at 10+ upvotes, that walk was 20x longer). Contentless FTS5 tables cannot
gain a column: they are recreated, and the store re-indexes on the next start (the
analyzer version marker is dropped). PostgreSQL is unchanged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = {
    "papers_fts": "title, keywords, abstract, authors",
    "papers_head_fts": "title, keywords",
}


def _recreate(extra: str) -> None:
    for table, columns in _TABLES.items():
        op.execute(f"DROP TABLE IF EXISTS {table}")
        op.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({columns}{extra}, "
            "content='', columnsize=0, detail=full, tokenize='ascii')"
        )
        op.execute(f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', 33554432)")
    # ensure_analyzer_version() rebuilds the index from the papers table on start.
    op.execute("DELETE FROM meta WHERE key = 'analyzer_version'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate(", votes")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate("")

"""papers, the full-text index and the meta table

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("paper_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False, server_default=""),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("upvotes", sa.BigInteger),
        sa.Column("comments", sa.BigInteger),
        sa.Column("ai_summary", sa.Text),
        sa.Column("ai_keywords", sa.JSON, nullable=False),
        sa.Column("github_repo", sa.Text),
        sa.Column("github_stars", sa.BigInteger),
        sa.Column("project_page", sa.Text),
        sa.Column("thumbnail", sa.Text),
        sa.Column("organization", sa.Text),
        sa.Column("sources", sa.JSON, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("paper_id", name="uq_papers_paper_id"),
    )
    # "top" and "today" ask for papers by the day they reached Daily Papers.
    op.execute("CREATE INDEX ix_papers_day ON papers (coalesce(submitted_at, published_at))")
    # Keyword watches look at the papers first seen since their last run.
    op.create_index("ix_papers_first_seen_at", "papers", ["first_seen_at"])
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("papers", sa.Column("search", sa.dialects.postgresql.TSVECTOR))
        op.execute("CREATE INDEX ix_papers_search ON papers USING gin (search)")
        # Title and keywords on their own (see papers_head_fts below): besides being
        # smaller, its statistics let the planner see that "all words in the title" is
        # rare, where estimates on `search` ignore weights and pick a full backward scan.
        op.add_column("papers", sa.Column("search_head", sa.dialects.postgresql.TSVECTOR))
        op.execute("CREATE INDEX ix_papers_search_head ON papers USING gin (search_head)")
        # A rare word must look rare to the planner, or `ORDER BY id DESC LIMIT n` walks
        # the whole table backwards: track 10x more lexemes than the default.
        op.execute("ALTER TABLE papers ALTER COLUMN search SET STATISTICS 1000")
        op.execute("ALTER TABLE papers ALTER COLUMN search_head SET STATISTICS 1000")
    else:
        # Contentless (the papers table holds the text), ascii tokenizer: the index is fed
        # bot.terms output, which is already split, folded and stemmed. columnsize=0: we
        # never use bm25, so per-row sizes would only cost space and import time.
        op.execute(
            "CREATE VIRTUAL TABLE papers_fts USING fts5("
            "title, keywords, abstract, authors, "
            "content='', columnsize=0, detail=full, tokenize='ascii')"
        )
        # Title and keywords again, on their own: the "every word in the title" tiers of
        # the search plan scan these short documents instead of whole abstracts.
        op.execute(
            "CREATE VIRTUAL TABLE papers_head_fts USING fts5("
            "title, keywords, content='', columnsize=0, detail=full, tokenize='ascii')"
        )
        for table in ("papers_fts", "papers_head_fts"):
            # Buffer up to 32 MiB of pending postings per transaction before writing a
            # segment (the 1 MiB default makes bulk imports write and merge many more).
            op.execute(f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', 33554432)")
    # The analyzer version the index was built with; written by the store on first use.


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_papers_search_head", "papers")
        op.drop_index("ix_papers_search", "papers")
    else:
        op.execute("DROP TABLE IF EXISTS papers_head_fts")
        op.execute("DROP TABLE IF EXISTS papers_fts")
    op.drop_table("meta")
    op.execute("DROP INDEX IF EXISTS ix_papers_day")
    op.drop_index("ix_papers_first_seen_at", "papers")
    op.drop_table("papers")

"""search moves out of the database: a change feed for the derived indexes, and vectors

The full-text indexes (SQLite FTS5 tables, PostgreSQL tsvector columns and their GIN
indexes, the day floors that bounded their walks) give way to a search index derived
from the papers table (bot/search), which follows it through a change feed:

- ``papers.revision``: stamped from one counter on every insert and every change of
  content (not on a mere re-sighting), so "revision > n" is what changed since n;
- ``paper_deletions``: a trigger records every deleted paper with the next revision;
- ``paper_vectors``: each paper's embeddings (float16, one row per paper and model),
  stamped from the same counter, dropped with the paper;
- ``meta.database_id``: a random id, so an index folder built from another database is
  recognised and rebuilt rather than trusted.

On PostgreSQL the counter is the sequence ``paper_revisions``; writers take the papers'
transaction lock before drawing from it, so revisions become visible in order. On
SQLite writers are serialised by ``BEGIN IMMEDIATE`` and draw ``max + 1``.

SQLite files keep the pages the old index used until ``VACUUM`` (README, Upgrade).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The advisory lock every writer of papers takes (bot/store/writer.py: PAPERS_LOCK).
PAPERS_LOCK = 7205550211

SQLITE_NEXT_REVISION = (
    "1 + max((SELECT coalesce(max(revision), 0) FROM papers), "
    "(SELECT coalesce(max(revision), 0) FROM paper_deletions), "
    "(SELECT coalesce(max(revision), 0) FROM paper_vectors))"
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP INDEX IF EXISTS ix_papers_search_title")
        op.drop_column("papers", "search_head")
        op.drop_column("papers", "search")
    else:
        op.execute("DROP TABLE IF EXISTS papers_head_fts")
        op.execute("DROP TABLE IF EXISTS papers_fts")
    op.drop_table("paper_day_floors")
    op.execute("DELETE FROM meta WHERE key = 'analyzer_version'")

    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE papers SET revision = id")
    op.create_index("ix_papers_revision", "papers", ["revision"])
    op.create_table(
        "paper_deletions",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("row_id", sa.BigInteger, nullable=False),
        sa.Column("paper_id", sa.Text, nullable=False),
    )
    op.create_table(
        "paper_vectors",
        sa.Column(
            "row_id",
            sa.Integer,
            sa.ForeignKey("papers.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("vectors", sa.LargeBinary, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_paper_vectors_revision", "paper_vectors", ["revision"])

    if postgresql:
        op.execute("CREATE SEQUENCE paper_revisions")
        op.execute(
            "SELECT setval('paper_revisions', (SELECT coalesce(max(id), 0) + 1 FROM papers), false)"
        )
        op.execute(
            f"""
            CREATE FUNCTION paper_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({PAPERS_LOCK});
                INSERT INTO paper_deletions (revision, row_id, paper_id)
                VALUES (nextval('paper_revisions'), OLD.id, OLD.paper_id);
                RETURN OLD;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER papers_deleted AFTER DELETE ON papers "
            "FOR EACH ROW EXECUTE FUNCTION paper_deleted()"
        )
    else:
        op.execute(
            "CREATE TRIGGER papers_deleted AFTER DELETE ON papers BEGIN "
            "INSERT INTO paper_deletions (revision, row_id, paper_id) "
            f"VALUES ({SQLITE_NEXT_REVISION}, old.id, old.paper_id); END"
        )
    meta = sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text))
    op.bulk_insert(meta, [{"key": "database_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    raise NotImplementedError(
        "0009 dropped the in-database full-text index, which the releases before it need: "
        "restore the backup taken before upgrading instead of downgrading"
    )

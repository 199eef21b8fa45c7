"""SQLite: the smallest paper row id per day, so `since` searches stop early

Row ids follow arrival order, and FTS5 walks doclists newest first: with a lower bound
on the row ids of papers dated on or after `since`, a search with a date filter stops at
that bound instead of walking (and filtering out) every older match. `paper_day_floors`
keeps, per day (`coalesce(submitted_at, published_at)`, UTC), a row id no larger than
that of any paper of that day: maintained by the store on insert and on date changes
(it may only get smaller, so it stays a valid bound).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "paper_day_floors",
        sa.Column("day", sa.Text, primary_key=True),  # YYYY-MM-DD
        sa.Column("min_id", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO paper_day_floors (day, min_id) "
        "SELECT substr(coalesce(submitted_at, published_at), 1, 10), min(id) FROM papers "
        "WHERE coalesce(submitted_at, published_at) IS NOT NULL GROUP BY 1"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_table("paper_day_floors")

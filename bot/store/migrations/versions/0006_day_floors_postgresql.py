"""PostgreSQL: the smallest paper row id per day too, so `since` searches walk less

Migration 0005 gave SQLite `paper_day_floors`; PostgreSQL benefits the same way. Without
a bound on row ids, PostgreSQL answered a `since` search by reading every paper of the
window through the date index and re-checking each one's tsvector (p50 ~230 ms for 30
days of a 200,000-paper store); with `id >= floor` it intersects the pkey range with the
full-text index in a bitmap (a 2-word AND over the same window: 64 -> 20 ms, the title
tiers 2 ms). Same table and maintenance as on SQLite (`bot.store.writer`); days are UTC.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "paper_day_floors",
        sa.Column("day", sa.Text, primary_key=True),  # YYYY-MM-DD, UTC
        sa.Column("min_id", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO paper_day_floors (day, min_id) "
        "SELECT to_char(coalesce(submitted_at, published_at) AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD'), min(id) FROM papers "
        "WHERE coalesce(submitted_at, published_at) IS NOT NULL GROUP BY 1"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("paper_day_floors")

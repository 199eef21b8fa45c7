"""keyword watches, and digests that include arXiv

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column(
            "destination_id",
            sa.Integer,
            sa.ForeignKey("destinations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_watches_owner", "watches", ["platform", "workspace", "owner"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("include_arxiv", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index("ix_watches_destination", "watches", ["destination_id"])


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("include_arxiv")
    op.drop_index("ix_watches_destination", "watches")
    op.drop_index("ix_watches_owner", "watches")
    op.drop_table("watches")

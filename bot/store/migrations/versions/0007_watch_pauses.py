"""watches pause like subscriptions when their destination refuses the bot

A DM the user closed, a channel archived or left: alerts there fail for good, so the
watches alerting there stop (with the reason) until someone adds the same watch again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("paused_reason", sa.Text))
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("paused_at")
        batch.drop_column("paused_reason")

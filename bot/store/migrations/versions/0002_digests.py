"""destinations, subscriptions, digest runs, and the delivery outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("is_dm", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint(
            "platform", "workspace", "channel", "is_dm", name="uq_destinations_address"
        ),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "destination_id",
            sa.Integer,
            sa.ForeignKey("destinations.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("days", sa.Text, nullable=False),
        sa.Column("top", sa.Integer, nullable=False),
        sa.Column("min_upvotes", sa.Integer, nullable=False),
        sa.Column("topic", sa.Text),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("post_empty", sa.Boolean, nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_slot", TS),
        sa.Column("paused_reason", sa.Text),
        sa.Column("paused_at", TS),
    )
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("slot", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("paper_count", sa.Integer, nullable=False),
        sa.UniqueConstraint("subscription_id", "slot", name="uq_digest_runs_slot"),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text, nullable=False, unique=True),
        sa.Column(
            "destination_id",
            sa.Integer,
            sa.ForeignKey("destinations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("paper_ids", sa.JSON, nullable=False),
        sa.Column("heading", sa.JSON, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("needs_reconcile", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_at", TS),
        sa.Column("message_ids", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index("ix_posts_due", "posts", ["status", "next_attempt_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "destination_id",
            sa.Integer,
            sa.ForeignKey("destinations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("paper_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("destination_id", "paper_id", "kind", name="uq_deliveries_once"),
    )
    op.create_index("ix_deliveries_post", "deliveries", ["post_id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_index("ix_posts_due", "posts")
    op.drop_table("posts")
    op.drop_table("digest_runs")
    op.drop_table("subscriptions")
    op.drop_table("destinations")

"""Tables of digests and delivery: destinations, subscriptions, digest runs, the outbox.

Mirrors migration ``0002``. The ``deliveries`` ledger is what makes "a paper reaches a
channel once per kind" hold whatever crashes: it is unique on (destination, paper, kind)
and written in the same transaction as the post that carries the paper.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from bot.store.schema import metadata

destinations = Table(
    "destinations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", Text, nullable=False),
    Column("workspace", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("is_dm", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("platform", "workspace", "channel", "is_dm", name="uq_destinations_address"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "destination_id",
        Integer,
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("at", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("days", Text, nullable=False),
    Column("top", Integer, nullable=False),
    Column("min_upvotes", Integer, nullable=False),
    Column("topic", Text),
    Column("format", Text, nullable=False),
    Column("post_empty", Boolean, nullable=False),
    Column("include_arxiv", Boolean, nullable=False, server_default=false()),
    Column("origin", Text, nullable=False),
    Column("created_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_slot", DateTime(timezone=True)),  # the previous digest's scheduled time
    Column("paused_reason", Text),
    Column("paused_at", DateTime(timezone=True)),
)

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("slot", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paper_count", Integer, nullable=False),
    UniqueConstraint("subscription_id", "slot", name="uq_digest_runs_slot"),
)

# One row per message to post (a digest, an alert). States:
# pending -> sending -> sent | failed | unknown; unknown and expired sending are
# reconciled with the platform before any retry.
PENDING, SENDING, SENT, FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"
posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column(
        "destination_id",
        Integer,
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", Text, nullable=False),  # digest | alert
    Column("paper_ids", JSON, nullable=False),  # in display order
    Column("heading", JSON, nullable=False),  # what the reply needs besides papers
    Column("status", Text, nullable=False),
    Column("needs_reconcile", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_by", Text),
    Column("claimed_at", DateTime(timezone=True)),
    Column("message_ids", JSON),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_posts_due", "status", "next_attempt_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "destination_id",
        Integer,
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("paper_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("destination_id", "paper_id", "kind", name="uq_deliveries_once"),
    Index("ix_deliveries_post", "post_id"),
)


watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", Text, nullable=False),
    Column("workspace", Text, nullable=False),
    Column("owner", Text, nullable=False),  # the user who set it up
    Column(
        "destination_id",
        Integer,
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("query", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paused_reason", Text),  # set when its destination refused an alert
    Column("paused_at", DateTime(timezone=True)),
    Index("ix_watches_owner", "platform", "workspace", "owner"),
    Index("ix_watches_destination", "destination_id"),
)

__all__ = ["deliveries", "destinations", "digest_runs", "posts", "subscriptions", "watches"]

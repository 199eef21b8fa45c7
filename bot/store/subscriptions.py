"""Destinations and their digest subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Destination, DigestDays, DigestFormat, Subscription, utcnow
from bot.store.database import Database
from bot.store.delivery_schema import (
    FAILED,
    PENDING,
    UNKNOWN,
    deliveries,
    destinations,
    posts,
    subscriptions,
)


def aware(value: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def destination_id(conn: AsyncConnection, dest: Destination) -> int:
    """The id of ``dest``, created on first use (safe under concurrent callers)."""
    where = and_(
        destinations.c.platform == dest.platform,
        destinations.c.workspace == dest.workspace,
        destinations.c.channel == dest.channel,
        destinations.c.is_dm == dest.is_dm,
    )
    found = (await conn.execute(select(destinations.c.id).where(where))).scalar()
    if found is not None:
        return int(found)
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(destinations).values(
                    platform=dest.platform,
                    workspace=dest.workspace,
                    channel=dest.channel,
                    is_dm=dest.is_dm,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        pass  # another writer created it first
    return int((await conn.execute(select(destinations.c.id).where(where))).scalar_one())


_JOINED = select(subscriptions, destinations).join(
    destinations, destinations.c.id == subscriptions.c.destination_id
)


def _subscription(row: Any) -> Subscription:
    m = row._mapping
    return Subscription(
        destination=Destination(
            platform=m["platform"], workspace=m["workspace"], channel=m["channel"], is_dm=m["is_dm"]
        ),
        at=m["at"],
        timezone=m["timezone"],
        days=DigestDays(m["days"]),
        top=m["top"],
        min_upvotes=m["min_upvotes"],
        topic=m["topic"],
        format=DigestFormat(m["format"]),
        post_empty=m["post_empty"],
        include_arxiv=m["include_arxiv"],
        id=m[subscriptions.c.id],
        created_by=m["created_by"],
        paused_reason=m["paused_reason"],
        origin=m["origin"],
        last_slot=aware(m["last_slot"]),
        created_at=aware(m[subscriptions.c.created_at]),
    )


class SubscriptionStore:
    """Reads and writes subscriptions; one per destination."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def save(self, sub: Subscription) -> Subscription:
        """Create or replace the subscription of ``sub.destination`` (un-pausing it)."""
        now = self.clock()
        values = {
            "at": sub.at,
            "timezone": sub.timezone,
            "days": sub.days.value,
            "top": sub.top,
            "min_upvotes": sub.min_upvotes,
            "topic": sub.topic,
            "format": sub.format.value,
            "post_empty": sub.post_empty,
            "include_arxiv": sub.include_arxiv,
            "origin": sub.origin,
            "updated_at": now,
            "paused_reason": None,
            "paused_at": None,
        }
        upsert_into = postgresql_insert if self.db.dialect == "postgresql" else sqlite_insert
        async with self.db.write() as conn:
            dest_id = await destination_id(conn, sub.destination)
            # One statement: two replicas (or two commands) saving the same channel at
            # once must not both find no row and both insert one.
            await conn.execute(
                upsert_into(subscriptions)
                .values(destination_id=dest_id, created_by=sub.created_by, created_at=now, **values)
                .on_conflict_do_update(index_elements=["destination_id"], set_=values)
            )
        saved = await self.get(sub.destination)
        assert saved is not None
        return saved

    async def get(self, dest: Destination) -> Subscription | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    _JOINED.where(
                        destinations.c.platform == dest.platform,
                        destinations.c.workspace == dest.workspace,
                        destinations.c.channel == dest.channel,
                        destinations.c.is_dm == dest.is_dm,
                    )
                )
            ).first()
        return _subscription(row) if row else None

    async def get_by_id(self, sub_id: int) -> Subscription | None:
        async with self.db.read() as conn:
            row = (await conn.execute(_JOINED.where(subscriptions.c.id == sub_id))).first()
        return _subscription(row) if row else None

    async def all(self, *, include_paused: bool = True) -> list[Subscription]:
        query = _JOINED.order_by(subscriptions.c.id)
        if not include_paused:
            query = query.where(subscriptions.c.paused_reason.is_(None))
        async with self.db.read() as conn:
            return [_subscription(r) for r in await conn.execute(query)]

    async def delete(self, dest: Destination) -> bool:
        """Remove ``dest``'s subscription, and its digests still waiting to be posted
        (a retry after a rate limit, say): they fail as "unsubscribed", and their papers
        leave the ledger. A digest being posted right now still finishes."""
        sub = await self.get(dest)
        if sub is None:
            return False
        async with self.db.write() as conn:
            await conn.execute(delete(subscriptions).where(subscriptions.c.id == sub.id))
            dest_id = await destination_id(conn, dest)
            waiting = select(posts.c.id).where(
                posts.c.destination_id == dest_id,
                posts.c.kind == "digest",
                posts.c.status.in_((PENDING, UNKNOWN)),
            )
            ids = [row[0] for row in await conn.execute(waiting)]
            if ids:
                await conn.execute(delete(deliveries).where(deliveries.c.post_id.in_(ids)))
                await conn.execute(
                    update(posts)
                    .where(posts.c.id.in_(ids))
                    .values(status=FAILED, error="unsubscribed before it was posted")
                )
        return True

    async def pause(self, dest: Destination, reason: str) -> bool:
        """Stop digests to ``dest`` (it is gone or forbids the bot) and remember why."""
        async with self.db.write() as conn:
            dest_id = await destination_id(conn, dest)
            result = await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.destination_id == dest_id)
                .values(paused_reason=reason, paused_at=utcnow())
            )
        return result.rowcount > 0

    async def sync_config(self, wanted: list[Subscription]) -> None:
        """Make the ``origin="config"`` subscriptions exactly ``wanted`` (PAPERBOY_DIGESTS)."""
        keep = {s.destination for s in wanted}
        for existing in await self.all():
            if existing.origin == "config" and existing.destination not in keep:
                await self.delete(existing.destination)
        for sub in wanted:
            current = await self.get(sub.destination)
            if current is None or current.origin == "config":
                sub.origin = "config"
                await self.save(sub)

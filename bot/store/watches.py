"""Keyword watches: who wants to hear about which query, and where."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update

from bot.models import Destination, Watch, utcnow
from bot.store.database import Database
from bot.store.delivery_schema import destinations, watches
from bot.store.subscriptions import aware, destination_id

_JOINED = select(watches, destinations.c.channel, destinations.c.is_dm).join(
    destinations, destinations.c.id == watches.c.destination_id
)


def _watch(row: object) -> Watch:
    m = row._mapping  # type: ignore[attr-defined]
    return Watch(
        owner=m["owner"],
        destination=Destination(m["platform"], m["workspace"], m["channel"], m["is_dm"]),
        query=m["query"],
        id=m["id"],
        created_at=aware(m["created_at"]),
        paused_reason=m["paused_reason"],
    )


class WatchStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def add(self, watch: Watch) -> Watch:
        now = self.clock()
        async with self.db.write() as conn:
            dest_id = await destination_id(conn, watch.destination)
            result = await conn.execute(
                insert(watches)
                .values(
                    platform=watch.destination.platform,
                    workspace=watch.destination.workspace,
                    owner=watch.owner,
                    destination_id=dest_id,
                    query=watch.query,
                    created_at=now,
                )
                .returning(watches.c.id)
            )
            watch_id = int(result.scalar_one())
        return Watch(watch.owner, watch.destination, watch.query, id=watch_id, created_at=now)

    async def all(self) -> list[Watch]:
        async with self.db.read() as conn:
            return [_watch(r) for r in await conn.execute(_JOINED.order_by(watches.c.id))]

    async def version(self) -> tuple[int, int]:
        """Changes whenever a watch is added or removed, by any replica: watches are only
        ever inserted (with a new, larger id) or deleted, never edited."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(func.count(), func.coalesce(func.sum(watches.c.id), 0)))
            ).one()
        return int(row[0]), int(row[1])

    async def visible_to(self, owner: str, channel: Destination) -> list[Watch]:
        """The user's own watches (any destination in the workspace) and the channel's."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                _JOINED.where(
                    watches.c.platform == channel.platform,
                    watches.c.workspace == channel.workspace,
                    or_(
                        watches.c.owner == owner,
                        (destinations.c.channel == channel.channel)
                        & (destinations.c.is_dm == channel.is_dm),
                    ),
                ).order_by(watches.c.id)
            )
            return [_watch(r) for r in rows]

    async def count_for_owner(self, platform: str, workspace: str, owner: str) -> int:
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            watches.c.platform == platform,
                            watches.c.workspace == workspace,
                            watches.c.owner == owner,
                        )
                    )
                ).scalar_one()
            )

    async def count_for_destination(self, dest: Destination) -> int:
        async with self.db.read() as conn:
            dest_id = await destination_id(conn, dest)
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(watches.c.destination_id == dest_id)
                    )
                ).scalar_one()
            )

    async def pause(self, dest: Destination, reason: str) -> int:
        """Stop the watches alerting ``dest`` (it refuses the bot); returns how many."""
        async with self.db.write() as conn:
            dest_id = await destination_id(conn, dest)
            result = await conn.execute(
                update(watches)
                .where(watches.c.destination_id == dest_id, watches.c.paused_reason.is_(None))
                .values(paused_reason=reason, paused_at=self.clock())
            )
        return result.rowcount

    async def resume(self, watch_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(watches)
                .where(watches.c.id == watch_id)
                .values(paused_reason=None, paused_at=None)
            )
        return result.rowcount > 0

    async def paused_ids(self) -> set[int]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(watches.c.id).where(watches.c.paused_reason.is_not(None))
            )
            return {row[0] for row in rows}

    async def delete(self, watch_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(delete(watches).where(watches.c.id == watch_id))
        return result.rowcount > 0

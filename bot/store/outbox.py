"""The delivery outbox: planned posts, the once-per-channel ledger, claims and outcomes.

A digest or alert is written here first (post + ledger rows, one transaction), then a
relay claims it, posts it and records the outcome. A claim whose outcome is unknown (a
timeout, or a worker that died while sending) is marked ``needs_reconcile``: the relay
asks the platform whether the message exists before it ever posts again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import Destination, utcnow
from bot.store.database import Database
from bot.store.delivery_schema import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    UNKNOWN,
    deliveries,
    destinations,
    digest_runs,
    posts,
    subscriptions,
)
from bot.store.driver import RawConnection
from bot.store.records import sqlite_datetime
from bot.store.subscriptions import aware, destination_id


@dataclass(frozen=True, slots=True)
class ClaimedPost:
    """A post this worker now owns until it records an outcome (or its lease expires)."""

    id: int
    key: str
    kind: str
    destination: Destination
    paper_ids: list[str]
    heading: dict[str, Any]
    attempts: int
    needs_reconcile: bool


@dataclass(frozen=True, slots=True)
class PlannedPost:
    id: int
    key: str
    paper_ids: list[str]


async def _not_had(conn: Any, dest_id: int, kind: str, candidates: Sequence[str]) -> list[str]:
    """``candidates`` (in order, once each) minus those the ledger says ``dest_id`` had."""
    had = set(
        (
            await conn.execute(
                select(deliveries.c.paper_id).where(
                    deliveries.c.destination_id == dest_id,
                    deliveries.c.kind == kind,
                    deliveries.c.paper_id.in_(list(candidates)),
                )
            )
        ).scalars()
    )
    return [p for p in dict.fromkeys(candidates) if p not in had]


@dataclass(slots=True)
class Outcome:
    """One recorded result waiting for the next group commit."""

    post_id: int
    worker: str
    values: dict[str, Any]  # column -> new value
    release_papers: bool
    give_back: bool  # the attempt did not count (attempts - 1)
    done: asyncio.Future[bool]


# Claims and outcomes run on the driver connection with hand-written SQL: a fan-out
# claims and records a thousand posts within a second, and SQLAlchemy's per-row work
# (compiling IN lists, converting every column of every row) cost more than the database.
_CLAIM_SELECT = (
    "SELECT p.id, p.key, p.kind, p.paper_ids, p.heading, p.attempts, p.needs_reconcile, "
    "p.status, d.platform, d.workspace, d.channel, d.is_dm "
    "FROM posts p JOIN destinations d ON d.id = p.destination_id "
    f"WHERE (p.status IN ('{PENDING}', '{UNKNOWN}') AND p.next_attempt_at <= ?) "
    f"OR (p.status = '{SENDING}' AND p.claimed_at < ?) "
    "ORDER BY p.id LIMIT ?"
)
# A post claimed again after a lost claim or an unknown outcome must be reconciled first.
# This and the next two end with a column: RawConnection.among() completes them.
_CLAIM_UPDATE = (
    f"UPDATE posts SET status = '{SENDING}', claimed_by = ?, claimed_at = ?, "
    "attempts = attempts + 1, needs_reconcile = CASE "
    f"WHEN status IN ('{SENDING}', '{UNKNOWN}') THEN TRUE ELSE needs_reconcile END "
    "WHERE id"
)
_OWNERS = f"SELECT id, claimed_by FROM posts WHERE status = '{SENDING}' AND id"
_RELEASE_PAPERS = "DELETE FROM deliveries WHERE post_id"
_JSON_COLUMNS = frozenset({"message_ids"})


def _json(value: Any) -> Any:
    """A JSON column as read by the driver (text on SQLite, and on PostgreSQL as
    SQLAlchemy's asyncpg dialect leaves it) decoded."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _param(raw: RawConnection, value: Any) -> Any:
    """``value`` as the driver takes it: SQLite holds times as SQLAlchemy writes them."""
    if isinstance(value, datetime) and raw.dialect == "sqlite":
        return sqlite_datetime(value)
    return value


def _column_value(raw: RawConnection, column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and value is not None:
        return orjson.dumps(value).decode()
    return _param(raw, value)


async def _write_outcomes(conn: Any, batch: list[Outcome]) -> list[bool]:
    """Apply a batch of outcomes in the caller's transaction; each only if its worker still
    owns the claim (the row is ``sending`` and ``claimed_by`` it). Answers, per outcome,
    whether it was applied.

    One ownership query (rows locked on PostgreSQL) and one executemany UPDATE per shape
    of values, instead of a statement per post: a fan-out records a thousand at once.
    """
    raw = await RawConnection.of(conn)
    among, ids = raw.among(sorted({outcome.post_id for outcome in batch}))
    owners = _OWNERS + among + " ORDER BY id"
    if raw.dialect == "postgresql":
        owners += " FOR UPDATE"
    owner = {int(i): str(w) for i, w in await raw.fetch(owners, [ids])}
    applied: list[bool] = []
    shapes: dict[tuple[tuple[str, ...], bool], list[list[Any]]] = defaultdict(list)
    released: list[int] = []
    for outcome in batch:
        mine = owner.get(outcome.post_id) == outcome.worker
        applied.append(mine)
        if not mine:
            continue
        owner.pop(outcome.post_id)  # a second outcome for the same claim finds it taken
        columns = tuple(sorted(outcome.values))
        shapes[(columns, outcome.give_back)].append(
            [_column_value(raw, c, outcome.values[c]) for c in columns]
            + [outcome.post_id, outcome.worker]
        )
        if outcome.release_papers:
            released.append(outcome.post_id)
    for (columns, give_back), rows in shapes.items():
        assignments = [f"{c} = ?" for c in columns]
        if give_back:
            assignments.append("attempts = attempts - 1")
        await raw.executemany(
            f"UPDATE posts SET {', '.join(assignments)} "
            f"WHERE id = ? AND claimed_by = ? AND status = '{SENDING}'",
            rows,
        )
    if released:
        among, ids = raw.among(released)
        await raw.execute(_RELEASE_PAPERS + among, [ids])
    return applied


class Outbox:
    """Persistence of the delivery pipeline."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._outcomes: list[Outcome] = []
        self._flusher: asyncio.Task[None] | None = None

    async def plan_digest(
        self,
        *,
        subscription_id: int,
        destination: Destination,
        slot: datetime,
        candidates: Sequence[str],
        top: int,
        heading: dict[str, Any],
        post_empty: bool,
    ) -> PlannedPost | None:
        """Record the digest run of ``slot`` and its post, in one transaction.

        Takes the first ``top`` of ``candidates`` (ranked paper ids) the destination has
        not had as a digest. Returns ``None`` when this slot already ran (another replica,
        a restart) or when there is nothing to post.
        """
        # In UTC: SQLite's DateTime keeps the wall time and drops the zone, so a slot in
        # the subscription's zone read back as that wall time in UTC.
        slot = slot.astimezone(UTC)
        now = self.clock()
        async with self.db.write() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(digest_runs).values(
                            subscription_id=subscription_id,
                            slot=slot,
                            created_at=now,
                            paper_count=0,
                        )
                    )
            except IntegrityError:
                return None
            dest_id = await destination_id(conn, destination)
            picked = (await _not_had(conn, dest_id, "digest", candidates))[:top]
            await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == subscription_id)
                .values(last_slot=slot)
            )
            await conn.execute(
                update(digest_runs)
                .where(digest_runs.c.subscription_id == subscription_id, digest_runs.c.slot == slot)
                .values(paper_count=len(picked))
            )
            if not picked and not post_empty:
                return None
            key = f"digest:{subscription_id}:{slot.strftime('%Y%m%dT%H%M%SZ')}"
            post_id = await self._insert_post(conn, key, dest_id, "digest", picked, heading, now)
            return PlannedPost(post_id, key, picked)

    async def alerted(self, paper_ids: Sequence[str]) -> set[tuple[Destination, str]]:
        """(destination, paper id) for each of ``paper_ids`` already alerted somewhere: one
        read, so a poll need not open a write transaction per watch to learn that its
        matches were all sent before."""
        if not paper_ids:
            return set()
        query = (
            select(
                destinations.c.platform,
                destinations.c.workspace,
                destinations.c.channel,
                destinations.c.is_dm,
                deliveries.c.paper_id,
            )
            .join(destinations, destinations.c.id == deliveries.c.destination_id)
            .where(deliveries.c.kind == "alert", deliveries.c.paper_id.in_(list(paper_ids)))
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return {
                (Destination(platform, workspace, channel, bool(is_dm)), paper_id)
                for platform, workspace, channel, is_dm, paper_id in rows
            }

    async def plan_alert(
        self,
        *,
        key: str,
        destination: Destination,
        candidates: Sequence[str],
        heading: dict[str, Any],
    ) -> PlannedPost | None:
        """One alert post with the candidates the destination has not been alerted to."""
        now = self.clock()
        async with self.db.write() as conn:
            if (await conn.execute(select(posts.c.id).where(posts.c.key == key))).first():
                return None
            dest_id = await destination_id(conn, destination)
            picked = await _not_had(conn, dest_id, "alert", candidates)
            if not picked:
                return None
            post_id = await self._insert_post(conn, key, dest_id, "alert", picked, heading, now)
            return PlannedPost(post_id, key, picked)

    async def _insert_post(
        self,
        conn: Any,
        key: str,
        dest_id: int,
        kind: str,
        paper_ids: list[str],
        heading: dict[str, Any],
        now: datetime,
    ) -> int:
        result = await conn.execute(
            insert(posts)
            .values(
                key=key,
                destination_id=dest_id,
                kind=kind,
                paper_ids=paper_ids,
                heading=heading,
                status=PENDING,
                needs_reconcile=False,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(posts.c.id)
        )
        post_id = int(result.scalar_one())
        if paper_ids:
            await conn.execute(
                insert(deliveries),
                [
                    {
                        "destination_id": dest_id,
                        "paper_id": paper_id,
                        "kind": kind,
                        "post_id": post_id,
                        "created_at": now,
                    }
                    for paper_id in paper_ids
                ],
            )
        return post_id

    async def claim(
        self, *, worker: str, limit: int = 100, lease: timedelta = timedelta(minutes=2)
    ) -> list[ClaimedPost]:
        """Take up to ``limit`` due posts. On PostgreSQL rows are locked with
        ``FOR UPDATE SKIP LOCKED`` so replicas never claim the same post."""
        now = self.clock()
        async with self.db.write() as conn:
            raw = await RawConnection.of(conn)
            select_due = _CLAIM_SELECT
            if raw.dialect == "postgresql":
                select_due += " FOR UPDATE OF p SKIP LOCKED"
            rows = await raw.fetch(select_due, [_param(raw, now), _param(raw, now - lease), limit])
            if not rows:
                return []
            among, ids = raw.among([r[0] for r in rows])
            await raw.execute(_CLAIM_UPDATE + among, [worker, _param(raw, now), ids])
        return [
            ClaimedPost(
                id=post_id,
                key=key,
                kind=kind,
                destination=Destination(platform, workspace, channel, bool(is_dm)),
                paper_ids=_json(paper_ids),
                heading=_json(heading),
                attempts=attempts + 1,
                needs_reconcile=bool(needs_reconcile) or status in (SENDING, UNKNOWN),
            )
            for (
                post_id,
                key,
                kind,
                paper_ids,
                heading,
                attempts,
                needs_reconcile,
                status,
                platform,
                workspace,
                channel,
                is_dm,
            ) in rows
        ]

    async def _finish(
        self,
        post_id: int,
        worker: str,
        *,
        release_papers: bool = False,
        give_back: bool = False,
        **values: Any,
    ) -> bool:
        """Record an outcome, only if this worker still owns the claim.

        Outcomes are group-committed: concurrent callers (a fan-out records hundreds of
        posts at once) share one write transaction, and each returns once its own outcome
        is durable. One transaction per post would serialise the whole fan-out on SQLite's
        single writer.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcomes.append(Outcome(post_id, worker, values, release_papers, give_back, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_outcomes())
        return await done

    async def _flush_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                async with self.db.write() as conn:
                    results = await _write_outcomes(conn, batch)
            except Exception as exc:
                for outcome in batch:
                    if not outcome.done.done():
                        outcome.done.set_exception(exc)
                continue
            for outcome, changed in zip(batch, results, strict=True):
                if not outcome.done.done():
                    outcome.done.set_result(changed)

    async def mark_sent(self, post_id: int, worker: str, message_ids: Sequence[str]) -> bool:
        return await self._finish(
            post_id,
            worker,
            status=SENT,
            message_ids=list(message_ids),
            sent_at=self.clock(),
            error=None,
            needs_reconcile=False,
        )

    async def mark_unknown(self, post_id: int, worker: str, error: str, retry_at: datetime) -> bool:
        return await self._finish(
            post_id,
            worker,
            status=UNKNOWN,
            error=error,
            needs_reconcile=True,
            next_attempt_at=retry_at,
        )

    async def mark_retry(self, post_id: int, worker: str, error: str, retry_at: datetime) -> bool:
        return await self._finish(
            post_id, worker, status=PENDING, error=error, next_attempt_at=retry_at
        )

    async def release(self, post_id: int, worker: str, retry_at: datetime, note: str) -> bool:
        """Give a claim back untried (e.g. its platform is not running here)."""
        return await self._finish(
            post_id,
            worker,
            status=PENDING,
            error=note,
            next_attempt_at=retry_at,
            give_back=True,
        )

    async def mark_failed(self, post_id: int, worker: str, error: str) -> bool:
        """Give up on a post. Its papers leave the ledger: they never reached the channel,
        so a later digest (after the channel is fixed) may carry them."""
        return await self._finish(post_id, worker, release_papers=True, status=FAILED, error=error)

    async def renew(self, post_ids: Sequence[int], worker: str) -> int:
        """Extend ``worker``'s claims on ``post_ids`` (those it still holds) to now: a post
        still being posted when its lease would run out is not claimed again."""
        if not post_ids:
            return 0
        async with self.db.write() as conn:
            result = await conn.execute(
                update(posts)
                .where(
                    posts.c.id.in_(post_ids),
                    posts.c.claimed_by == worker,
                    posts.c.status == SENDING,
                )
                .values(claimed_at=self.clock())
            )
        return result.rowcount

    async def release_worker(self, worker: str) -> int:
        """On shutdown: hand back claims this worker never started (reconciled later)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(posts)
                .where(posts.c.claimed_by == worker, posts.c.status == SENDING)
                .values(status=UNKNOWN, needs_reconcile=True, next_attempt_at=self.clock())
            )
        return result.rowcount

    async def release_abandoned(self) -> int:
        """Every claim still ``sending``: a worker died while posting it. Only safe when no
        other worker can be alive (SQLite, which is one process, with the leader lock)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(posts)
                .where(posts.c.status == SENDING)
                .values(status=UNKNOWN, needs_reconcile=True, next_attempt_at=self.clock())
            )
        return result.rowcount

    async def counts(self) -> dict[str, int]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(posts.c.status, func.count()).group_by(posts.c.status))
            return {status: int(n) for status, n in rows}

    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest posts with their destination, for ``paperboy status``."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(
                    posts.c.key,
                    posts.c.kind,
                    posts.c.status,
                    posts.c.attempts,
                    posts.c.error,
                    posts.c.created_at,
                    posts.c.sent_at,
                    func.json_array_length(posts.c.paper_ids).label("papers"),
                    destinations.c.platform,
                    destinations.c.workspace,
                    destinations.c.channel,
                )
                .join(destinations, destinations.c.id == posts.c.destination_id)
                .order_by(posts.c.id.desc())
                .limit(limit)
            )
            return [
                {**r._mapping, "created_at": aware(r.created_at), "sent_at": aware(r.sent_at)}
                for r in rows
            ]

    async def delivered(self, destination: Destination, kind: str) -> list[str]:
        """Paper ids in the ledger for ``destination`` (tests and status)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(deliveries.c.paper_id)
                .join(destinations, destinations.c.id == deliveries.c.destination_id)
                .where(
                    destinations.c.platform == destination.platform,
                    destinations.c.workspace == destination.workspace,
                    destinations.c.channel == destination.channel,
                    destinations.c.is_dm == destination.is_dm,
                    deliveries.c.kind == kind,
                )
                .order_by(deliveries.c.id)
            )
            return [r[0] for r in rows]

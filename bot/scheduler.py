"""APScheduler 3.x wiring: polls, one cron job per subscription, catch-up, leadership.

The database is the source of truth: jobs live in APScheduler's in-memory store and are
rebuilt from the subscriptions table whenever they change, on the leader at each
leadership check too (a follower may have taken the ``/papers subscribe``). Only the
replica holding the leader lock polls and plans digests; every replica relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.digest import DigestPlanner
from bot.leader import LeaderLock
from bot.models import Subscription, utcnow
from bot.schedule import latest_slot, trigger_for
from bot.store.outbox import PlannedPost
from bot.store.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=6)


class Scheduler:
    """Runs digests on time, in each subscription's zone, once per slot."""

    def __init__(
        self,
        *,
        subscriptions: SubscriptionStore,
        planner: DigestPlanner,
        leader: LeaderLock,
        on_planned: Callable[[], None] = lambda: None,
        poll_loop: Callable[[], Coroutine[Any, Any, Any]] | None = None,
        grace: timedelta = DEFAULT_GRACE,
        leadership_check: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.subscriptions = subscriptions
        self.planner = planner
        self.leader = leader
        self.on_planned = on_planned
        self.poll_loop = poll_loop
        self.grace = grace
        self.leadership_check = leadership_check
        self.clock = clock
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(grace.total_seconds()),
            },
        )
        self._watch_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[Any] | None = None
        self._lock = asyncio.Lock()
        self._jobs: dict[str, tuple[object, ...]] = {}  # job id -> what its trigger is made of
        self._caught_up = False
        self.led_since: datetime | None = None  # when this replica's leadership began

    @property
    def is_leader(self) -> bool:
        return self.leader.held

    async def start(self) -> None:
        self.aps.start()
        await self._try_lead()
        self._watch_task = asyncio.create_task(self._watch_leadership(), name="leadership")

    async def _watch_leadership(self) -> None:
        while True:
            await asyncio.sleep(self.leadership_check)
            try:
                if self.leader.held and not await self.leader.still_held():
                    await self._step_down()
                elif not self.leader.held:
                    await self._try_lead()
                else:
                    await self._keep_up()
            except Exception:
                log.exception("leadership check failed")

    async def _try_lead(self) -> None:
        if not await self.leader.try_acquire():
            return
        log.info("this replica leads: it polls and schedules digests")
        self.led_since = self.clock()
        if self.poll_loop is not None and (self._poll_task is None or self._poll_task.done()):
            self._poll_task = asyncio.create_task(self.poll_loop(), name="poller")
        self._caught_up = False
        await self._keep_up()

    async def _keep_up(self) -> None:
        """On the leader: jobs for subscriptions changed on any replica, and the catch-up
        once per leadership (retried at the next check if it failed)."""
        await self.sync()
        if not self._caught_up:
            await self.catch_up()
            self._caught_up = True

    async def _step_down(self) -> None:
        log.warning("lost leadership: no longer polling or scheduling")
        self.led_since = None
        for job in self.aps.get_jobs():
            job.remove()
        self._jobs.clear()
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None

    async def sync(self) -> None:
        """Rebuild the digest jobs from the database (after subscribe/unsubscribe)."""
        if not self.is_leader:
            return
        async with self._lock:
            subs = await self.subscriptions.all(include_paused=False)
            wanted = {f"digest:{s.id}": s for s in subs}
            for job in self.aps.get_jobs():
                if job.id.startswith("digest:") and job.id not in wanted:
                    job.remove()
                    self._jobs.pop(job.id, None)
            for job_id, sub in wanted.items():
                made_of = (sub.at, sub.timezone, sub.days)
                if self._jobs.get(job_id) == made_of and self.aps.get_job(job_id) is not None:
                    continue  # unchanged: keep its next run time
                self.aps.add_job(
                    self._digest_job,
                    trigger_for(sub),
                    args=(sub.id,),
                    id=job_id,
                    name=f"digest to {sub.destination.key}",
                    replace_existing=True,
                )
                self._jobs[job_id] = made_of

    async def _digest_job(self, sub_id: int) -> None:
        try:
            await self.run_digest(sub_id)
        except Exception:
            log.exception("digest of subscription %s failed", sub_id)

    async def run_digest(self, sub_id: int, slot: datetime | None = None) -> PlannedPost | None:
        """Plan subscription ``sub_id``'s digest for ``slot`` (default: its latest slot)."""
        sub = await self.subscriptions.get_by_id(sub_id)
        if sub is None or sub.paused_reason:
            return None
        slot = slot or latest_slot(sub, self.clock(), grace=self.grace)
        if slot is None:
            return None
        planned = await self.planner.plan(sub, slot)
        if planned is not None:
            log.info(
                "planned digest %s: %d papers to %s",
                planned.key,
                len(planned.paper_ids),
                sub.destination.key,
            )
            self.on_planned()
        return planned

    async def catch_up(self) -> list[PlannedPost]:
        """Run digests whose time passed while no leader was up (within the grace)."""
        planned = []
        now = self.clock()
        for sub in await self.subscriptions.all(include_paused=False):
            slot = latest_slot(sub, now, grace=self.grace)
            if slot is None or (sub.last_slot is not None and sub.last_slot >= slot):
                continue
            if sub.created_at is not None and slot < sub.created_at:
                continue  # missed before the channel subscribed: its first digest is next
            assert sub.id is not None
            log.info("catching up the %s digest to %s", slot.isoformat(), sub.destination.key)
            result = await self.run_digest(sub.id, slot)
            if result is not None:
                planned.append(result)
        return planned

    def next_run(self, sub: Subscription) -> datetime | None:
        job = self.aps.get_job(f"digest:{sub.id}")
        return job.next_run_time if job is not None else None

    async def shutdown(self) -> None:
        for task in (self._watch_task, self._poll_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.aps.running:
            self.aps.shutdown(wait=False)
        await self.leader.release()

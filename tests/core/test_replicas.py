"""Scale-out on PostgreSQL: several replicas share one database."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery import Relay
from bot.digest import DigestPlanner
from bot.leader import LeaderLock
from bot.models import Destination, Subscription
from bot.scheduler import Scheduler
from bot.store import Database, PaperStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import migrated_database
from tests.core.conftest import paper
from tests.fakes.chat import RecordingAdapter

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHANNELS = [f"C{i:03d}" for i in range(40)]


class Replica:
    def __init__(self, db: Database, adapter: RecordingAdapter, now: datetime) -> None:
        clock = lambda: now  # noqa: E731
        self.db = db
        self.store = PaperStore(db)
        self.subs = SubscriptionStore(db)
        self.outbox = Outbox(db, clock=clock)
        self.relay = Relay(self.outbox, self.store, self.subs, {"console": adapter}, clock=clock)
        self.scheduler = Scheduler(
            subscriptions=self.subs,
            planner=DigestPlanner(self.store, self.outbox, clock=clock),
            leader=LeaderLock(db),
            clock=clock,
        )


@pytest.fixture
async def postgresql(tmp_path):
    """Several replicas need PostgreSQL (SQLite is one process): no SQLite variant."""
    async with migrated_database("postgresql", tmp_path) as db:
        yield db


@pytest.fixture
async def replicas(postgresql):
    database = postgresql
    url = database.engine.url.render_as_string(hide_password=False)
    adapter = RecordingAdapter("console")
    now = MONDAY_9 + timedelta(minutes=2)
    second = await Database.connect(url)
    pair = [Replica(database, adapter, now), Replica(second, adapter, now)]
    try:
        yield pair, adapter
    finally:
        for r in pair:
            await r.scheduler.shutdown()
        await second.close()


async def test_exactly_one_replica_leads(replicas):
    (a, b), _ = replicas
    await asyncio.gather(a.scheduler.start(), b.scheduler.start())
    assert sorted([a.scheduler.is_leader, b.scheduler.is_leader]) == [False, True]
    leader, follower = (a, b) if a.scheduler.is_leader else (b, a)
    await leader.scheduler.shutdown()  # releases the lock
    await follower.scheduler._try_lead()
    assert follower.scheduler.is_leader


async def test_two_replicas_post_each_digest_exactly_once(replicas):
    (a, b), adapter = replicas
    await a.store.upsert(
        [paper(f"2611.2{i:04d}", f"Paper {i}", upvotes=i, age_days=-1.5) for i in range(8)]
    )
    for channel in CHANNELS:
        await a.subs.save(Subscription(destination=Destination("console", "W", channel), top=5))
    # Both replicas try every slot at once (as after a failover race), then both relay.
    results = await asyncio.gather(a.scheduler.catch_up(), b.scheduler.catch_up())
    assert sum(len(r) for r in results) == len(CHANNELS)
    stats = await asyncio.gather(a.relay.drain(limit=7), b.relay.drain(limit=7))
    assert sum(s.sent for s in stats) == len(CHANNELS)
    assert all(s.sent > 0 for s in stats)  # SKIP LOCKED let both replicas work
    for channel in CHANNELS:
        sent = adapter.papers_to(channel)
        assert len(sent) == 5 and len(set(sent)) == 5, channel

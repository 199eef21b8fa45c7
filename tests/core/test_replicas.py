"""Scale-out on PostgreSQL: several replicas share one database."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

import bot.leader as leader_module
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
        self.subs = SubscriptionStore(db, clock=clock)
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
    sunday = SubscriptionStore(a.db, clock=lambda: MONDAY_9 - timedelta(days=1))
    for channel in CHANNELS:  # subscribed the day before
        await sunday.save(Subscription(destination=Destination("console", "W", channel), top=5))
    # Both replicas try every slot at once (as after a failover race), then both relay.
    results = await asyncio.gather(a.scheduler.catch_up(), b.scheduler.catch_up())
    assert sum(len(r) for r in results) == len(CHANNELS)
    stats = await asyncio.gather(a.relay.drain(limit=7), b.relay.drain(limit=7))
    assert sum(s.sent for s in stats) == len(CHANNELS)
    assert all(s.sent > 0 for s in stats)  # SKIP LOCKED let both replicas work
    for channel in CHANNELS:
        sent = adapter.papers_to(channel)
        assert len(sent) == 5 and len(set(sent)) == 5, channel


async def test_the_leader_follows_subscriptions_changed_on_a_follower(replicas):
    (a, b), _ = replicas
    await asyncio.gather(a.scheduler.start(), b.scheduler.start())
    leader, follower = (a, b) if a.scheduler.is_leader else (b, a)
    dest = Destination("console", "W", "C1")
    sub = await follower.subs.save(Subscription(destination=dest, at="09:30"))
    await follower.scheduler.sync()  # what /papers subscribe runs there: not the leader
    assert leader.scheduler.next_run(sub) is None

    await leader.scheduler._keep_up()  # the leader's next leadership check
    first = leader.scheduler.next_run(sub)
    assert first is not None and (first.hour, first.minute) == (9, 30)
    await follower.subs.save(replace(sub, at="10:45"))
    await leader.scheduler._keep_up()
    moved = leader.scheduler.next_run(sub)
    assert moved is not None and (moved.hour, moved.minute) == (10, 45)
    await follower.subs.delete(dest)
    await leader.scheduler._keep_up()
    assert leader.scheduler.next_run(sub) is None


async def test_a_leader_whose_first_sync_failed_syncs_at_the_next_check(replicas):
    (a, _), _ = replicas
    sub = await a.subs.save(Subscription(destination=Destination("console", "W", "C2")))
    real, calls = a.subs.all, []

    async def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise ConnectionError("the database blinked")
        return await real(**kwargs)

    a.subs.all = flaky  # type: ignore[method-assign]
    a.scheduler.aps.start()
    with pytest.raises(ConnectionError):  # as _watch_leadership meets it, and logs it
        await a.scheduler._try_lead()
    assert a.scheduler.is_leader and a.scheduler.next_run(sub) is None
    await a.scheduler._keep_up()
    assert a.scheduler.next_run(sub) is not None and a.scheduler._caught_up


async def test_replicas_saving_one_channel_at_once_never_collide(replicas):
    # Two /papers subscribe (or two replicas' PAPERBOY_DIGESTS) for one channel at once.
    (a, b), _ = replicas
    dest = Destination("console", "W", "C3")
    for attempt in range(10):
        results = await asyncio.gather(
            a.subs.save(Subscription(destination=dest, at="08:00")),
            b.subs.save(Subscription(destination=dest, at="08:30")),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == [], attempt
        saved = await a.subs.get(dest)
        assert saved is not None and saved.at in ("08:00", "08:30")
        assert await a.subs.delete(dest)  # the destination row stays: the racy case


async def test_the_lock_session_asks_for_keepalives_so_a_vanished_leader_frees_it(replicas):
    (a, _), _ = replicas
    assert await a.scheduler.leader.try_acquire()
    conn = a.scheduler.leader._conn
    assert conn is not None
    shown = {
        name: (await conn.execute(text(f"SHOW {name}"))).scalar_one()
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    }
    assert shown == {
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
    }


async def test_a_leader_whose_lock_connection_stops_answering_steps_down(replicas, monkeypatch):
    (a, b), _ = replicas
    lock = a.scheduler.leader
    assert await lock.try_acquire()
    monkeypatch.setattr(leader_module, "CHECK_TIMEOUT", 0.2)
    real = lock._conn
    assert real is not None

    class Silent:  # a partitioned network: requests go out, nothing comes back
        async def execute(self, *args, **kwargs):
            await asyncio.Event().wait()

        async def invalidate(self):
            await real.invalidate()  # what the server does, once keepalives give up

    lock._conn = Silent()  # type: ignore[assignment]
    assert await lock.still_held() is False and not lock.held
    assert await b.scheduler.leader.try_acquire()  # the lock is free for another replica

"""Outbox outcomes: group-committed, each applied only while its worker owns the claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.delivery import Relay
from bot.digest import DigestPlanner
from bot.models import Destination, Subscription
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from tests.core.test_digests import MONDAY_9, Clock, weekend_papers
from tests.fakes.chat import RecordingAdapter


async def planned(store, count: int) -> tuple[Outbox, SubscriptionStore, Clock]:
    clock = Clock(MONDAY_9 + timedelta(minutes=5))
    outbox, subs = Outbox(store.db, clock=clock), SubscriptionStore(store.db)
    planner = DigestPlanner(store, outbox, clock=clock)
    await store.upsert(weekend_papers())
    for i in range(count):
        dest = Destination("console", "W", f"C{i}")
        sub = await subs.save(Subscription(destination=dest, top=2))
        await planner.plan(sub, MONDAY_9)
    return outbox, subs, clock


async def test_concurrent_outcomes_each_get_their_own_answer(store):
    outbox, _subs, clock = await planned(store, 6)
    claimed = await outbox.claim(worker="w1")
    a, b, c, d, e, f = (p.id for p in claimed)
    later = clock() + timedelta(minutes=1)
    results = await asyncio.gather(
        outbox.mark_sent(a, "w1", ["m1"]),
        outbox.mark_sent(b, "w1", ["m2", "m3"]),
        outbox.mark_unknown(c, "w1", "timeout", later),
        outbox.mark_retry(d, "w1", "ratelimited", later),
        outbox.release(e, "w1", later, "no adapter"),
        outbox.mark_failed(f, "w1", "channel_not_found"),
        outbox.mark_sent(a, "w1", ["again"]),  # the claim was just finished: refused
        outbox.mark_sent(b, "intruder", ["x"]),  # not this worker's claim: refused
    )
    assert results == [True, True, True, True, True, True, False, False]
    assert await outbox.counts() == {"sent": 2, "unknown": 1, "pending": 2, "failed": 1}
    rows = {r["channel"]: r for r in await outbox.recent(10)}
    by_id = {p.id: p.destination.channel for p in claimed}
    assert rows[by_id[e]]["attempts"] == 0 and rows[by_id[d]]["attempts"] == 1
    assert rows[by_id[f]]["error"] == "channel_not_found"
    # only the failed post's papers left the ledger
    failed = next(p for p in claimed if p.id == f)
    assert await outbox.delivered(failed.destination, "digest") == []
    sent = next(p for p in claimed if p.id == a)
    assert await outbox.delivered(sent.destination, "digest") == sent.paper_ids


async def test_a_reclaimed_post_refuses_the_old_workers_outcome(store):
    outbox, _subs, clock = await planned(store, 2)
    old = await outbox.claim(worker="old", lease=timedelta(minutes=2))
    stolen = await outbox.claim(worker="new", lease=timedelta(seconds=-1))  # lease expired
    assert [p.id for p in stolen] == [p.id for p in old]
    results = await asyncio.gather(
        outbox.mark_sent(old[0].id, "old", ["m1"]),
        outbox.mark_failed(old[1].id, "old", "gone"),
        outbox.mark_sent(stolen[1].id, "new", ["m2"]),
    )
    assert results == [False, False, True]
    assert await outbox.counts() == {"sending": 1, "sent": 1}
    assert await outbox.delivered(old[1].destination, "digest") == old[1].paper_ids


async def test_a_group_of_failures_all_leave_the_ledger(store):
    outbox, _subs, _clock = await planned(store, 5)
    claimed = await outbox.claim(worker="w")
    results = await asyncio.gather(
        *(outbox.mark_failed(p.id, "w", "gone") for p in claimed),
        outbox.mark_failed(claimed[0].id, "x", "gone"),
    )
    assert results == [True] * 5 + [False]
    assert await outbox.counts() == {"failed": 5}
    for post in claimed:
        assert await outbox.delivered(post.destination, "digest") == []


async def test_a_post_that_outlasts_its_lease_is_not_claimed_again(store):
    outbox, subs, clock = await planned(store, 1)
    started, finish, ticks, renewed = (asyncio.Event(), asyncio.Event(), asyncio.Queue(),
                                       asyncio.Event())  # fmt: skip
    sleeps = 0

    class SlowChannel(RecordingAdapter):  # a long thread, paced at a message a second
        async def post(self, dest, reply, *, key):
            started.set()
            await finish.wait()
            return await super().post(dest, reply, key=key)

    async def renewal_timer(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 2:  # the first renewal is written: the keeper waits again
            renewed.set()
        await ticks.get()

    adapter = SlowChannel("console")
    relay = Relay(
        outbox, store, subs, {"console": adapter}, clock=clock, lease=timedelta(minutes=2),
        sleep=renewal_timer,
    )  # fmt: skip
    delivering = asyncio.create_task(relay.run_once())
    await started.wait()
    clock.now += timedelta(seconds=100)
    ticks.put_nowait(None)
    await renewed.wait()
    clock.now += timedelta(seconds=100)  # 200 s after the claim, 100 s after its renewal
    assert await outbox.claim(worker="another replica", lease=timedelta(minutes=2)) == []
    finish.set()
    stats = await delivering
    assert stats.sent == 1 and len(adapter.posts) == 1
    assert await outbox.counts() == {"sent": 1}

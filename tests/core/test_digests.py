"""Subscriptions, digest planning and the relay, over a real store (SQLite and PostgreSQL)."""

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.delivery import AUTH_HOLD, Relay
from bot.digest import DigestPlanner
from bot.leader import LeaderLock
from bot.models import (
    Card,
    Destination,
    DigestDays,
    DigestFormat,
    PostResult,
    PostStatus,
    Reply,
    ReplyKind,
    Subscription,
)
from bot.schedule import next_slot
from bot.scheduler import Scheduler
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from tests.core.conftest import CHANNEL, paper
from tests.fakes.chat import RecordingAdapter

MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(MONDAY_9 + timedelta(minutes=5))


@pytest.fixture
async def digests(store, clock):
    """The digest pipeline around one recording adapter named "console"."""

    class Pipeline:
        def __init__(self) -> None:
            self.subs = SubscriptionStore(store.db, clock=clock)
            self.outbox = Outbox(store.db, clock=clock)
            self.adapter = RecordingAdapter("console")
            self.planner = DigestPlanner(store, self.outbox, clock=clock)
            self.relay = self.new_relay()

        def new_relay(self, **kwargs) -> Relay:
            return Relay(
                self.outbox, store, self.subs, {"console": self.adapter}, clock=clock, **kwargs
            )

        def scheduler(self) -> Scheduler:
            return Scheduler(
                subscriptions=self.subs,
                planner=self.planner,
                leader=LeaderLock(store.db),
                clock=clock,
            )

        async def subscribe(self, channel: str = "C1", **fields) -> Subscription:
            dest = CHANNEL if channel == CHANNEL.channel else Destination("console", "W", channel)
            return await self.subs.save(Subscription(destination=dest, **fields))

    return Pipeline()


def weekend_papers():
    # Listed over the weekend before Monday 23 Nov 2026 09:00 UTC (NOW is Sat 21 Nov 15:00).
    return [
        paper("2611.10001", "Diffusion Transformers", upvotes=40),
        paper("2611.10002", "State Space Models at Scale", upvotes=90),
        paper("2611.10003", "Reward Hacking in RLHF", upvotes=60),
        paper("2611.10004", "Vision Mamba", upvotes=5),
    ]


async def test_a_digest_posts_the_top_papers_once(store, digests):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(top=3)
    assert (await digests.planner.plan(sub, MONDAY_9)).paper_ids == [
        "2611.10002",
        "2611.10003",
        "2611.10001",
    ]
    assert await digests.planner.plan(sub, MONDAY_9) is None  # the slot already ran
    stats = await digests.relay.drain()
    assert stats.sent == 1
    reply = digests.adapter.posts[0].reply
    assert reply.kind is ReplyKind.DIGEST and not reply.ephemeral
    assert reply.title == "Trending papers — Mon 23 Nov 2026"
    assert digests.adapter.papers_to("C1") == ["2611.10002", "2611.10003", "2611.10001"]


async def test_the_next_digest_carries_only_what_the_channel_has_not_had(store, digests, clock):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(top=3)
    await digests.planner.plan(sub, MONDAY_9)
    await store.upsert([paper("2611.10005", "Fresh on Monday", upvotes=7, age_days=-2)])
    clock.now = MONDAY_9 + timedelta(days=1, minutes=1)
    sub = await digests.subs.get_by_id(sub.id)
    planned = await digests.planner.plan(sub, MONDAY_9 + timedelta(days=1))
    # Monday's three are not repeated; Saturday's leftover is older than the window.
    assert planned.paper_ids == ["2611.10005"]
    await digests.relay.drain()
    sent = digests.adapter.papers_to("C1")
    assert len(sent) == len(set(sent)) == 4


async def test_topic_and_minimum_filter_like_search(store, digests):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(topic='"state space" OR mamba', min_upvotes=10)
    assert (await digests.planner.plan(sub, MONDAY_9)).paper_ids == ["2611.10002"]


async def test_an_empty_day_posts_nothing_unless_asked(store, digests):
    quiet = await digests.subscribe("C1")
    loud = await digests.subscribe("C2", post_empty=True)
    assert await digests.planner.plan(quiet, MONDAY_9) is None
    assert (await digests.planner.plan(loud, MONDAY_9)).paper_ids == []
    await digests.relay.drain()
    assert [p.dest.channel for p in digests.adapter.posts] == ["C2"]
    assert "No new trending papers" in digests.adapter.posts[0].reply.text


async def test_a_timeout_is_reconciled_not_reposted(store, digests, clock):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(top=2)
    await digests.planner.plan(sub, MONDAY_9)
    # The platform accepted the message but our request timed out.
    digests.adapter.fail_next(("posted", PostResult(PostStatus.UNKNOWN, error="timed out")))
    first = await digests.relay.run_once()
    assert first.unknown == 1
    assert (await digests.relay.run_once()).claimed == 0  # not before the reconcile delay
    clock.now += timedelta(minutes=1)
    stats = await digests.relay.drain()
    assert stats.reconciled == 1 and stats.sent == 0
    assert len(digests.adapter.posts) == 1  # posted once, found again, never re-sent
    assert digests.adapter.lookups == [digests.adapter.posts[0].key]


async def test_a_timeout_that_did_not_post_is_posted_after_the_lookup(store, digests):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(top=2)
    await digests.planner.plan(sub, MONDAY_9)
    digests.adapter.fail_next(PostResult(PostStatus.UNKNOWN, error="timed out"))
    relay = digests.new_relay(unknown_delay=timedelta(0))
    stats = await relay.drain()
    assert (stats.unknown, stats.sent) == (1, 1)
    assert len(digests.adapter.lookups) == 1 and len(digests.adapter.posts) == 1


async def test_an_adapter_crash_counts_as_unknown(store, digests):
    await store.upsert(weekend_papers())
    await digests.planner.plan(await digests.subscribe(top=1), MONDAY_9)
    digests.adapter.fail_next(RuntimeError("boom"))
    stats = await digests.new_relay(unknown_delay=timedelta(0)).drain()
    assert stats.unknown == 1 and stats.sent == 1
    assert digests.adapter.papers_to("C1") == ["2611.10002"]


async def test_rate_limits_wait_for_retry_after(store, digests):
    await store.upsert(weekend_papers())
    await digests.planner.plan(await digests.subscribe(top=1), MONDAY_9)
    digests.adapter.fail_next(PostResult(PostStatus.RETRY, error="ratelimited", retry_after=30))
    assert (await digests.relay.run_once()).retried == 1
    assert (await digests.relay.run_once()).claimed == 0  # not due for 30 s
    assert digests.adapter.posts == []


@pytest.mark.parametrize("status", [PostStatus.GONE, PostStatus.FORBIDDEN])
async def test_a_channel_that_is_gone_pauses_its_subscription(store, digests, make_bot, status):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe("test", top=2)
    await digests.planner.plan(sub, MONDAY_9)
    digests.adapter.fail_next(PostResult(status, error="channel_not_found"))
    assert (await digests.relay.drain()).failed == 1
    paused = await digests.subs.get_by_id(sub.id)
    assert "channel_not_found" in paused.paused_reason
    bot = make_bot(subscriptions=digests.subs)
    shown = await bot.exec("subscription")
    assert "Paused:" in shown.text and "channel_not_found" in shown.text
    # The papers never arrived, so they are not in the ledger: a later digest may carry them.
    assert await digests.outbox.delivered(sub.destination, "digest") == []
    await bot.exec("subscribe top 2")
    assert (await digests.subs.get_by_id(sub.id)).paused_reason is None


async def test_a_partly_posted_retry_is_looked_up_before_it_is_posted_again(store, digests):
    await store.upsert(weekend_papers())
    await digests.planner.plan(await digests.subscribe(top=1), MONDAY_9)
    partial = PostResult(PostStatus.RETRY, ("m0",), "partially posted: 1/2", retry_after=0)
    digests.adapter.fail_next(partial)
    assert (await digests.relay.run_once()).retried == 1
    assert digests.adapter.lookups == []
    assert (await digests.relay.drain()).sent == 1
    assert len(digests.adapter.lookups) == 1  # another replica would not know part 0


async def test_a_rejected_token_holds_the_platform_and_pauses_nothing(
    store, digests, clock, caplog
):
    await store.upsert(weekend_papers())
    first, second = await digests.subscribe("a", top=1), await digests.subscribe("b", top=1)
    for sub in (first, second):
        await digests.planner.plan(sub, MONDAY_9)
    digests.adapter.fail_next(PostResult(PostStatus.AUTH, error="invalid_auth"))
    assert (await digests.relay.run_once(limit=1)).retried == 1
    # The other channel's post is not even tried while the token is known to be bad.
    assert (await digests.relay.run_once(limit=1)).retried == 1
    assert digests.adapter.posts == [] and not digests.adapter.script
    assert (await digests.relay.drain()).claimed == 0  # both wait
    assert caplog.text.count("rejected the bot's token") == 1
    for sub in (first, second):
        assert (await digests.subs.get_by_id(sub.id)).paused_reason is None

    clock.now += AUTH_HOLD + timedelta(seconds=1)  # the token was fixed meanwhile
    assert (await digests.relay.drain()).sent == 2
    assert sorted(p.dest.channel for p in digests.adapter.posts) == ["a", "b"]


async def test_a_claim_abandoned_by_a_dead_worker_is_reconciled(store, digests):
    await store.upsert(weekend_papers())
    await digests.planner.plan(await digests.subscribe(top=1), MONDAY_9)
    claimed = await digests.outbox.claim(worker="dead", lease=timedelta(minutes=2))
    assert len(claimed) == 1
    assert await digests.outbox.claim(worker="other", lease=timedelta(minutes=2)) == []
    again = await digests.outbox.claim(worker="other", lease=timedelta(seconds=-1))
    assert len(again) == 1 and again[0].needs_reconcile


async def test_catch_up_runs_a_missed_digest_once(store, digests, clock):
    await store.upsert(weekend_papers())
    restart, clock.now = clock.now, MONDAY_9 - timedelta(days=1)
    sub = await digests.subscribe(top=2)  # on Sunday
    clock.now = restart
    first = digests.scheduler()
    planned = await first.catch_up()  # restarted at 09:05: the 09:00 digest still runs
    assert [p.paper_ids for p in planned] == [["2611.10002", "2611.10003"]]
    assert await digests.scheduler().catch_up() == []  # a second restart does not repeat it
    clock.now = MONDAY_9 + timedelta(hours=7)
    await digests.subs.save(sub)
    assert await digests.scheduler().catch_up() == []  # beyond the grace window


async def test_scheduler_jobs_mirror_the_subscriptions(store, digests, clock):
    scheduler = digests.scheduler()
    sub = await digests.subscribe(at="10:30", timezone="Asia/Tokyo")
    await scheduler.start()
    try:
        assert scheduler.is_leader
        # APScheduler runs on the real clock: its job agrees with our slot arithmetic.
        expected = next_slot(sub, datetime.now(UTC))
        assert scheduler.next_run(sub) == expected
        assert expected.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == "10:30"
        await digests.subs.delete(sub.destination)
        await scheduler.sync()
        assert scheduler.next_run(sub) is None
    finally:
        await scheduler.shutdown()


async def test_subscribe_commands_need_manage_permission_and_save_nothing_on_error(store, make_bot):
    subs = SubscriptionStore(store.db)
    bot = make_bot(subscriptions=subs)
    denied = await bot.exec("subscribe at 08:00", can_manage=False)
    assert denied.kind is ReplyKind.ERROR and "manage this channel" in denied.text
    bad = await bot.exec("subscribe at 08:00 tz Nowhere/City")
    assert bad.kind is ReplyKind.ERROR and "Unknown time zone" in bad.text
    assert await subs.get(CHANNEL) is None
    ok = await bot.exec("subscribe at 08:00 tz Europe/Berlin top 5")
    assert "08:00 Europe/Berlin on weekdays, top 5" in ok.text and not ok.ephemeral
    assert "Next digest: Mon 23 Nov 08:00 CET" in ok.text  # NOW is Saturday afternoon
    shown = await bot.exec("subscription")
    assert "top 5" in shown.text
    assert (await bot.exec("unsubscribe", can_manage=False)).kind is ReplyKind.ERROR
    assert "Unsubscribed" in (await bot.exec("unsubscribe")).text
    assert await subs.get(CHANNEL) is None
    assert "no digest" in (await bot.exec("subscription")).text


async def test_digests_stay_hugging_face_trending_unless_asked_for_arxiv(store, digests):
    hf = paper("2611.10001", "Diffusion Transformers", upvotes=40)
    arxiv_only = paper("2611.10009", "Fresh From arXiv")
    arxiv_only.sources, arxiv_only.upvotes = ("arxiv",), None
    await store.upsert([hf, arxiv_only])
    plain = await digests.subscribe("C1")
    wide = await digests.subscribe("C2", include_arxiv=True)
    assert (await digests.planner.plan(plain, MONDAY_9)).paper_ids == ["2611.10001"]
    assert (await digests.planner.plan(wide, MONDAY_9)).paper_ids == ["2611.10001", "2611.10009"]


async def test_a_fan_out_composes_each_distinct_digest_once(store, digests):
    await store.upsert(weekend_papers())
    same = [await digests.subscribe(c, top=2) for c in ("C1", "C2", "C3")]
    topical = await digests.subscribe("C4", top=2, topic="mamba")
    compact = await digests.subscribe("C5", top=2, format=DigestFormat.COMPACT)
    for sub in [*same, topical, compact]:
        await digests.planner.plan(sub, MONDAY_9)
    assert (await digests.relay.drain()).sent == 5
    replies = {p.dest.channel: p.reply for p in digests.adapter.posts}
    # identical digests share one Reply (adapters then render it once) ...
    assert replies["C1"] is replies["C2"] is replies["C3"]
    # ... and different ones never collide
    assert len({id(replies[c]) for c in ("C1", "C4", "C5")}) == 3
    assert digests.adapter.papers_to("C4") == ["2611.10004"]
    assert replies["C5"].cards[0].summary == "" != replies["C1"].cards[0].summary


class GatedAdapter(RecordingAdapter):
    """Posts wait until ``release`` is set; counts how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__("console")
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most = 0
        self.changed = asyncio.Condition()

    async def post(self, dest, reply, *, key):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        async with self.changed:
            self.changed.notify_all()
        try:
            await self.release.wait()
            return await super().post(dest, reply, key=key)
        finally:
            self.in_flight -= 1
            async with self.changed:
                self.changed.notify_all()

    async def wait_until(self, condition) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(condition)

    async def wait_in_flight(self, count: int) -> None:
        await self.wait_until(lambda: self.in_flight >= count)


async def plan_fan_out(store, digests, channels: int) -> None:
    await store.upsert(weekend_papers())
    for n in range(channels):
        await digests.planner.plan(await digests.subscribe(f"C{n}", top=2), MONDAY_9)


async def test_the_relay_claims_the_next_batch_while_one_waits(store, digests):
    """A fan-out to more channels than one batch holds goes out in parallel: batch two is
    claimed while batch one waits (on Slack, a thread reply waits a second)."""
    await plan_fan_out(store, digests, 7)
    digests.adapter = adapter = GatedAdapter()
    relay = digests.new_relay()
    running = asyncio.create_task(relay.run_forever(limit=3))
    await adapter.wait_in_flight(7)  # three batches (3 + 3 + 1) in flight together
    adapter.release.set()
    await relay.stop()
    await running
    assert sorted(p.dest.channel for p in adapter.posts) == [f"C{n}" for n in range(7)]
    assert (await digests.relay.drain()).claimed == 0  # all recorded as sent


async def test_concurrency_bounds_the_posts_in_flight_across_batches(store, digests):
    await plan_fan_out(store, digests, 7)
    digests.adapter = adapter = GatedAdapter()
    relay = digests.new_relay(concurrency=4)
    running = asyncio.create_task(relay.run_forever(limit=3))
    await adapter.wait_in_flight(4)
    for _ in range(50):  # give the relay every chance to overshoot
        await asyncio.sleep(0)
    assert adapter.most == 4
    adapter.release.set()
    await adapter.wait_until(lambda: len(adapter.posts) == 7)  # the rest as slots free up
    await relay.stop()
    await running
    assert adapter.most == 4


async def test_stopping_lets_the_posts_in_flight_finish(store, digests):
    await plan_fan_out(store, digests, 3)
    digests.adapter = adapter = GatedAdapter()
    relay = digests.new_relay()
    running = asyncio.create_task(relay.run_forever())
    await adapter.wait_in_flight(3)
    await relay.stop()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not running.done()  # still waiting for the three posts
    adapter.release.set()
    await running
    assert len(adapter.posts) == 3
    assert (await digests.relay.drain()).claimed == 0


async def test_a_stop_or_kick_during_a_claim_is_not_lost(store, digests, monkeypatch):
    claiming, go_on = asyncio.Event(), asyncio.Event()
    claim = digests.outbox.claim

    async def slow_claim(**kwargs):
        claiming.set()
        await go_on.wait()
        return await claim(**kwargs)

    monkeypatch.setattr(digests.outbox, "claim", slow_claim)
    relay = digests.new_relay()
    running = asyncio.create_task(relay.run_forever(interval=3600))
    await claiming.wait()
    await relay.stop()  # while the relay is inside claim()
    go_on.set()
    async with asyncio.timeout(5):  # not after the hour-long interval
        await running


async def test_an_idle_relay_claims_only_when_kicked_or_full(store, digests, monkeypatch):
    """A claim that found less than it asked for means nothing else is due: the relay
    waits for a kick or its interval, not for its batches to finish (a claim at the end of
    a fan-out would only delay the stop, and cost a busy event loop a transaction)."""
    await plan_fan_out(store, digests, 7)
    digests.adapter = adapter = GatedAdapter()
    claims: list[int] = []  # posts asked for, per claim started
    claim = digests.outbox.claim

    async def counted_claim(**kwargs):
        claims.append(kwargs["limit"])
        return await claim(**kwargs)

    monkeypatch.setattr(digests.outbox, "claim", counted_claim)
    relay = digests.new_relay(concurrency=4)
    finished: asyncio.Queue[int] = asyncio.Queue()
    deliver = relay._deliver_batch

    async def tracked(claimed):
        try:
            return await deliver(claimed)
        finally:
            finished.put_nowait(len(claimed))

    monkeypatch.setattr(relay, "_deliver_batch", tracked)
    running = asyncio.create_task(relay.run_forever(interval=3600, limit=3))
    await adapter.wait_in_flight(4)  # full: 3 + 1
    adapter.release.set()
    delivered = 0
    async with asyncio.timeout(5):
        while delivered < 7:
            delivered += await finished.get()
    before = len(claims)
    for _ in range(50):  # the last batch has finished: no claim follows
        await asyncio.sleep(0)
    assert len(claims) == before
    relay.kick.set()  # a newly planned digest: one claim
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(claims) == before + 1
    await relay.stop()
    await running
    assert len(adapter.posts) == 7


async def test_claims_start_small_and_double_up_to_the_limit(store, digests, monkeypatch):
    """The first posts of a fan-out leave after a small claim, not a 500-row one; then
    each full claim doubles the next. A short claim (nothing else due) starts over."""
    monkeypatch.setattr("bot.delivery.FIRST_CLAIM", 2)
    await plan_fan_out(store, digests, 12)
    digests.adapter = adapter = GatedAdapter()
    adapter.release.set()
    asked: list[int] = []
    got: list[int] = []
    fifth_claim = asyncio.Event()
    claim = digests.outbox.claim

    async def counted_claim(**kwargs):
        asked.append(kwargs["limit"])
        claimed = await claim(**kwargs)
        got.append(len(claimed))
        if len(got) == 5:
            fifth_claim.set()
        return claimed

    monkeypatch.setattr(digests.outbox, "claim", counted_claim)
    relay = digests.new_relay()
    running = asyncio.create_task(relay.run_forever(interval=3600, limit=5))
    await adapter.wait_until(lambda: len(adapter.posts) == 12)
    assert (asked, got) == ([2, 4, 5, 5], [2, 4, 5, 1])
    relay.kick.set()  # work may have appeared: small first again
    await asyncio.wait_for(fifth_claim.wait(), 5)
    assert asked[4] == 2
    await relay.stop()
    await running


async def test_a_batch_starts_its_posts_in_slices(store, digests, monkeypatch):
    """The first posts of a batch are under way (on Slack: connecting, sending) before
    its last ones are started, rather than after every post's first step has run."""
    monkeypatch.setattr("bot.delivery.START_SLICE", 4)
    await plan_fan_out(store, digests, 10)
    started: list[str] = []
    started_when_first_resumed: list[int] = []

    class SteppingAdapter(RecordingAdapter):
        async def post(self, dest, reply, *, key):
            started.append(dest.channel)
            await asyncio.sleep(0)  # one event-loop turn, as a socket write would take
            if len(started_when_first_resumed) == 0:
                started_when_first_resumed.append(len(started))
            return await super().post(dest, reply, key=key)

    digests.adapter = adapter = SteppingAdapter("console")
    stats = await digests.new_relay().run_once(limit=10)
    assert stats.sent == 10 and len(adapter.posts) == 10
    assert started_when_first_resumed == [4]  # one slice by then, not all 10


async def test_a_batch_cancelled_while_starting_leaves_nothing_in_flight(
    store, digests, monkeypatch
):
    monkeypatch.setattr("bot.delivery.START_SLICE", 4)
    await plan_fan_out(store, digests, 10)
    digests.adapter = adapter = GatedAdapter()
    relay = digests.new_relay()
    batch = asyncio.create_task(relay.run_once(limit=10))
    await adapter.wait_in_flight(4)  # the first slice is posting, the rest not started
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert adapter.in_flight == 0 and relay._in_flight == 0
    assert adapter.posts == []


async def test_batches_of_one_fan_out_hand_adapters_one_reply_object(store, digests):
    """Adapters memoise rendering per Reply; across batches the relay passes the same
    object, so a thousand-channel digest is looked up by identity, not compared card by card."""
    await store.upsert(weekend_papers())
    for channel in ("C1", "C2", "C3", "C4", "C5"):
        await digests.planner.plan(await digests.subscribe(channel, top=3), MONDAY_9)
    stats = await digests.relay.drain(limit=2)  # three batches
    assert stats.sent == 5
    replies = [posted.reply for posted in digests.adapter.posts]
    assert len({id(r) for r in replies}) == 1
    assert [c.paper_id for c in replies[0].cards] == ["2611.10002", "2611.10003", "2611.10001"]


async def test_a_reply_that_cannot_be_hashed_is_posted_as_it_is(digests):
    reply = Reply(text="cards in a list", cards=[Card("2611.10001", "t", "u")])  # type: ignore[arg-type]
    assert digests.relay._intern(reply) is reply
    assert digests.relay._intern(Reply(text="x")) is digests.relay._intern(Reply(text="x"))


async def test_a_slot_in_the_subscription_s_zone_is_stored_as_that_instant(store, digests):
    # Berlin 09:00 on Monday 23 Nov is 08:00 UTC; SQLite once kept the wall time as UTC.
    await store.upsert(weekend_papers())
    sub = await digests.subscribe(timezone="Europe/Berlin", days=DigestDays.DAILY)
    slot = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    planned = await digests.planner.plan(sub, slot)
    assert planned is not None and planned.key.endswith(":20261123T080000Z")
    stored = await digests.subs.get(sub.destination)
    assert stored is not None and stored.last_slot == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def test_unsubscribing_drops_a_digest_still_waiting_to_be_posted(store, digests, clock):
    await store.upsert(weekend_papers())
    sub = await digests.subscribe()
    assert await digests.planner.plan(sub, MONDAY_9) is not None
    digests.adapter.fail_next(PostResult(PostStatus.RETRY, error="ratelimited", retry_after=60))
    assert (await digests.relay.drain()).retried == 1
    assert await digests.subs.delete(sub.destination)
    clock.now += timedelta(minutes=5)
    stats = await digests.relay.drain()
    assert stats.claimed == 0 and digests.adapter.posts == []
    assert await digests.outbox.counts() == {"failed": 1}
    assert await digests.outbox.delivered(sub.destination, "digest") == []


async def test_catch_up_skips_a_slot_from_before_the_channel_subscribed(store, digests, clock):
    await store.upsert(weekend_papers())
    clock.now = MONDAY_9 + timedelta(minutes=90)  # 10:30: "next digest: tomorrow 09:00"
    await digests.subscribe(at="09:00")
    clock.now = MONDAY_9 + timedelta(hours=2)  # a restart at 11:00, within the grace
    assert await digests.scheduler().catch_up() == []

"""/papers watch, watches, unwatch, and alerts through the delivery outbox."""

from datetime import timedelta

import pytest

from bot.delivery import Relay
from bot.models import CommandRequest, Destination, PostResult, PostStatus, ReplyKind, Watch
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.watches import WatchStore
from bot.watches import AlertPlanner
from tests.core.conftest import CHANNEL, NOW, paper
from tests.fakes.chat import RecordingAdapter

DM = Destination(CHANNEL.platform, CHANNEL.workspace, "U1", is_dm=True)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def alerts(store, clock, make_bot):
    class Pipeline:
        def __init__(self) -> None:
            self.watches = WatchStore(store.db, clock=clock)
            self.outbox = Outbox(store.db, clock=clock)
            self.adapter = RecordingAdapter("console")
            self.planner = AlertPlanner(store, self.watches, self.outbox, clock=clock)
            self.relay = Relay(
                self.outbox,
                store,
                SubscriptionStore(store.db),
                {"console": self.adapter},
                clock=clock,
                watches=self.watches,
            )

        async def changed(self) -> None:
            self.planner.invalidate()

        def bot(self):
            return make_bot(watches=self.watches, on_watches_changed=self.changed, clock=clock)

        async def cycle(self, papers, minutes=15):
            clock.now += timedelta(minutes=minutes)
            await store.upsert(papers)
            planned = await self.planner.run()
            await self.relay.drain()
            return planned

    return Pipeline()


async def test_watch_on_an_empty_library_does_not_claim_a_count(store, alerts):
    reply = await alerts.bot().exec("watch mamba")
    assert "(#1)" in reply.text
    assert "No papers of the last 30 days are stored yet" in reply.text
    assert "matched" not in reply.text


async def test_watch_reports_recent_matches_and_then_alerts_by_dm(store, alerts):
    await store.upsert([paper("2611.30001", "Mamba for Vision", age_days=3)])
    bot = alerts.bot()
    reply = await bot.exec('watch mamba OR "state space" -survey')
    assert reply.kind is ReplyKind.INFO
    assert "(#1)" in reply.text and "your DMs" in reply.text
    assert "matched 1 of the 1 papers of the last 30 days" in reply.text
    await alerts.cycle(
        [
            paper("2611.30002", "State Space Models Revisited", upvotes=3),
            paper("2611.30003", "A Survey of Mamba", upvotes=9),
            paper("2611.30004", "Unrelated Robotics", upvotes=50),
        ]
    )
    assert [p.dest for p in alerts.adapter.posts] == [DM]
    alert = alerts.adapter.posts[0].reply
    assert alert.kind is ReplyKind.ALERT and "mamba" in alert.title.lower()
    assert [c.paper_id for c in alert.cards] == ["2611.30002"]  # not the old one, not surveys


async def test_each_paper_alerted_once_per_destination_through_restarts(store, alerts, clock):
    bot = alerts.bot()
    await bot.exec("watch diffusion")
    await bot.exec("watch video")
    await alerts.cycle([paper("2611.31001", "Video Diffusion", upvotes=1)])
    await alerts.cycle([paper("2611.31002", "Another Diffusion Paper")])
    # A restart: a new planner and relay over the same database.
    restarted = AlertPlanner(store, alerts.watches, alerts.outbox, clock=clock)
    clock.now += timedelta(minutes=15)
    await restarted.run()
    await alerts.relay.drain()
    sent = alerts.adapter.papers_to("U1")
    assert sorted(sent) == ["2611.31001", "2611.31002"]


async def test_watches_added_or_removed_on_another_replica_are_followed(store, alerts, clock):
    # A follower handles the command and invalidates only its own planner; the leader's
    # planner, which runs the alerts, must notice the change in the database.
    await alerts.cycle([paper("2611.32000", "Old News")])  # the planner ran: no watches
    elsewhere = await make_watch_elsewhere(store, clock, "diffusion")
    await alerts.cycle([paper("2611.32001", "Diffusion Everywhere")])
    assert alerts.adapter.papers_to("U1") == ["2611.32001"]

    assert await WatchStore(store.db, clock=clock).delete(elsewhere.id)
    await alerts.cycle([paper("2611.32002", "More Diffusion")])
    assert alerts.adapter.papers_to("U1") == ["2611.32001"]  # no alert after the unwatch


async def make_watch_elsewhere(store, clock, query):
    return await WatchStore(store.db, clock=clock).add(
        Watch(owner="U1", destination=DM, query=query)
    )


async def test_alerts_for_a_channel_need_manage_permission(store, alerts):
    bot = alerts.bot()
    denied = await bot.exec("watch robotics here", can_manage=False)
    assert denied.kind is ReplyKind.ERROR and "manage this channel" in denied.text
    ok = await bot.exec("watch robotics here")
    assert "this channel" in ok.text
    await alerts.cycle([paper("2611.32001", "Robotics Foundation Models")])
    assert [p.dest for p in alerts.adapter.posts] == [CHANNEL]


async def test_watches_lists_and_unwatch_removes(store, alerts):
    bot = alerts.bot()
    await bot.exec("watch diffusion")
    await bot.exec("watch robotics here")
    listing = await bot.exec("watches")
    assert "#1 `diffusion` → your DMs" in listing.text
    assert "#2 `robotics` → this channel" in listing.text
    assert "Stopped watching `diffusion`" in (await bot.exec("unwatch #1")).text
    assert "Stopped watching `robotics`" in (await bot.exec("unwatch robotics")).text
    assert "No watches yet" in (await bot.exec("watches")).text
    assert (await bot.exec("unwatch 99")).kind is ReplyKind.ERROR


async def test_broad_watches_get_a_warning_and_limits_hold(store, alerts):
    await store.upsert(
        [paper(f"2611.33{i:03d}", f"Model number {i}", age_days=i % 20) for i in range(40)]
    )
    bot = alerts.bot()
    broad = await bot.exec("watch model")
    assert "Heads up" in broad.text and "100%" in broad.text
    for i in range(24):
        await bot.exec(f"watch topic{i}")
    full = await bot.exec("watch one-too-many")
    assert full.kind is ReplyKind.ERROR and "25 watches" in full.text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("watch", "Type something"),
        ("watch -survey", "cannot only exclude"),
        ("unwatch", "Say which"),
    ],
)
async def test_bad_watch_input_gets_a_clear_sentence(alerts, line, message):
    reply = await alerts.bot().exec(line)
    assert reply.kind is ReplyKind.ERROR and message in reply.text


async def test_alerts_are_capped_with_a_count_of_the_rest(store, alerts):
    await alerts.bot().exec("watch agents")
    # Upvotes run against both insertion order (newest first) and id order: only the
    # upvote ranking puts the cards in this order.
    upvotes = [3, 50, 7, 20, 1, 40, 12, 9]
    await alerts.cycle(
        [paper(f"2611.34{i:03d}", f"Agents {i}", upvotes=n) for i, n in enumerate(upvotes)]
    )
    alert = alerts.adapter.posts[0].reply
    assert [card.paper_id for card in alert.cards] == [
        "2611.34001",
        "2611.34005",
        "2611.34003",
        "2611.34006",
        "2611.34007",
    ]
    assert "3 more" in alert.footer
    assert len(await alerts.outbox.delivered(DM, "alert")) == 8


async def test_a_destination_that_refuses_alerts_pauses_its_watches_until_asked_again(
    store, alerts, caplog
):
    bot = alerts.bot()
    await bot.exec("watch mamba")
    await bot.exec("watch diffusion")
    # The user closed their DMs: Discord 50007, Slack cannot_dm...
    alerts.adapter.fail_next(PostResult(PostStatus.FORBIDDEN, error="cannot DM this user"))
    await alerts.cycle([paper("2611.35001", "Mamba on a budget")])
    assert alerts.adapter.posts == []
    assert "paused 2 watches" in caplog.text

    listed = (await bot.exec("watches")).text
    assert listed.count("Paused: the bot is not allowed to post there (cannot DM") == 2
    assert "`/papers watch mamba` resumes it" in listed
    await alerts.cycle([paper("2611.35002", "Mamba again"), paper("2611.35003", "Diffusion")])
    assert alerts.adapter.posts == []  # paused: not even tried

    resumed = await bot.exec("watch mamba")
    assert "Resumed `mamba` (#1)" in resumed.text
    await alerts.cycle([paper("2611.35004", "Mamba, the sequel")])
    # Only the resumed watch, with what it missed of the last days (lost: nothing).
    (posted,) = alerts.adapter.posts
    assert sorted(c.paper_id for c in posted.reply.cards) == [
        "2611.35001",
        "2611.35002",
        "2611.35004",
    ]
    assert "Paused" in (await bot.exec("watches")).text  # diffusion still is


async def test_the_same_watch_twice_is_one_watch(store, alerts):
    bot = alerts.bot()
    await bot.exec("watch mamba")
    again = await bot.exec("watch  mamba")
    assert again.text.startswith("`mamba` (#1) is already watched")
    assert len(await alerts.watches.all()) == 1


async def test_a_watch_with_smart_quotes_matches_what_a_search_would(store, alerts):
    bot = alerts.bot()
    reply = await bot.exec("watch “state space”")
    assert '`"state space"`' in reply.text
    await alerts.cycle(
        [
            paper("2611.33001", "Space robotics: the state of the art"),
            paper("2611.33002", "State Space Models at Scale"),
        ]
    )
    assert alerts.adapter.papers_to("U1") == ["2611.33002"]
    searched = await bot.exec("search “state space”")
    assert [c.paper_id for c in searched.cards] == ["2611.33002"]
    assert "Stopped watching" in (await bot.exec("unwatch “state space”")).text


async def test_watches_listed_in_another_channel_name_their_channel(store, alerts):
    bot = alerts.bot()
    await bot.exec("watch robotics here")  # in CHANNEL
    elsewhere = Destination(CHANNEL.platform, CHANNEL.workspace, "C-ELSEWHERE")
    request = CommandRequest.from_text("watches", user="U1", destination=elsewhere)
    listed = await bot.commands.handle(request)
    assert f"`robotics` → channel {CHANNEL.channel} (yours)" in listed.text
    assert "this channel" in (await bot.exec("watches")).text


async def test_an_old_paper_stored_only_now_is_not_news(store, alerts):
    # e.g. found by a search's remote fallback, /papers paper, or a backfill
    await alerts.bot().exec("watch mamba")
    await alerts.cycle(
        [
            paper("2611.34001", "Mamba: the original", age_days=730),
            paper("2611.34002", "Mamba returns", age_days=1),
        ]
    )
    assert alerts.adapter.papers_to("U1") == ["2611.34002"]


async def test_a_poll_with_nothing_new_plans_without_a_write_per_watch(store, alerts):
    bot = alerts.bot()
    for query in ("diffusion", "video", "robots"):
        await bot.exec(f"watch {query}")
    await alerts.cycle([paper("2611.35001", "Video Diffusion Robots")])
    assert alerts.adapter.papers_to("U1") == ["2611.35001"]
    calls = []
    real = alerts.outbox.plan_alert

    async def counting(**kwargs):
        calls.append(kwargs["key"])
        return await real(**kwargs)

    alerts.outbox.plan_alert = counting  # type: ignore[method-assign]
    await alerts.cycle([])  # the same paper still in the window, already alerted
    assert calls == []
    await alerts.cycle([paper("2611.35002", "More Robots")])
    assert len(calls) == 1 and alerts.adapter.papers_to("U1") == ["2611.35001", "2611.35002"]

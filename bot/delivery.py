"""The relay: claims planned posts from the outbox, posts them through adapters, and
records what happened, so that nothing is lost and nothing is posted twice.

- A timeout is ``unknown``, never blindly re-sent: before the next attempt the relay asks
  the adapter whether the message exists (``find_posted``: Slack looks for the key in
  message metadata). Adapters without it re-post with the same key, which they must
  make idempotent (Discord: the nonce derived from the key).
- Rate limits wait for ``retry_after``; other transient errors back off exponentially
  with full jitter.
- A channel that is gone or forbids the bot pauses its subscription, and the watches
  alerting there, with the reason.
- A rejected token is the platform's problem, not the channel's: nothing is paused; that
  platform's posts wait (``AUTH_HOLD``, not tried meanwhile) and resume once it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from bot.digest import compose_post
from bot.metrics import Metrics
from bot.models import Destination, Paper, PostResult, PostStatus, Reply, utcnow
from bot.ports import ChatAdapter
from bot.store import PaperStore
from bot.store.outbox import ClaimedPost, Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.watches import WatchStore

log = logging.getLogger(__name__)

INTERNED_REPLIES = 64  # distinct replies remembered across batches (a fan-out has one)
# Posts of a batch started per event-loop turn: the first ones reach the network while the
# rest are still being started, instead of after all 500 first steps have run.
START_SLICE = 32
# Posts claimed first when work appears: the first messages leave within milliseconds
# instead of after a 500-row claim; each full claim doubles the next, up to the limit.
FIRST_CLAIM = 50

PAUSE_REASONS = {
    PostStatus.GONE: "the channel is gone or the bot was removed from it",
    PostStatus.FORBIDDEN: "the bot is not allowed to post there",
}
# How long a platform whose token was rejected is left alone. Its other posts are not
# even tried meanwhile: each would be one more rejected request (Discord bans an IP for
# 10,000 invalid requests in 10 minutes).
AUTH_HOLD = timedelta(minutes=10)


class Reconciler(Protocol):
    """An adapter that can tell whether a post with ``key`` exists (None: not found)."""

    async def find_posted(self, dest: Destination, key: str) -> PostResult | None: ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


@dataclass
class RelayStats:
    claimed: int = 0
    sent: int = 0
    reconciled: int = 0
    retried: int = 0
    unknown: int = 0
    failed: int = 0
    outcomes: list[str] = field(default_factory=list)


class Relay:
    """Posts what the outbox holds. Any number of replicas may run one."""

    def __init__(
        self,
        outbox: Outbox,
        papers: PaperStore,
        subscriptions: SubscriptionStore,
        adapters: Mapping[str, ChatAdapter],
        *,
        worker: str | None = None,
        concurrency: int = 2000,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=2),
        unknown_delay: timedelta = timedelta(seconds=20),
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        watches: WatchStore | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.metrics = metrics
        self._sleep = sleep
        self.watches = watches
        self.outbox = outbox
        self.papers = papers
        self.subscriptions = subscriptions
        self.adapters = adapters
        self.worker = worker or worker_name()
        # Posts in flight at once, across batches. A post holds its slot while it waits
        # for the platform's pacing (a digest's thread reply: a second after its header),
        # so this must exceed the channels of a fan-out for them to go out in parallel.
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        self.max_attempts = max_attempts
        self.lease = lease
        self.unknown_delay = unknown_delay
        self.clock = clock
        self.rng = rng or random.Random()
        self.kick = asyncio.Event()
        self._stopping = False
        # Equal replies composed by different batches, kept as one object: the adapters'
        # render caches then find them by identity, without comparing every card.
        self._replies: OrderedDict[Reply, Reply] = OrderedDict()
        self._held: dict[str, datetime] = {}  # platform -> until when (token rejected)

    def _intern(self, reply: Reply) -> Reply:
        try:
            known = self._replies.setdefault(reply, reply)
        except TypeError:  # an unhashable field (a list where a tuple belongs)
            return reply
        self._replies.move_to_end(known)
        while len(self._replies) > INTERNED_REPLIES:
            self._replies.popitem(last=False)
        return known

    def backoff(self, attempts: int) -> timedelta:
        """Full jitter over an exponential ceiling: up to 30 s, 60 s, … capped at 1 h."""
        ceiling = min(3600.0, 30.0 * 2 ** max(0, attempts - 1))
        return timedelta(seconds=self.rng.uniform(ceiling / 4, ceiling))

    async def run_once(self, *, limit: int = 500) -> RelayStats:
        """Claim due posts and deliver them concurrently; returns what happened."""
        claimed = await self.outbox.claim(worker=self.worker, limit=limit, lease=self.lease)
        self._in_flight += len(claimed)
        return await self._deliver_batch(claimed)

    async def _deliver_batch(self, claimed: list[ClaimedPost]) -> RelayStats:
        """Deliver claimed posts (already counted in ``_in_flight``) and record them."""
        stats = RelayStats(claimed=len(claimed))
        pending = len(claimed)
        unfinished = {post.id for post in claimed}
        keeper = asyncio.ensure_future(self._keep_claims(unfinished))
        try:
            # A digest fans out the same papers to many channels: load them once per batch.
            wanted = list(dict.fromkeys(i for post in claimed for i in post.paper_ids))
            papers = {p.id: p for p in await self.papers.get_many(wanted)} if wanted else {}
            replies = _ReplyCache(papers, self._intern)

            async def one(post: ClaimedPost) -> None:
                nonlocal pending
                try:
                    async with self._slots:
                        outcome = await self._deliver(post, replies)
                finally:
                    pending -= 1
                    self._in_flight -= 1
                    unfinished.discard(post.id)
                stats.outcomes.append(outcome)
                setattr(stats, outcome, getattr(stats, outcome) + 1)

            tasks: list[asyncio.Task[None]] = []
            try:
                for started, post in enumerate(claimed, 1):
                    tasks.append(asyncio.ensure_future(one(post)))
                    if started % START_SLICE == 0:
                        await asyncio.sleep(0)
            except BaseException:  # cancelled while starting: as gather would, cancel them
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
            await asyncio.gather(*tasks)
        finally:
            keeper.cancel()
            self._in_flight -= pending  # posts never started (the batch failed early)
        return stats

    async def _keep_claims(self, unfinished: set[int]) -> None:
        """Renew the claims of a batch's unfinished posts every third of the lease: a post
        can take longer than the lease (a long thread paced at one message a second, a
        Retry-After, a wait for a free slot), and another replica must not claim it again
        while it is still being posted."""
        every = self.lease.total_seconds() / 3
        while True:
            await self._sleep(every)
            try:
                await self.outbox.renew(sorted(unfinished), self.worker)
            except Exception as exc:  # the next renewal may get through; the lease is long
                log.warning("could not renew %d claims: %s", len(unfinished), exc)

    async def drain(self, *, limit: int = 500) -> RelayStats:
        """Run until nothing is due right now (used by ``paperboy digest --now`` and tests)."""
        total = RelayStats()
        while True:
            stats = await self.run_once(limit=limit)
            for name in ("claimed", "sent", "reconciled", "retried", "unknown", "failed"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            total.outcomes += stats.outcomes
            if stats.claimed == 0:
                return total

    async def run_forever(self, *, interval: float = 5.0, limit: int = 500) -> None:
        """Relay whenever kicked (a digest was planned) and every ``interval`` seconds.

        Batches overlap: while one waits on the platforms' pacing, the next is claimed,
        up to ``concurrency`` posts in flight, so a fan-out to more channels than one
        batch holds still goes out in parallel. The first claim after a quiet spell takes
        ``FIRST_CLAIM`` posts and each full one doubles the next, up to ``limit``. On
        ``stop`` the batches in flight finish.
        """
        batches: set[asyncio.Task[None]] = set()
        claim_size = FIRST_CLAIM
        try:
            while not self._stopping:
                # Cleared before claiming: a kick (or stop) that comes while we claim is
                # not lost, it ends the wait below at once.
                self.kick.clear()
                room = self.concurrency - self._in_flight
                if room > 0:
                    wanted = min(limit, room, claim_size)
                    try:
                        claimed = await self.outbox.claim(
                            worker=self.worker, limit=wanted, lease=self.lease
                        )
                    except Exception:
                        log.exception("relay pass failed")
                        claimed = []
                    if claimed:
                        self._in_flight += len(claimed)
                        batch = asyncio.create_task(self._deliver_in_background(claimed))
                        batches.add(batch)
                        batch.add_done_callback(batches.discard)
                    if len(claimed) == wanted:
                        claim_size = min(limit, claim_size * 2)
                        continue  # there may be more due
                    claim_size = FIRST_CLAIM
                # Nothing else is due now: wait for a kick or the interval, and, when the
                # posts in flight leave no room, for a batch to finish and make some.
                kicked = asyncio.ensure_future(self.kick.wait())
                wake = {kicked, *batches} if room <= 0 else {kicked}
                await asyncio.wait(wake, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                kicked.cancel()
        finally:
            if batches:
                await asyncio.gather(*batches, return_exceptions=True)

    async def _deliver_in_background(self, claimed: list[ClaimedPost]) -> None:
        try:
            await self._deliver_batch(claimed)
        except Exception:  # e.g. the database went away: the leases bring the posts back
            log.exception("relay batch failed")

    async def stop(self) -> None:
        self._stopping = True
        self.kick.set()

    async def _deliver(self, post: ClaimedPost, replies: _ReplyCache) -> str:
        adapter = self.adapters.get(post.destination.platform)
        now = self.clock()
        if adapter is None:
            await self.outbox.release(
                post.id,
                self.worker,
                now + timedelta(minutes=5),
                f"no {post.destination.platform} adapter runs here",
            )
            return "retried"
        held = self._held.get(post.destination.platform)
        if held is not None and now < held:
            await self.outbox.release(post.id, self.worker, held, "the token was rejected")
            return "retried"
        finder = getattr(adapter, "find_posted", None)
        if post.needs_reconcile and finder is not None:
            try:
                found = await finder(post.destination, post.key)
            except Exception as exc:  # cannot tell: try again later, never post blindly
                log.warning("could not reconcile %s: %s", post.key, exc)
                await self.outbox.mark_unknown(
                    post.id, self.worker, f"reconcile failed: {exc}", now + self.unknown_delay
                )
                return "unknown"
            if found is not None and found.ok:
                await self.outbox.mark_sent(post.id, self.worker, found.message_ids)
                log.info("%s was already posted; recorded it", post.key)
                return "reconciled"
        reply = replies.compose(post)
        try:
            result = await adapter.post(post.destination, reply, key=post.key)
        except Exception as exc:  # an adapter bug: we cannot know whether it posted
            log.exception("posting %s raised", post.key)
            result = PostResult(PostStatus.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
        return await self._record(post, result, now)

    async def _record(self, post: ClaimedPost, result: PostResult, now: datetime) -> str:
        status = result.status
        if self.metrics is not None:
            self.metrics.count_post(post.destination.platform, status.value)
        if status is PostStatus.SENT:
            await self.outbox.mark_sent(post.id, self.worker, result.message_ids)
            return "sent"
        error = result.error or status.value
        if status is PostStatus.UNKNOWN:
            await self.outbox.mark_unknown(post.id, self.worker, error, now + self.unknown_delay)
            log.warning("%s: outcome unknown (%s); will reconcile", post.key, error)
            return "unknown"
        if status is PostStatus.AUTH:
            self._hold_platform(post.destination.platform, error, now)
        if status in (PostStatus.RETRY, PostStatus.AUTH) and post.attempts < self.max_attempts:
            if status is PostStatus.AUTH:
                wait = AUTH_HOLD
            elif result.retry_after is not None:
                wait = timedelta(seconds=result.retry_after)
            else:
                wait = self.backoff(post.attempts)
            if result.message_ids:
                # Some parts are posted: whoever tries next (another replica, or this one
                # after a restart, which remember nothing) looks them up before posting.
                await self.outbox.mark_unknown(post.id, self.worker, error, now + wait)
            else:
                await self.outbox.mark_retry(post.id, self.worker, error, now + wait)
            return "retried"
        await self.outbox.mark_failed(post.id, self.worker, error)
        reason = PAUSE_REASONS.get(status)
        if reason is not None:
            await self._pause(post.destination, f"{reason} ({error})")
        else:
            log.error("giving up on %s: %s", post.key, error)
        return "failed"

    async def _pause(self, dest: Destination, reason: str) -> None:
        """Stop what posts to ``dest`` (its digest, its watches) and say what stopped."""
        stopped = []
        if await self.subscriptions.pause(dest, reason):
            stopped.append("its digest")
        paused = await self.watches.pause(dest, reason) if self.watches is not None else 0
        if paused:
            stopped.append(f"{paused} watch{'es' if paused > 1 else ''}")
        what = " and ".join(stopped) or "nothing (no digest or watch posts there any more)"
        log.warning("cannot post to %s: %s; paused %s", dest.key, reason, what)

    def _hold_platform(self, platform: str, error: str, now: datetime) -> None:
        """Leave ``platform`` alone for AUTH_HOLD (its token was rejected); say so once."""
        until = now + AUTH_HOLD
        if self._held.get(platform, now) <= now:
            log.error(
                "%s rejected the bot's token (%s): its posts wait until %s; check the token "
                "(subscriptions are not paused)",
                platform,
                error,
                until.strftime("%H:%M UTC"),
            )
        self._held[platform] = until


class _ReplyCache:
    """The Reply of each distinct (kind, heading, papers) in a batch, composed once: a
    digest fanned out to a thousand channels is one Reply, and adapters that memoise their
    rendering by Reply then render it once too."""

    def __init__(self, papers: dict[str, Paper], intern: Callable[[Reply], Reply]) -> None:
        self.papers = papers
        self._intern = intern
        self._replies: dict[tuple[str, bytes, tuple[str, ...]], Reply] = {}

    def compose(self, post: ClaimedPost) -> Reply:
        heading = orjson.dumps(post.heading, option=orjson.OPT_SORT_KEYS)
        key = (post.kind, heading, tuple(post.paper_ids))
        reply = self._replies.get(key)
        if reply is None:
            found = [self.papers[i] for i in post.paper_ids if i in self.papers]
            reply = compose_post(post.kind, post.heading, found)
            reply = self._replies[key] = self._intern(reply)
        return reply


def adapters_by_platform(adapters: list[Any]) -> dict[str, ChatAdapter]:
    return {a.name: a for a in adapters}

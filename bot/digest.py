"""Which papers a digest carries, and the digest as a platform-neutral Reply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.models import Card, Paper, Reply, ReplyKind, Subscription, utcnow
from bot.query import matches, paper_terms, parse
from bot.store import PaperStore
from bot.store.outbox import Outbox, PlannedPost

MAX_CANDIDATES = 500
MAX_ALERT_CARDS = 5


@dataclass(frozen=True, slots=True)
class DigestSelection:
    """The papers of one digest and the day (in the channel's zone) they were listed on."""

    day: datetime | None
    papers: list[Paper]


async def latest_day_selection(
    store: PaperStore,
    *,
    now: datetime,
    timezone: str = "UTC",
    top: int = 10,
    min_upvotes: int = 0,
) -> DigestSelection:
    """Today's trending papers, or the latest day's list when today has none yet."""
    zone = ZoneInfo(timezone)
    start = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    papers = await store.top(since=start, limit=top, min_upvotes=min_upvotes)
    if papers:
        return DigestSelection(start, papers)
    latest = await store.latest_submitted_at()
    if latest is None:
        return DigestSelection(None, [])
    day = latest.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    papers = await store.top(
        since=day, until=day + timedelta(days=1), limit=top, min_upvotes=min_upvotes
    )
    return DigestSelection(day, papers)


def digest_reply(selection: DigestSelection, *, empty_text: str | None = None) -> Reply:
    """The digest message: a dated heading and one card per paper, ranked."""
    if selection.day is None or not selection.papers:
        return Reply(
            title="Trending papers",
            text=empty_text or "No new papers today.",
            ephemeral=False,
            kind=ReplyKind.DIGEST,
        )
    day = selection.day.strftime("%a %d %b %Y")
    count = len(selection.papers)
    noun = "paper" if count == 1 else "papers"
    return Reply(
        title=f"Trending papers — {day}",
        text=f"{count} trending {noun} from Hugging Face Daily Papers",
        cards=tuple(Card.from_paper(p) for p in selection.papers),
        ephemeral=False,
        kind=ReplyKind.DIGEST,
    )


def compose_post(kind: str, heading: dict[str, Any], papers: list[Paper]) -> Reply:
    """The Reply of a planned post, rebuilt from its stored heading and current papers."""
    compact = heading.get("format") == "compact"
    footer = heading.get("footer")
    if kind == "alert" and len(papers) > MAX_ALERT_CARDS:
        rest = len(papers) - MAX_ALERT_CARDS
        papers = papers[:MAX_ALERT_CARDS]
        footer = f"…and {rest} more: /papers search {heading.get('query', '')} --since 2d"
    cards = tuple(
        replace(Card.from_paper(p), summary="") if compact else Card.from_paper(p) for p in papers
    )
    if not cards:
        return Reply(
            text=heading.get("empty_text") or "No new papers today.",
            ephemeral=False,
            kind=ReplyKind.DIGEST if kind == "digest" else ReplyKind.ALERT,
        )
    text = heading.get("text", "")
    if kind == "digest":
        noun = "paper" if len(cards) == 1 else "papers"
        text = f"{len(cards)} new trending {noun} from Hugging Face Daily Papers"
        if heading.get("topic"):
            text += f" on `{heading['topic']}`"
    return Reply(
        title=heading.get("title"),
        text=text,
        cards=cards,
        footer=footer,
        ephemeral=False,
        kind=ReplyKind.DIGEST if kind == "digest" else ReplyKind.ALERT,
    )


class DigestPlanner:
    """Chooses a subscription's papers for one slot and writes the post to the outbox.

    Candidates are the papers submitted to Daily Papers since the previous digest (plus
    ``lookback``, so a paper that started trending late still gets its chance), ranked by
    upvotes, filtered by the subscription's topic and minimum; the outbox then drops the
    ones the channel already had.
    """

    def __init__(
        self,
        papers: PaperStore,
        outbox: Outbox,
        *,
        lookback: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.papers = papers
        self.outbox = outbox
        self.lookback = lookback
        self.clock = clock

    async def plan(self, sub: Subscription, slot: datetime) -> PlannedPost | None:
        assert sub.id is not None
        now = self.clock()
        since = (sub.last_slot or slot - timedelta(days=1)) - self.lookback
        ranked = await self.papers.top(
            since=since,
            until=now,
            limit=MAX_CANDIDATES,
            min_upvotes=sub.min_upvotes,
            trending_only=not sub.include_arxiv,
        )
        if sub.topic:
            topic = parse(sub.topic)
            ranked = [p for p in ranked if matches(topic, paper_terms(p))]
        day = slot.astimezone(ZoneInfo(sub.timezone)).strftime("%a %d %b %Y")
        heading = {
            "title": f"Trending papers — {day}",
            "format": sub.format.value,
            "topic": sub.topic,
            "empty_text": f"No new trending papers for {day}.",
        }
        return await self.outbox.plan_digest(
            subscription_id=sub.id,
            destination=sub.destination,
            slot=slot,
            candidates=[p.id for p in ranked],
            top=sub.top,
            heading=heading,
            post_empty=sub.post_empty,
        )

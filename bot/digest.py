"""Which papers a digest carries, and the digest as a platform-neutral Reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import Card, Paper, Reply, ReplyKind
from bot.store import PaperStore


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

"""The ``/papers`` application command group: typed options, thin callbacks.

Each callback turns its typed options back into the command line the core understands
(the same text a console or Slack user would type) and hands it to the responder. The
core interprets everything.

Discord cannot set ``default_member_permissions`` per subcommand (only on the top-level
``/papers``), and lookups must stay open to everyone, so the Manage Channels rule for
``subscribe``/``unsubscribe``/``watch ... here`` is enforced by the core through
``CommandRequest.can_manage_channel``.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import available_timezones

import discord
from discord import app_commands

from adapters.discord.events import request_for
from adapters.discord.respond import InteractionResponder
from bot.models import CommandRequest
from bot.schedule import MAX_TOP

log = logging.getLogger(__name__)

MAX_CHOICES = 25  # Discord's limit for autocomplete answers

WatchSuggester = Callable[[CommandRequest], Awaitable[list[tuple[str, str]]]]
"""Given a ``watches`` request (``args`` = what the user typed so far), (label, value) pairs."""


def _quote(text: str) -> str:
    return shlex.quote(text) if any(c.isspace() for c in text) else text


def search_args(
    query: str, since: str | None = None, min_upvotes: int | None = None, page: int | None = None
) -> str:
    """``search`` options as the core's command line."""
    parts = [query.strip()]
    if since:
        parts.append(f"--since {_quote(since.strip())}")
    if min_upvotes is not None:
        parts.append(f"--min-upvotes {min_upvotes}")
    if page is not None:
        parts.append(f"--page {page}")
    return " ".join(parts)


def subscribe_args(
    at: str | None = None,
    timezone: str | None = None,
    days: str | None = None,
    top: int | None = None,
    min_upvotes: int | None = None,
    topic: str | None = None,
    format: str | None = None,
    empty: str | None = None,
) -> str:
    """``subscribe`` options as the core's command line (``topic`` last: it is a query)."""
    parts = []
    if at:
        parts.append(f"at {at.strip()}")
    if timezone:
        parts.append(f"tz {timezone.strip()}")
    if days:
        parts.append(days)
    if top is not None:
        parts.append(f"top {top}")
    if min_upvotes is not None:
        parts.append(f"min-upvotes {min_upvotes}")
    if format:
        parts.append(f"format {format}")
    if empty:
        parts.append(f"empty {empty}")
    if topic and topic.strip():
        parts.append(f"topic {topic.strip()}")
    return " ".join(parts)


def watch_args(query: str, here: bool = False) -> str:
    """``watch`` options as the core's command line."""
    return f"{query.strip()} here" if here else query.strip()


@lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def timezone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Up to 25 IANA zones containing what the user typed."""
    needle = current.strip().lower().replace(" ", "_")
    hits = [zone for zone in _zones() if needle in zone.lower()]
    hits.sort(key=lambda zone: (not zone.lower().startswith(needle), zone))
    return [app_commands.Choice(name=zone, value=zone) for zone in hits[:MAX_CHOICES]]


def build_papers_group(
    responder: InteractionResponder, *, watch_suggester: Callable[[], WatchSuggester | None]
) -> app_commands.Group:
    """The ``/papers`` group with every subcommand wired to ``responder``."""
    group = app_commands.Group(
        name="papers",
        description="Trending machine-learning papers from Hugging Face Daily Papers",
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )
    run = responder.run_command

    @group.command(name="help", description="What paperboy can do")
    async def help_(interaction: discord.Interaction) -> None:
        await run(interaction, "help", "")

    @group.command(name="today", description="Today's trending papers")
    async def today(interaction: discord.Interaction) -> None:
        await run(interaction, "today", "")

    @group.command(name="top", description="Most upvoted papers of the day, week or month")
    @app_commands.describe(period="Which period (default: day)")
    async def top(
        interaction: discord.Interaction, period: Literal["day", "week", "month"] = "day"
    ) -> None:
        await run(interaction, "top", period)

    @group.command(name="search", description="Search papers")
    @app_commands.describe(
        query='Words, "phrases", OR, -exclude, author:name, title:word',
        since="Only papers since: 7d, 4w or a date like 2025-01-01",
        min_upvotes="Only papers with at least this many upvotes",
        page="Page of results",
    )
    async def search(
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, 300],
        since: app_commands.Range[str, 1, 20] | None = None,
        min_upvotes: app_commands.Range[int, 0, 100_000] | None = None,
        page: app_commands.Range[int, 1, 100] | None = None,
    ) -> None:
        await run(interaction, "search", search_args(query, since, min_upvotes, page))

    @group.command(name="paper", description="One paper by arXiv id or URL")
    @app_commands.describe(paper="arXiv id (2401.01234) or an arXiv / Hugging Face URL")
    async def paper(
        interaction: discord.Interaction, paper: app_commands.Range[str, 1, 200]
    ) -> None:
        await run(interaction, "paper", paper)

    @group.command(name="similar", description="Papers like one paper (by meaning)")
    @app_commands.describe(paper="arXiv id (2401.01234) or an arXiv / Hugging Face URL")
    async def similar(
        interaction: discord.Interaction, paper: app_commands.Range[str, 1, 200]
    ) -> None:
        await run(interaction, "similar", paper)

    @group.command(name="subscribe", description="Daily digest in this channel (Manage Channels)")
    @app_commands.describe(
        at="Time of day, HH:MM (default 09:00)",
        timezone="Time zone, e.g. Europe/Berlin",
        days="Weekdays only or every day",
        top=f"How many papers (1-{MAX_TOP})",
        min_upvotes="Only papers with at least this many upvotes",
        topic="Only papers matching this query",
        format="Compact list or full cards",
        empty="On days without new papers: post a short note, or skip (default)",
    )
    async def subscribe(
        interaction: discord.Interaction,
        at: app_commands.Range[str, 1, 8] | None = None,
        timezone: app_commands.Range[str, 1, 64] | None = None,
        days: Literal["weekdays", "daily"] | None = None,
        top: app_commands.Range[int, 1, MAX_TOP] | None = None,
        min_upvotes: app_commands.Range[int, 0, 100_000] | None = None,
        topic: app_commands.Range[str, 1, 300] | None = None,
        format: Literal["compact", "full"] | None = None,
        empty: Literal["post", "skip"] | None = None,
    ) -> None:
        args = subscribe_args(at, timezone, days, top, min_upvotes, topic, format, empty)
        await run(interaction, "subscribe", args)

    @subscribe.autocomplete("timezone")
    async def subscribe_timezone(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return timezone_choices(current)

    @group.command(name="subscription", description="This channel's digest settings")
    async def subscription(interaction: discord.Interaction) -> None:
        await run(interaction, "subscription", "")

    @group.command(name="unsubscribe", description="Stop this channel's digest (Manage Channels)")
    async def unsubscribe(interaction: discord.Interaction) -> None:
        await run(interaction, "unsubscribe", "")

    @group.command(name="watch", description="Alert me when a new paper matches a query")
    @app_commands.describe(
        query='Same syntax as search, e.g. "state space" OR mamba -survey',
        here="Alert this channel instead of my DMs (Manage Channels)",
    )
    async def watch(
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, 300],
        here: bool = False,
    ) -> None:
        await run(interaction, "watch", watch_args(query, here))

    @group.command(name="watches", description="My watches and this channel's")
    async def watches(interaction: discord.Interaction) -> None:
        await run(interaction, "watches", "")

    @group.command(name="unwatch", description="Remove a watch")
    @app_commands.describe(watch="The watch's id or query")
    async def unwatch(
        interaction: discord.Interaction, watch: app_commands.Range[str, 1, 300]
    ) -> None:
        await run(interaction, "unwatch", watch)

    @unwatch.autocomplete("watch")
    async def unwatch_watch(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        suggester = watch_suggester()
        if suggester is None:
            return []
        try:
            pairs = await suggester(request_for(interaction, "watches", current))
        except Exception:
            log.exception("watch autocomplete failed")
            return []
        return [
            app_commands.Choice(name=label[:100] or value[:100], value=value[:100])
            for label, value in pairs[:MAX_CHOICES]
        ]

    return group


def tree_payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """The commands of ``tree`` as Discord would receive them on sync."""
    return [command.to_dict(tree) for command in tree.get_commands()]

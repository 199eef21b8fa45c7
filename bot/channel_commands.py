"""``/papers`` subcommands that change what a channel or person receives: digests
(``subscribe``, ``subscription``, ``unsubscribe``) and keyword watches (``watch``,
``watches``, ``unwatch``). Registered by :mod:`bot.commands`, which interprets them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.models import CommandRequest, Destination, Reply, ReplyKind, Subscription, Watch
from bot.options import UsageError, normalize_quotes
from bot.query import parse
from bot.schedule import describe, next_slot, parse_subscribe

if TYPE_CHECKING:
    from bot.commands import Commands


MANAGE_ONLY = "Only people who can manage this channel can change its digest."


async def subscribe(core: Commands, request: CommandRequest) -> Reply:
    assert core.subscriptions is not None
    if not request.can_manage_channel:
        return Reply(text=MANAGE_ONLY, kind=ReplyKind.ERROR)
    current = await core.subscriptions.get(request.destination)
    base = current or Subscription(
        destination=request.destination,
        timezone=core.timezone,
        top=core.default_digest_top,
        created_by=request.user,
    )
    sub = parse_subscribe(request.args, base)
    sub.origin = "command"
    saved = await core.subscriptions.save(sub)
    if core.on_subscriptions_changed is not None:
        await core.on_subscriptions_changed()
    verb = "Updated" if current else "Subscribed"
    upcoming = next_slot(saved, core.clock()).astimezone(ZoneInfo(saved.timezone))
    return Reply(
        text=f"{verb}: this channel gets trending papers at {describe(saved)}.\n"
        f"Next digest: {upcoming:%a %d %b %H:%M %Z}. Change it with /papers subscribe …, "
        "stop it with /papers unsubscribe.",
        kind=ReplyKind.INFO,
        ephemeral=False,
    )


async def subscription(core: Commands, request: CommandRequest) -> Reply:
    assert core.subscriptions is not None
    sub = await core.subscriptions.get(request.destination)
    if sub is None:
        return Reply(
            text="This channel has no digest. Start one with /papers subscribe "
            "(e.g. /papers subscribe at 09:00 tz Europe/Berlin top 5).",
            kind=ReplyKind.INFO,
        )
    lines = [f"This channel gets trending papers at {describe(sub)}."]
    if sub.paused_reason:
        lines.append(f"Paused: {sub.paused_reason}. Subscribe again to resume.")
    else:
        upcoming = next_slot(sub, core.clock()).astimezone(ZoneInfo(sub.timezone))
        lines.append(f"Next digest: {upcoming:%a %d %b %H:%M %Z}.")
    if sub.last_slot:
        last = sub.last_slot.astimezone(ZoneInfo(sub.timezone))
        lines.append(f"Last digest: {last:%a %d %b %H:%M %Z}.")
    if sub.origin == "config":
        lines.append("Set up in the bot's configuration (PAPERBOY_DIGESTS).")
    return Reply(text="\n".join(lines), kind=ReplyKind.INFO)


async def unsubscribe(core: Commands, request: CommandRequest) -> Reply:
    assert core.subscriptions is not None
    if not request.can_manage_channel:
        return Reply(text=MANAGE_ONLY, kind=ReplyKind.ERROR)
    if not await core.subscriptions.delete(request.destination):
        return Reply(text="This channel has no digest to stop.", kind=ReplyKind.INFO)
    if core.on_subscriptions_changed is not None:
        await core.on_subscriptions_changed()
    return Reply(
        text="Unsubscribed: no more digests here. /papers subscribe brings them back.",
        kind=ReplyKind.INFO,
        ephemeral=False,
    )


WATCH_LIMIT = 25
WATCH_WINDOW_DAYS = 30
BROAD_SHARE = 0.2


def _watch_destination(request: CommandRequest) -> Destination:
    """Where a watch alerts: this channel (``here``) or the user's direct messages."""
    dest = request.destination
    return Destination(dest.platform, dest.workspace, request.user, is_dm=True)


def _where(watch: Watch, here: Destination | None = None) -> str:
    """Where ``watch`` alerts, said from channel ``here`` (None: where it was made)."""
    if watch.destination.is_dm:
        return "your DMs"
    if here is None or watch.destination == here:
        return "this channel"
    return f"channel {watch.destination.channel}"


async def watch(core: Commands, request: CommandRequest) -> Reply:
    assert core.watches is not None
    words = request.args.split()
    here = bool(words) and words[-1].lower() == "here"
    # “Smart” quotes as search reads them: a watch matches exactly what a search would.
    text = normalize_quotes(" ".join(words[:-1] if here else words))
    query = parse(text)
    if here and not request.destination.is_dm:
        if not request.can_manage_channel:
            return Reply(
                text="Only people who can manage this channel can add a watch for it; "
                "without `here` the alerts come to you directly.",
                kind=ReplyKind.ERROR,
            )
        destination = request.destination
    else:
        destination = _watch_destination(request)
    visible = await core.watches.visible_to(request.user, request.destination)
    same = [w for w in visible if w.destination == destination and w.query == query.source]
    if same:
        return await _watch_again(core, same[0])
    platform, workspace = request.destination.platform, request.destination.workspace
    if await core.watches.count_for_owner(platform, workspace, request.user) >= WATCH_LIMIT:
        return Reply(
            text=f"You have {WATCH_LIMIT} watches, the most allowed. "
            "Remove one with /papers unwatch <id> (see /papers watches).",
            kind=ReplyKind.ERROR,
        )
    if here and await core.watches.count_for_destination(destination) >= WATCH_LIMIT:
        return Reply(
            text=f"This channel has {WATCH_LIMIT} watches, the most allowed.",
            kind=ReplyKind.ERROR,
        )
    since = core.clock() - timedelta(days=WATCH_WINDOW_DAYS)
    matched = await core.search.count_matching(query, since=since)
    total = await core.store.count_since(since)
    watch = await core.watches.add(Watch(request.user, destination, query.source))
    if core.on_watches_changed is not None:
        await core.on_watches_changed()
    lines = [
        f"Watching `{query.source}` (#{watch.id}): new matching papers go to {_where(watch)}.",
        f"It matched {matched} of the {total} papers of the last {WATCH_WINDOW_DAYS} days."
        if total
        else f"No papers of the last {WATCH_WINDOW_DAYS} days are stored yet to try it on.",
    ]
    if total >= 20 and matched / total >= BROAD_SHARE:
        lines.append(
            f"Heads up: that is {matched / total:.0%} of all papers, so expect many alerts. "
            'Narrow it with more words, a "phrase" or -exclusions.'
        )
    return Reply(text="\n".join(lines), kind=ReplyKind.INFO)


async def _watch_again(core: Commands, existing: Watch) -> Reply:
    """The same watch asked for again: resume it if it was paused, else say it exists."""
    assert core.watches is not None and existing.id is not None
    where = f"`{existing.query}` (#{existing.id})"
    if existing.paused_reason is None:
        return Reply(
            text=f"{where} is already watched: new matching papers go to {_where(existing)}.",
            kind=ReplyKind.INFO,
        )
    await core.watches.resume(existing.id)
    if core.on_watches_changed is not None:
        await core.on_watches_changed()
    return Reply(
        text=f"Resumed {where}: new matching papers go to {_where(existing)} again.",
        kind=ReplyKind.INFO,
    )


async def watches(core: Commands, request: CommandRequest) -> Reply:
    assert core.watches is not None
    found = await core.watches.visible_to(request.user, request.destination)
    if not found:
        return Reply(
            text="No watches yet. Add one with /papers watch <query> "
            '(e.g. /papers watch "state space" OR mamba -survey).',
            kind=ReplyKind.INFO,
        )
    lines = []
    for watch in found:
        mine = " (yours)" if watch.owner == request.user and not watch.destination.is_dm else ""
        line = f"#{watch.id} `{watch.query}` → {_where(watch, request.destination)}{mine}"
        if watch.paused_reason:
            line += (
                f"\n    Paused: {watch.paused_reason}. "
                f"`/papers watch {watch.query}{' here' if not watch.destination.is_dm else ''}` "
                "resumes it."
            )
        lines.append(line)
    return Reply(title="Watches", text="\n".join(lines), kind=ReplyKind.INFO)


async def unwatch(core: Commands, request: CommandRequest) -> Reply:
    assert core.watches is not None
    wanted = request.args.strip()
    if not wanted:
        raise UsageError("Say which watch: its #id or its query (see /papers watches).")
    found = await core.watches.visible_to(request.user, request.destination)
    number = wanted.lstrip("#")
    if number.isdigit():
        target = next((w for w in found if w.id == int(number)), None)
    else:
        typed = normalize_quotes(" ".join(wanted.split()))
        target = next((w for w in found if w.query == typed), None)
    if target is None:
        return Reply(
            text=f"No watch {wanted!r} here. /papers watches lists them.", kind=ReplyKind.ERROR
        )
    if target.owner != request.user and not request.can_manage_channel:
        return Reply(
            text="Only its owner or a channel manager can remove that watch.", kind=ReplyKind.ERROR
        )
    assert target.id is not None
    await core.watches.delete(target.id)
    if core.on_watches_changed is not None:
        await core.on_watches_changed()
    return Reply(text=f"Stopped watching `{target.query}` (#{target.id}).", kind=ReplyKind.INFO)

"""``/papers`` commands: ``CommandRequest -> Reply``, the only place commands are interpreted.

Every platform (console, Slack, Discord) calls :meth:`Commands.handle`; adapters only
translate platform input into a :class:`CommandRequest` and render the :class:`Reply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import channel_commands as channel
from bot.metrics import Metrics
from bot.models import (
    Button,
    Card,
    CommandRequest,
    Paper,
    Reply,
    ReplyKind,
    is_arxiv_id,
    normalize_paper_id,
    shorten,
    utcnow,
)
from bot.options import (
    MAX_MIN_UPVOTES,
    UsageError,
    echo,
    parse_positive_int,
    parse_since,
    split_options,
)
from bot.ports import PaperLookup, SourceError
from bot.query import QueryError, parse
from bot.schedule import SUBSCRIBE_USAGE
from bot.search import SearchEngine
from bot.store import PaperStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.watches import WatchStore

log = logging.getLogger(__name__)

PAGE_SIZE = 5
MAX_PAGE = 50
REMOTE_COOLDOWN_SECONDS = 60.0
# ``/papers paper`` shows the whole abstract up to this many characters (search cards
# carry a sentence or two); adapters still cut it to what their card can hold.
PAPER_SUMMARY_CHARS = 1200

Handler = Callable[["Commands", CommandRequest], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    run: Handler
    needs_subscriptions: bool = False
    needs_watches: bool = False


class Commands:
    """The command core over ``store`` and its ``search`` engine. ``lookup`` (Hugging Face)
    is optional: without it, only the store.

    ``remote_search``: whether a search with too few local results also asks ``lookup``
    (``paper <id>`` asks it either way).
    """

    def __init__(
        self,
        store: PaperStore,
        search: SearchEngine,
        *,
        lookup: PaperLookup | None = None,
        remote_search: bool = True,
        remote_budget: float = 2.0,
        timezone: str = "UTC",
        page_size: int = PAGE_SIZE,
        clock: Callable[[], datetime] = utcnow,
        subscriptions: SubscriptionStore | None = None,
        on_subscriptions_changed: Callable[[], Awaitable[None]] | None = None,
        default_digest_top: int = 10,
        watches: WatchStore | None = None,
        on_watches_changed: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        source_problem: Callable[[], str | None] | None = None,
    ) -> None:
        self.metrics = metrics
        # Why the paper source could not be polled last time (None: it could), so an
        # empty library can say why it is empty.
        self.source_problem = source_problem
        self.watches = watches
        self.on_watches_changed = on_watches_changed
        self.store = store
        self.search = search
        self.subscriptions = subscriptions
        self.on_subscriptions_changed = on_subscriptions_changed
        self.default_digest_top = default_digest_top
        self.timezone = timezone
        self.lookup = lookup
        self.remote_search = remote_search
        self.remote_budget = remote_budget
        self.zone = ZoneInfo(timezone)
        self.page_size = page_size
        self.clock = clock
        self._remote_failed_at: float | None = None
        self.subcommands: dict[str, Subcommand] = {
            c.name: c
            for c in _SUBCOMMANDS
            if subscriptions is not None or not c.needs_subscriptions
        }
        self.aliases = {
            "": "help",
            "?": "help",
            "find": "search",
            "show": "paper",
            "like": "similar",
            "more-like": "similar",
        }

    async def handle(self, request: CommandRequest) -> Reply:
        """Answer one command; never raises for bad input (the reply says what is wrong)."""
        name = self.aliases.get(request.subcommand, request.subcommand)
        command = self.subcommands.get(name)
        if command is None:
            return self.help(unknown=request.subcommand)
        timing = (
            self.metrics.time_command(name)
            if self.metrics is not None
            else contextlib.nullcontext()
        )
        with timing:
            try:
                return await command.run(self, request)
            except (UsageError, QueryError) as exc:
                return Reply(text=f"{exc}\nUsage: /papers {command.usage}", kind=ReplyKind.ERROR)

    async def suggest_watches(self, request: CommandRequest) -> list[tuple[str, str]]:
        """Autocomplete for ``unwatch``: the watches the user may remove, filtered by what
        was typed so far (``request.args``), as (label, value) pairs."""
        if self.watches is None:
            return []
        typed = request.args.strip().lstrip("#").lower()
        found = await self.watches.visible_to(request.user, request.destination)
        return [
            (f"#{w.id} {w.query}"[:100], str(w.id))
            for w in found
            if typed in f"{w.id} {w.query}".lower()
        ][:25]

    def help(self, *, unknown: str | None = None) -> Reply:
        lines = [f"/papers {c.usage} — {c.summary}" for c in self.subcommands.values()]
        lines += [
            "",
            'Queries: words (all must match) · "exact phrase" · mamba OR ssm · -exclude · '
            "author:name · title:word",
        ]
        intro = ""
        if unknown:
            intro = f"Unknown command `{echo(unknown)}`.\n"
            # The space left out: /paperstoday, /papersearch (the s shared).
            glued = [n for n in self.subcommands if unknown in (f"/papers{n}", f"/paper{n}")]
            if glued:
                intro = f"Unknown command `{echo(unknown)}`: did you mean `/papers {glued[0]}`?\n"
        return Reply(
            title="paperboy — trending ML papers from Hugging Face",
            text=intro + "\n".join(lines),
            kind=ReplyKind.HELP,
        )

    # --- remote fallback -------------------------------------------------------

    async def _remote_search(self, text: str) -> int:
        """Ask Hugging Face within the time budget and store what it returns.

        An unreachable Hugging Face costs at most ``remote_budget`` once, then is skipped
        for a minute, so local results are never held up by it repeatedly.
        """
        if self.lookup is None or not self.remote_search or self.remote_unreachable:
            return 0
        now = time.monotonic()
        try:
            papers = await asyncio.wait_for(
                self.lookup.search(text, limit=20), timeout=self.remote_budget
            )
        except (TimeoutError, SourceError) as exc:
            self._remote_failed_at = now
            reason = str(exc) or f"no answer within {self.remote_budget:g} s"
            log.info("remote search skipped for a minute: %s", reason)
            return 0
        if papers:
            await self.store.upsert(papers)
        return len(papers)

    @property
    def remote_unreachable(self) -> bool:
        """Whether Hugging Face failed to answer within the last minute (lookups are
        skipped meanwhile, and replies say so instead of implying it found nothing)."""
        failed = self._remote_failed_at
        return failed is not None and time.monotonic() - failed < REMOTE_COOLDOWN_SECONDS

    async def _remote_paper(self, paper_id: str) -> Paper | None:
        if self.lookup is None or self.remote_unreachable:
            return None
        now = time.monotonic()
        try:
            paper = await asyncio.wait_for(
                self.lookup.fetch_paper(paper_id), timeout=self.remote_budget * 2
            )
        except (TimeoutError, SourceError) as exc:
            self._remote_failed_at = now
            reason = str(exc) or f"no answer within {self.remote_budget * 2:g} s"
            log.info("remote lookup of %s failed (skipped for a minute): %s", paper_id, reason)
            return None
        if paper is not None:
            await self.store.upsert([paper])
        return paper

    # --- helpers ----------------------------------------------------------------

    def nothing_fetched(self) -> str:
        """What an empty library says: why, when the last poll failed."""
        problem = self.source_problem() if self.source_problem is not None else None
        if problem:
            return (
                f"No papers have been fetched yet: {problem.rstrip('.')}. paperboy keeps "
                "trying; papers appear here as soon as a poll gets through."
            )
        return "No papers have been fetched yet. Try again after the next poll."

    def _page(self, options: dict[str, str]) -> int:
        return parse_positive_int("page", options.get("page", "1"), minimum=1, maximum=MAX_PAGE)

    def _listing(
        self,
        papers: list[Paper],
        *,
        title: str,
        text: str,
        command: str,
        page: int,
        empty: str,
    ) -> Reply:
        has_more = len(papers) > self.page_size
        shown = papers[: self.page_size]
        if not shown:
            if page > 1:
                empty = f"Page {page} is past the end of this list."
            return Reply(title=title, text=empty, kind=ReplyKind.INFO)
        buttons = [Button("Share in channel", f"{command} --page {page}", share=True)]
        if has_more:
            buttons.append(Button("More", f"{command} --page {page + 1}"))
        first = (page - 1) * self.page_size + 1
        footer = f"Papers {first}–{first + len(shown) - 1}"
        return Reply(
            title=title,
            text=text,
            cards=tuple(Card.from_paper(p) for p in shown),
            footer=footer,
            buttons=tuple(buttons),
            first_number=first,
        )

    def day_label(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%a %d %b %Y")


# --- subcommands ------------------------------------------------------------------


async def _help(core: Commands, request: CommandRequest) -> Reply:
    return core.help()


async def _today(core: Commands, request: CommandRequest) -> Reply:
    parsed = split_options(request.args, ("page",))
    if parsed.rest:
        raise UsageError(f"`today` takes no words (got {parsed.rest!r}).")
    page = core._page(parsed.options)
    now = core.clock()
    start = now.astimezone(core.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (page - 1) * core.page_size
    papers = await core.store.top(since=start, limit=core.page_size + 1, offset=offset)
    note = ""
    # Nothing today: every page of `today` is the latest day's list instead.
    if not papers and (page == 1 or not await core.store.top(since=start, limit=1)):
        latest = await core.store.latest_submitted_at()
        if latest is not None:
            day = latest.astimezone(core.zone).replace(hour=0, minute=0, second=0, microsecond=0)
            papers = await core.store.top(
                since=day, until=day + timedelta(days=1), limit=core.page_size + 1, offset=offset
            )
            note = f"No papers yet today; the latest list is from {core.day_label(day)}."
            start = day
    return core._listing(
        papers,
        title=f"Trending papers — {core.day_label(start)}",
        text=note,
        command="today",
        page=page,
        empty=core.nothing_fetched(),
    )


_PERIODS = {"day": 1, "today": 1, "week": 7, "month": 30}


async def _top(core: Commands, request: CommandRequest) -> Reply:
    parsed = split_options(request.args, ("page", "min-upvotes"))
    period = parsed.rest.lower() or "week"
    if period not in _PERIODS:
        raise UsageError(f"Unknown period {parsed.rest!r}: use day, week or month.")
    page = core._page(parsed.options)
    min_upvotes = parse_positive_int(
        "min-upvotes", parsed.options.get("min-upvotes", "0"), maximum=MAX_MIN_UPVOTES
    )
    days = _PERIODS[period]
    papers = await core.store.top(
        since=core.clock() - timedelta(days=days),
        limit=core.page_size + 1,
        offset=(page - 1) * core.page_size,
        min_upvotes=min_upvotes,
    )
    label = {1: "the last 24 hours", 7: "the last 7 days", 30: "the last 30 days"}[days]
    return core._listing(
        papers,
        title=f"Top papers of {label}",
        text="",
        command=f"top {period}",
        page=page,
        empty=f"No papers in {label} yet.",
    )


async def _search(core: Commands, request: CommandRequest) -> Reply:
    parsed = split_options(request.args, ("since", "min-upvotes", "page"))
    query = parse(parsed.rest)
    page = core._page(parsed.options)
    since = (
        parse_since(parsed.options["since"], now=core.clock())
        if "since" in parsed.options
        else None
    )
    min_upvotes = (
        parse_positive_int("min-upvotes", parsed.options["min-upvotes"], maximum=MAX_MIN_UPVOTES)
        if "min-upvotes" in parsed.options
        else None
    )

    async def run() -> tuple[list[Paper], bool]:
        result = await core.search.search(
            query,
            limit=core.page_size + 1,
            offset=(page - 1) * core.page_size,
            since=since,
            min_upvotes=min_upvotes,
        )
        return result.papers, result.partial

    papers, partial = await run()
    if (
        page == 1
        and (partial or len(papers) < core.page_size)
        and await core._remote_search(query.source)
    ):
        papers, partial = await run()
    command = " ".join(
        ["search", parsed.rest] + [f"--{k} {v}" for k, v in parsed.options.items() if k != "page"]
    )
    text = f"No paper matches all of `{query.source}`; closest matches:" if partial else ""
    filters = []
    if since is not None:
        filters.append(f"since {since.astimezone(core.zone).date().isoformat()}")
    if min_upvotes:
        filters.append(f"with at least {min_upvotes} upvote{'' if min_upvotes == 1 else 's'}")
    scope = "".join(f" {f}" for f in filters)
    empty = f"No papers match `{query.source}`{scope}. Try fewer words or an OR."
    if core.remote_unreachable:
        empty = (
            f"No stored paper matches `{query.source}`{scope}, and Hugging Face can't be "
            "reached right now to search further. Try again later, or fewer words or an OR."
        )
    if filters and not papers and page == 1:
        unfiltered = await core.search.search(query, limit=1)
        if unfiltered.papers and not unfiltered.partial:
            if since is None:
                hint = "less upvoted ones do: try a lower --min-upvotes."
            elif not min_upvotes:
                hint = "older ones do: try a longer --since."
            else:
                hint = (
                    "some do without these filters: try a longer --since or a lower --min-upvotes."
                )
            empty = f"No stored paper matches `{query.source}`{scope}, but {hint}"
    return core._listing(
        papers,
        title=f"Search: {query.source}",
        text=text,
        command=command,
        page=page,
        empty=empty,
    )


async def _find_paper(core: Commands, raw: str, command: str) -> Paper | Reply:
    """The paper ``raw`` (an arXiv id or URL) names: stored, else asked of Hugging Face;
    a Reply saying why when there is none."""
    if not raw or " " in raw:
        raise UsageError(f"Give one arXiv id or paper URL, e.g. `/papers {command} 2509.04664`.")
    paper_id = normalize_paper_id(raw)
    paper = await core.store.get(paper_id)
    if paper is None and not is_arxiv_id(paper_id):
        raise UsageError(
            f"`{echo(raw)}` doesn't look like an arXiv id: give one like 2401.12345, "
            "or an arxiv.org or huggingface.co/papers URL."
        )
    paper = paper or await core._remote_paper(paper_id)
    if paper is None:
        text = (
            f"I don't have paper `{paper_id}`, and Hugging Face can't be reached right now "
            "to look it up. Try again in a minute."
            if core.remote_unreachable
            else f"I don't know paper `{paper_id}`, and Hugging Face didn't either."
            if core.lookup is not None
            else f"I don't have paper `{paper_id}`."
        )
        return Reply(text=text, kind=ReplyKind.INFO)
    return paper


async def _paper(core: Commands, request: CommandRequest) -> Reply:
    found = await _find_paper(core, request.args.strip(), "paper")
    if isinstance(found, Reply):
        return found
    card = Card.from_paper(found)
    abstract = " ".join((found.abstract or found.ai_summary or "").split())
    return Reply(
        title=found.title,
        cards=(replace(card, summary=shorten(abstract, PAPER_SUMMARY_CHARS)),),
        buttons=(Button("Share in channel", f"paper {found.id}", share=True),),
    )


async def _similar(core: Commands, request: CommandRequest) -> Reply:
    parsed = split_options(request.args, ("page",))
    page = core._page(parsed.options)
    found = await _find_paper(core, parsed.rest.strip(), "similar")
    if isinstance(found, Reply):
        return found
    papers, by_meaning = await core.search.similar(
        found, limit=core.page_size + 1, offset=(page - 1) * core.page_size
    )
    text = "" if by_meaning else "Found by the words of its title: its meaning is not indexed yet."
    return core._listing(
        papers,
        title=f"Similar to: {shorten(found.title, 120)}",
        text=text,
        command=f"similar {found.id}",
        page=page,
        empty="No similar papers are stored yet.",
    )


_SUBCOMMANDS = (
    Subcommand("today", "today", "today's trending papers", _today),
    Subcommand("top", "top [day|week|month]", "most upvoted papers of a period", _top),
    Subcommand(
        "search",
        "search <query> [--since 7d] [--min-upvotes N]",
        "find papers",
        _search,
    ),
    Subcommand("paper", "paper <arXiv id or URL>", "one paper in full", _paper),
    Subcommand("similar", "similar <arXiv id or URL>", "papers like this one", _similar),
    Subcommand(
        "subscribe", SUBSCRIBE_USAGE, "a daily digest in this channel", channel.subscribe, True
    ),
    Subcommand(
        "subscription", "subscription", "this channel's digest settings", channel.subscription, True
    ),
    Subcommand(
        "unsubscribe", "unsubscribe", "stop this channel's digest", channel.unsubscribe, True
    ),
    Subcommand(
        "watch",
        "watch <query> [here]",
        "alert me (or `here`) about new matches",
        channel.watch,
        needs_watches=True,
    ),
    Subcommand(
        "watches", "watches", "your watches and this channel's", channel.watches, needs_watches=True
    ),
    Subcommand(
        "unwatch", "unwatch <#id or query>", "remove a watch", channel.unwatch, needs_watches=True
    ),
    Subcommand("help", "help", "this help", _help),
)

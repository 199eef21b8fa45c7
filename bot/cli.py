"""The ``paperboy`` command line: run, fetch, import, search, digest, status, db, watch,
discord."""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bot.cli_index import index_app
from bot.models import MAX_DIGEST_TOP

if TYPE_CHECKING:
    from rich.progress import Progress

    from bot.config import Settings
    from bot.models import Paper

# Modules a command needs are imported by that command: `paperboy --help` and a mistyped
# option answer at once instead of loading pydantic, SQLAlchemy and discord.py first.

T = TypeVar("T")

MAX_SEARCH_LIMIT = 500
MAX_FETCH_DAYS = 3650  # Daily Papers began in May 2023; far more overflows date arithmetic

app = typer.Typer(
    name="paperboy",
    help="Trending ML papers from Hugging Face, delivered to Slack, Discord and your terminal.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
watch_app = typer.Typer(help="Keyword watches.", no_args_is_help=True)
app.add_typer(watch_app, name="watch")
app.add_typer(index_app, name="index")

err = Console(stderr=True)
out = Console()

# Platform-specific CLI groups live with their adapters and load only when used; `paperboy
# --help` lists them by the help line given here. Slack needs no setup commands.
ADAPTER_CLIS = {
    "discord": (
        "adapters.discord.cli:app",
        "Discord: invite the bot, register the /papers commands.",
    ),
}


def _console_renderer() -> Any:
    """The console adapter's Reply renderer: the CLI prints replies the way it does.
    Loaded by import path, like every adapter, so the core never imports one."""
    from bot.app import load_object

    return load_object("adapters.console.render:render_reply")


def _settings() -> Settings:
    from bot.config import config_problems, load_settings
    from bot.logs import setup_logging

    try:
        settings = load_settings()
        settings.create_database_dir()
    except Exception as exc:  # pydantic ValidationError, a data dir that cannot be created
        for problem in config_problems(exc):
            err.print(f"[red]Configuration error:[/] {escape(problem)}")
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    from bot.store import DatabaseUnavailable

    try:
        return asyncio.run(coro)
    except DatabaseUnavailable as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def paper_json(paper: Paper) -> dict[str, Any]:
    """A paper as the JSON the CLI prints (`--json`)."""
    return {
        "id": paper.id,
        "title": paper.title,
        "url": paper.url,
        "arxiv_url": paper.arxiv_url,
        "authors": list(paper.author_names),
        "upvotes": paper.upvotes,
        "comments": paper.comments,
        "published_at": paper.published_at.isoformat() if paper.published_at else None,
        "submitted_at": paper.submitted_at.isoformat() if paper.submitted_at else None,
        "summary": paper.ai_summary or paper.abstract,
        "keywords": list(paper.ai_keywords),
        "github": paper.github_repo,
        "project_page": paper.project_page,
    }


@app.command()
def run() -> None:
    """Run the bot: poll Hugging Face, serve commands on the configured platforms."""
    # A stop request during start-up (a rolling restart can send SIGTERM at any moment)
    # is remembered and honoured once the bot is up, so that it still stops cleanly.
    early_stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early_stop.append(signum))

    from bot.app import ConfigError, Paperboy

    settings = _settings()

    async def main() -> None:
        async with Paperboy(settings) as bot:
            if early_stop:
                bot.stopping.set()
            await bot.run()

    try:
        _run(main())
    except ConfigError as exc:
        err.print(f"[red]Configuration error:[/] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


@app.command()
def fetch(
    day: Annotated[str | None, typer.Option("--date", help="One day, YYYY-MM-DD (UTC).")] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Backfill this many days up to today.", min=1, max=MAX_FETCH_DAYS),
    ] = None,
) -> None:
    """Fetch Daily Papers from Hugging Face into the store.

    Stops at the first day Hugging Face cannot be reached; a day it answers with
    malformed data is skipped.
    """
    from bot.app import build_source, open_store
    from bot.cli_index import open_indexed
    from bot.ports import SourceError
    from bot.sources.http import RateLimited, SourceUnavailable

    settings = _settings()
    today = datetime.now(UTC).date()
    if day is not None and days is not None:
        err.print("[red]Use --date or --days, not both.[/]")
        raise typer.Exit(2)
    if day is not None:
        try:
            wanted = [date.fromisoformat(day)]
        except ValueError:
            err.print(f"[red]--date takes YYYY-MM-DD, not {escape(repr(day))}.[/]")
            raise typer.Exit(2) from None
        if wanted[0] > today + timedelta(days=1):
            err.print(f"[red]--date {wanted[0]} is in the future: there are no papers yet.[/]")
            raise typer.Exit(2)
    else:
        wanted = [today - timedelta(days=i) for i in range(days or 1)]

    async def main() -> int:
        db, store = await open_store(settings)
        source = build_source(settings)
        failures = fetched = 0
        try:
            with _progress() as progress:
                task = progress.add_task("Fetching days", total=len(wanted))
                for one in wanted:
                    try:
                        papers = await source.fetch_day(one)
                    except SourceError as exc:
                        failures += 1
                        if isinstance(exc, RateLimited | SourceUnavailable) and len(wanted) > 1:
                            # Every other day would wait for the same retries, and fail.
                            err.print(
                                f"[red]{one}: {escape(str(exc))}; stopped after fetching "
                                f"{fetched} of {len(wanted)} days.[/]"
                            )
                            break
                        err.print(f"[red]{one}: {escape(str(exc))}[/]")
                    else:
                        result = await store.upsert(papers)
                        fetched += 1
                        err.print(
                            f"{one}: {len(papers)} paper{'' if len(papers) == 1 else 's'} "
                            f"({result.inserted} new, {result.updated} updated)"
                        )
                    progress.advance(task)
            await (await open_indexed(settings, store)).close()
        finally:
            await source.close()
            await db.close()
        return failures

    if _run(main()):
        raise typer.Exit(1)


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="JSON files, each an array of papers: a saved /api/daily_papers or "
            "/api/papers/search answer. Importing a file again changes nothing.",
            show_default=False,
        ),
    ],
) -> None:
    """Import saved Hugging Face JSON (daily papers or search results). Idempotent."""
    from bot.app import open_store
    from bot.cli_index import open_indexed
    from bot.sources.huggingface import parse_daily_items
    from bot.sources.saved import read_saved_items

    settings = _settings()

    async def main() -> int:
        db, store = await open_store(settings)
        totals = {"inserted": 0, "updated": 0, "unchanged": 0, "skipped": 0}
        bad_files = 0
        try:
            for path in files:
                try:
                    papers, errors = parse_daily_items(read_saved_items(path))
                except OSError as exc:
                    err.print(f"[red]{escape(f'{path}: {exc.strerror or exc}')}[/]")
                    bad_files += 1
                    continue
                except ValueError as exc:
                    err.print(f"[red]{escape(str(exc))}[/]")
                    bad_files += 1
                    continue
                for line in errors[:10]:
                    err.print(f"[yellow]{escape(f'{path}: skipped {line}')}[/]")
                if len(errors) > 10:
                    more = f"{path}: … and {len(errors) - 10} more skipped"
                    err.print(f"[yellow]{escape(more)}[/]")
                totals["skipped"] += len(errors)
                with _progress() as progress:
                    task = progress.add_task(f"Importing {path.name}", total=len(papers))
                    result = await store.upsert(
                        papers, progress=functools.partial(progress.advance, task)
                    )
                totals["inserted"] += result.inserted
                totals["updated"] += result.updated
                totals["skipped"] += result.skipped
                # Stored already, exactly as given: counted in none of them.
                totals["unchanged"] += (
                    len(papers) - result.skipped - result.inserted - result.updated
                )
            await (await open_indexed(settings, store)).close()
        finally:
            await db.close()
        err.print(
            f"Imported: {totals['inserted']} new, {totals['updated']} updated, "
            f"{totals['unchanged']} unchanged, {totals['skipped']} skipped."
        )
        return bad_files

    if _run(main()):
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='e.g. diffusion video, "state space" OR mamba')],
    limit: Annotated[int, typer.Option(help="1-500")] = 10,
    since: Annotated[str | None, typer.Option(help="7d, 24h or 2025-01-01")] = None,
    min_upvotes: Annotated[int | None, typer.Option(help="0-1000000")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print a JSON array (errors: {"error": "..."}).')
    ] = False,
) -> None:
    """Search the local store with the /papers query language.

    A query starting with "-" needs -- before it, or it is read as an option:
    paperboy search -- '-survey transformer'
    """
    from bot.app import open_store
    from bot.cli_index import open_indexed
    from bot.models import utcnow
    from bot.options import MAX_MIN_UPVOTES, UsageError, check_range, parse_since
    from bot.query import QueryError, parse

    settings = _settings()
    try:
        check_range("limit", limit, minimum=1, maximum=MAX_SEARCH_LIMIT)
        if min_upvotes is not None:
            check_range("min-upvotes", min_upvotes, maximum=MAX_MIN_UPVOTES)
        parsed = parse(query)
        since_at = parse_since(since, now=utcnow()) if since else None
    except (QueryError, UsageError) as exc:
        if as_json:  # still machine-readable
            sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        else:
            err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None

    async def main() -> Any:
        db, store = await open_store(settings)
        try:
            engine = await open_indexed(settings, store, semantic=True)
            try:
                return await engine.search(
                    parsed, limit=limit, since=since_at, min_upvotes=min_upvotes
                )
            finally:
                await engine.close()
        finally:
            await db.close()

    result = _run(main())
    if as_json:
        sys.stdout.write(json.dumps([paper_json(p) for p in result.papers], indent=2) + "\n")
        return
    render_reply = _console_renderer()
    from bot.models import Card, Reply

    text = "No paper matches all terms; closest matches:" if result.partial else ""
    reply = Reply(
        title=f"Search: {parsed.source}",
        text=text,
        cards=tuple(Card.from_paper(p) for p in result.papers),
    )
    if not result.papers:
        reply = Reply(text=f"No papers match {parsed.source!r}.")
    for renderable in render_reply(reply):
        out.print(renderable)


@app.command()
def digest(
    preview: Annotated[
        bool, typer.Option("--preview", help="Show the digest, post nothing.")
    ] = False,
    now: Annotated[bool, typer.Option("--now", help="Run subscribed digests immediately.")] = False,
    channel: Annotated[
        str | None, typer.Option(help="With --now: only this channel id (or platform:ws:ch).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    top: Annotated[int | None, typer.Option(min=1, max=MAX_DIGEST_TOP)] = None,
) -> None:
    """Preview the digest (--preview), or run subscribed digests now (--now)."""
    settings = _settings()
    if preview == now:
        err.print("Say --preview (show the digest) or --now (run subscribed digests).")
        raise typer.Exit(2)
    if now:
        _run_digests_now(settings, channel)
        return
    _preview_digest(settings, as_json=as_json, top=top)


def _preview_digest(settings: Settings, *, as_json: bool, top: int | None) -> None:
    from bot.app import open_store
    from bot.digest import digest_reply, latest_day_selection
    from bot.models import utcnow

    async def main() -> Any:
        db, store = await open_store(settings)
        try:
            return await latest_day_selection(
                store, now=utcnow(), timezone=settings.timezone, top=top or settings.digest_top
            )
        finally:
            await db.close()

    selection = _run(main())
    if as_json:
        payload = {
            "day": selection.day.date().isoformat() if selection.day else None,
            "papers": [paper_json(p) for p in selection.papers],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    render_reply = _console_renderer()

    empty = "No papers in the store yet: run `paperboy fetch` or `paperboy import FILE`."
    for renderable in render_reply(digest_reply(selection, empty_text=empty)):
        out.print(renderable)


def _run_digests_now(settings: Settings, channel: str | None) -> None:
    from bot.app import Paperboy
    from bot.models import utcnow

    async def main() -> int:
        async with Paperboy(settings) as bot:
            subs = [
                s
                for s in await bot.subscriptions.all(include_paused=False)
                if channel is None or channel in (s.destination.channel, s.destination.key)
            ]
            if not subs:
                err.print(
                    "No active subscription matches. Subscribe a channel with /papers subscribe "
                    "or list digests in PAPERBOY_DIGESTS."
                )
                return 1
            # The adapters only post here: started, they would also take commands (a
            # second Socket Mode connection or Discord gateway session beside the bot's,
            # the console's prompt) for as long as this runs.
            if await bot.scheduler.leader.try_acquire():  # no bot runs on this database
                await bot.recover_abandoned_posts()
            moment = utcnow()
            for sub in subs:
                assert sub.id is not None
                planned = await bot.scheduler.run_digest(sub.id, slot=moment)
                count = len(planned.paper_ids) if planned else 0
                err.print(f"{sub.destination.key}: {count} new papers planned")
            stats = await bot.relay.drain()
            err.print(
                f"Posted {stats.sent}, reconciled {stats.reconciled}, retrying {stats.retried}, "
                f"unknown {stats.unknown}, failed {stats.failed}."
            )
            return 1 if stats.failed else 0

    if _run(main()):
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Subscriptions, their next run, and how deliveries are going."""
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from bot.app import open_search, open_store
    from bot.cli_index import describe as describe_search
    from bot.models import utcnow
    from bot.schedule import describe, next_slot
    from bot.store.outbox import Outbox
    from bot.store.subscriptions import SubscriptionStore

    settings = _settings()

    async def main() -> tuple[Any, Any, Any, Any]:
        db, store = await open_store(settings)
        try:
            subs = await SubscriptionStore(db).all()
            outbox = Outbox(db)
            engine = await open_search(settings, store, model="local")
            try:
                await engine.semantic.wait_loaded()
                await engine.semantic.refresh(force=True)
                search_status = await engine.status()
            finally:
                await engine.close()
            return subs, await outbox.counts(), await outbox.recent(10), search_status
        finally:
            await db.close()

    subs, counts, recent, search_status = _run(main())
    table = Table(title="Subscriptions", show_lines=False)
    for column in ("channel", "digest", "next run", "last run", "state"):
        table.add_column(column)
    moment = utcnow()
    for sub in subs:
        zone = ZoneInfo(sub.timezone)
        upcoming = (
            "—"
            if sub.paused_reason
            else f"{next_slot(sub, moment).astimezone(zone):%a %d %b %H:%M %Z}"
        )
        last = f"{sub.last_slot.astimezone(zone):%a %d %b %H:%M}" if sub.last_slot else "never"
        state = f"paused: {sub.paused_reason}" if sub.paused_reason else "active"
        table.add_row(sub.destination.key, describe(sub), upcoming, last, state)
    out.print(table if subs else "No subscriptions yet.")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing yet"
    out.print(f"Deliveries: {summary}")
    for line in describe_search(search_status):
        out.print(line)
    if recent:
        posts = Table(title="Latest deliveries")
        for column in ("when", "to", "kind", "papers", "status", "error"):
            posts.add_column(column)
        for row in recent:
            posts.add_row(
                f"{row['created_at']:%Y-%m-%d %H:%M}",
                f"{row['platform']}:{row['channel']}",
                row["kind"],
                str(row["papers"]),
                row["status"],
                (row["error"] or "")[:60],
            )
        out.print(posts)


@watch_app.command("test")
def watch_test(
    query: Annotated[str, typer.Argument(help='e.g. "state space" OR mamba -survey')],
    days: Annotated[int, typer.Option(min=1, max=36500, help="Look this far back.")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Show what a watch with this query would have matched in the last days.

    A query starting with "-" needs -- before it: paperboy watch test -- '-survey llm'
    """
    render_reply = _console_renderer()
    from bot.app import open_store
    from bot.cli_index import open_indexed
    from bot.models import Card, Reply, utcnow
    from bot.query import QueryError, parse

    settings = _settings()
    try:
        parsed = parse(query)
    except QueryError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    since = utcnow() - timedelta(days=days)

    async def main() -> tuple[int, int, Any]:
        db, store = await open_store(settings)
        try:
            engine = await open_indexed(settings, store)
            try:
                matched = await engine.count_matching(parsed, since=since)
                found = await engine.full_matches(parsed, limit=limit, since=since)
            finally:
                await engine.close()
            return matched, await store.count_since(since), found
        finally:
            await db.close()

    matched, total, found = _run(main())
    share = f" ({matched / total:.0%})" if total else ""
    text = (
        f"Matched {matched} of the {total} papers of the last {days} days{share}."
        if total
        else f"No papers of the last {days} days are stored yet to try it on."
    )
    cards = tuple(Card.from_paper(p) for p in found)
    for renderable in render_reply(Reply(title=f"Watch: {parsed.source}", text=text, cards=cards)):
        out.print(renderable)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (run automatically on start too)."""
    from bot.app import open_store

    settings = _settings()

    async def main() -> None:
        db, _ = await open_store(settings)
        await db.close()

    _run(main())
    err.print("Database is up to date.")


def _mount_adapter_clis(argv: list[str]) -> None:
    """Load ``paperboy discord …`` when asked for; for ``paperboy --help``, list it."""
    for name, (path, help_line) in ADAPTER_CLIS.items():
        if name not in argv[1:2]:
            app.add_typer(typer.Typer(), name=name, help=help_line)
            continue
        from bot.app import load_object  # the adapter's own imports dwarf bot.app's

        try:
            app.add_typer(load_object(path), name=name)
        except (ImportError, AttributeError):
            err.print(f"[red]The {name} commands are not available in this install.[/]")
            raise SystemExit(2) from None


def main() -> None:
    _mount_adapter_clis(sys.argv)
    app()


if __name__ == "__main__":
    main()

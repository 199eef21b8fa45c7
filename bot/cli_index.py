"""``paperboy index ...``: the search indexes seen from the command line, and the helper
every other command uses to search an index that has caught up with the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.search import SearchEngine
    from bot.store import PaperStore

index_app = typer.Typer(
    help="The search indexes (derived from the database).", no_args_is_help=True
)


async def open_indexed(settings: Settings, store: PaperStore) -> SearchEngine:
    """The search engine over ``store``, caught up first (with a progress bar when there
    is much to index). When a running bot holds the index, it keeps it current instead."""
    from bot.app import open_search
    from bot.cli import _progress, err

    engine = await open_search(settings, store)
    behind = await engine.lexical.behind()
    if not behind:
        return engine
    if not engine.owner:
        await engine.catch_up()  # reloads what the running bot committed
        return engine
    with _progress() as progress:
        task = progress.add_task("Indexing papers for search", total=behind)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        indexed = await engine.catch_up(advance)
    if indexed >= 1000:
        err.print(f"Indexed {indexed:,} papers for search.")
    return engine


@index_app.command("rebuild")
def rebuild() -> None:
    """Build the search index again from every stored paper (searches keep working on
    the old one meanwhile; a running bot must be stopped first)."""
    from bot.app import open_search, open_store
    from bot.cli import _progress, _run, _settings, err

    settings = _settings()

    async def main() -> int | None:
        db, store = await open_store(settings)
        try:
            engine = await open_search(settings, store)
            try:
                if not engine.owner:
                    return None
                with _progress() as progress:
                    task = progress.add_task("Rebuilding the search index", total=None)

                    def advance(done: int, total: int) -> None:
                        progress.update(task, completed=done, total=total)

                    return await engine.rebuild(advance)
            finally:
                await engine.close()
        finally:
            await db.close()

    done = _run(main())
    if done is None:
        err.print(
            "[red]A running paperboy holds the search index (it keeps it current); "
            "stop it to rebuild.[/]"
        )
        raise typer.Exit(1)
    err.print(f"Search index rebuilt: {done:,} papers.")


def describe(status: dict[str, Any]) -> str:
    """One line about the search indexes for ``paperboy status``."""
    line = f"Search index: {status['lexical_papers']:,} papers"
    behind = status.get("lexical_behind") or 0
    if behind:
        line += f", {behind:,} changes still to index"
    return escape(line)


__all__ = ["describe", "index_app", "open_indexed"]

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


async def open_indexed(
    settings: Settings, store: PaperStore, *, semantic: bool = False
) -> SearchEngine:
    """The search engine over ``store``, caught up first (with a progress bar when there
    is much to index). When a running bot holds the index, it keeps it current instead.
    ``semantic``: load the embedding model too, if it is on disk (never downloaded
    here: ``paperboy run`` or ``paperboy index embed`` do that)."""
    from bot.app import open_search
    from bot.cli import _progress, err

    engine = await open_search(settings, store, model="local" if semantic else "none")
    await engine.semantic.wait_loaded()
    behind = await engine.lexical.behind()
    if not behind:
        await engine.semantic.refresh(force=True)
        return engine
    if not engine.owner:
        await engine.catch_up()  # reloads what the running bot committed
        return engine
    with _progress() as progress:
        task = progress.add_task("Indexing papers for search", total=behind)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        indexed = await engine.catch_up(advance)
    await engine.semantic.refresh(force=True)
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


@index_app.command("embed")
def embed() -> None:
    """Embed every stored paper that has no embedding yet, now (the running bot does it
    in the background after each poll; this downloads the model first if needed)."""
    from bot.app import open_search, open_store
    from bot.cli import _progress, _run, _settings, err

    settings = _settings()
    if not settings.semantic_search:
        err.print("[red]Semantic search is off (PAPERBOY_SEMANTIC_SEARCH=false).[/]")
        raise typer.Exit(2)

    async def main() -> tuple[int, str | None]:
        db, store = await open_store(settings)
        try:
            engine = await open_search(settings, store, model="download")
            try:
                with _progress() as progress:
                    task = progress.add_task("Loading the embedding model", total=None)
                    await engine.semantic.wait_loaded()
                    status = engine.semantic.status
                    if status.state != "ready":
                        return 0, status.reason or status.state
                    await engine.semantic.refresh(force=True)
                    status = engine.semantic.status
                    progress.update(
                        task,
                        description=f"Embedding papers ({status.model})",
                        total=status.papers - status.embedded,
                        completed=0,
                    )
                    done = await engine.semantic.embed_pending(
                        lambda papers: progress.advance(task, papers)
                    )
                return done, None
            finally:
                await engine.close()
        finally:
            await db.close()

    done, problem = _run(main())
    if problem is not None:
        err.print(f"[red]The embedding model could not be loaded: {escape(problem)}[/]")
        raise typer.Exit(1)
    err.print(f"Embedded {done:,} papers.")


def describe(status: dict[str, Any]) -> list[str]:
    """Lines about the search indexes for ``paperboy status``."""
    line = f"Search index: {status['lexical_papers']:,} papers"
    behind = status.get("lexical_behind") or 0
    if behind:
        line += f", {behind:,} changes still to index"
    lines = [line]
    state = status.get("semantic")
    if state == "off":
        lines.append("Semantic search: off (PAPERBOY_SEMANTIC_SEARCH=false)")
    elif state == "unavailable":
        lines.append(f"Semantic search: unavailable, words only ({status.get('semantic_reason')})")
    elif state == "ready":
        embedded, papers = status.get("embedded") or 0, status.get("papers") or 0
        share = f" ({embedded / papers:.0%})" if papers else ""
        lines.append(
            f"Semantic search: {status.get('semantic_model')}, "
            f"{embedded:,} of {papers:,} papers embedded{share}"
        )
    return [escape(line) for line in lines]


__all__ = ["describe", "embed", "index_app", "open_indexed"]

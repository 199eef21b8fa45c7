"""Composition root: settings -> store, sources, command core, adapters, background work.

Adapters are found through an explicit mapping of names to import paths and imported only
when configured, so the core never imports a platform SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.commands import Commands
from bot.config import Settings, StaticDigest
from bot.delivery import Relay
from bot.digest import DigestPlanner, digest_reply, latest_day_selection
from bot.leader import LeaderLock
from bot.metrics import Metrics
from bot.models import Destination, DigestDays, DigestFormat, Subscription, utcnow
from bot.poller import Poller, PollResult
from bot.ports import ChatAdapter
from bot.scheduler import Scheduler
from bot.search import SearchEngine
from bot.search.embedding import Embedder, FastEmbedder
from bot.sources.arxiv import ArxivSource, unknown_categories
from bot.sources.huggingface import HuggingFaceSource
from bot.store import Database, PaperStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.watches import WatchStore
from bot.watches import AlertPlanner

log = logging.getLogger(__name__)

ADAPTERS: dict[str, str] = {
    "console": "adapters.console:ConsoleAdapter",
    "slack": "adapters.slack:SlackAdapter",
    "discord": "adapters.discord:DiscordAdapter",
}

CONSOLE_DESTINATION = Destination(platform="console", workspace="local", channel="console")


@contextlib.contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Keep what is alive now (modules, SDK clients, caches: what start-up built) out of
    the garbage collector's full passes while serving. Each pass would rescan all of it,
    about 100 ms: a pause in the middle of a digest fan-out."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class ConfigError(ValueError):
    """A configuration that cannot work; the message says which setting to fix."""


def load_object(path: str) -> Any:
    """``"package.module:attr"`` -> the attribute, importing the module."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def adapter_names(settings: Settings) -> list[str]:
    """The adapters to run: ``PAPERBOY_ADAPTERS``, else those with a token, else console."""
    if settings.adapters:
        names = [n.strip().lower() for n in settings.adapters.split(",") if n.strip()]
        unknown = [n for n in names if n not in ADAPTERS]
        if unknown:
            raise ConfigError(
                f"PAPERBOY_ADAPTERS names unknown adapters {unknown}; known: {sorted(ADAPTERS)}"
            )
        return names
    names = []
    if settings.slack_bot_token or settings.slack_webhook_url:
        names.append("slack")
    if settings.discord_token or settings.discord_webhook_url:
        names.append("discord")
    return names or ["console"]


def build_adapter(name: str, settings: Settings) -> ChatAdapter:
    adapter: ChatAdapter = load_object(ADAPTERS[name]).from_settings(settings)
    return adapter


async def open_store(settings: Settings) -> tuple[Database, PaperStore]:
    """Connect to the configured database and bring its schema up to date."""
    db = await Database.connect(settings.effective_database_url)
    await db.upgrade()
    return db, PaperStore(db)


def search_directory(settings: Settings) -> Path | None:
    """Where the search indexes live: ``search/`` in the data directory (None, in memory,
    for an in-memory SQLite database, which no other process can share either)."""
    url = make_url(settings.effective_database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "memory" in database
    ):
        return None
    return settings.data_dir / "search"


def embedding_model(settings: Settings, *, download: bool) -> Callable[[], Embedder] | None:
    """What loads the configured embedding model (None: semantic search is off);
    ``download``: fetch it when it is not on disk yet."""
    if not settings.semantic_search:
        return None

    def load() -> Embedder:
        # One ONNX Runtime thread: embedding a backlog leaves the other core to the bot.
        return FastEmbedder(
            settings.embedding_model,
            cache_dir=settings.data_dir / "models",
            model_path=settings.embedding_model_path,
            threads=1,
            download=download,
        )

    return load


async def open_search(
    settings: Settings, store: PaperStore, *, model: str = "download"
) -> SearchEngine:
    """The search engine over ``store``, its indexes opened (not yet caught up) and the
    embedding model loading in the background. ``model``: ``download`` (fetch it if
    needed: the bot), ``local`` (only if on disk: a quick command) or ``none``."""
    load = None if model == "none" else embedding_model(settings, download=model == "download")
    engine = SearchEngine(store, search_directory(settings), embedder=load)
    return await engine.open()


def build_source(settings: Settings) -> HuggingFaceSource:
    return HuggingFaceSource(
        settings.hf_api_url, token=settings.hf_token, timeout=settings.http_timeout
    )


def build_arxiv_source(settings: Settings) -> ArxivSource | None:
    """The arXiv feed source when ``PAPERBOY_ARXIV_CATEGORIES`` is set."""
    if not settings.arxiv_categories:
        return None
    categories = [c.strip() for c in settings.arxiv_categories.split(",") if c.strip()]
    try:
        source = ArxivSource(categories, base_url=settings.arxiv_feed_url)
    except ValueError as exc:
        raise ConfigError(f"PAPERBOY_ARXIV_CATEGORIES: {exc}") from exc
    unknown = unknown_categories(categories)
    if unknown:
        log.warning("arXiv categories not known to paperboy (typo?): %s", ", ".join(unknown))
    return source


def static_subscription(spec: StaticDigest, default_top: int = 10) -> Subscription:
    """A ``PAPERBOY_DIGESTS`` entry as a subscription (``default_top`` papers unless the
    entry says how many)."""
    if spec.platform == "console":
        destination = CONSOLE_DESTINATION
    else:
        destination = Destination(spec.platform, spec.workspace, spec.channel)
    return Subscription(
        destination=destination,
        at=spec.at,
        timezone=spec.timezone,
        days=DigestDays(spec.days),
        top=spec.top or default_top,
        min_upvotes=spec.min_upvotes,
        topic=spec.topic,
        format=DigestFormat(spec.format),
        post_empty=spec.post_empty,
        include_arxiv=spec.include_arxiv,
        origin="config",
    )


class Paperboy:
    """The running bot. ``async with Paperboy(settings) as bot: await bot.run()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        adapters: list[ChatAdapter] | None = None,
        source: HuggingFaceSource | None = None,
    ) -> None:
        self.settings = settings
        self._given_adapters = adapters
        self._given_source = source
        self.adapters: list[ChatAdapter] = []
        self.stopping = asyncio.Event()
        self.polled = asyncio.Event()  # set after each successful poll
        self._tasks: list[asyncio.Task[Any]] = []
        self._digest_shown = False
        self.web: Any = None
        self._started_at = utcnow()

    async def __aenter__(self) -> Paperboy:
        settings = self.settings
        self.db, self.store = await open_store(settings)
        self.search = await open_search(settings, self.store)
        self.subscriptions = SubscriptionStore(self.db)
        self.outbox = Outbox(self.db)
        self.source = self._given_source or build_source(settings)
        if self._given_adapters is not None:
            self.adapters = list(self._given_adapters)
        else:
            self.adapters = [build_adapter(n, settings) for n in adapter_names(settings)]
        self.metrics = Metrics()
        self.metrics.on_scrape(self._refresh_metrics)
        interval = settings.poll_interval_minutes * 60.0
        self.poller = Poller(self.source, self.store, interval=interval, metrics=self.metrics)
        self.arxiv = build_arxiv_source(settings)
        self.pollers = [self.poller]
        if self.arxiv is not None:
            self.pollers.append(
                Poller(self.arxiv, self.store, interval=interval, metrics=self.metrics)
            )
        self.watches = WatchStore(self.db)
        self.alerts = AlertPlanner(self.store, self.watches, self.outbox)
        self.relay = Relay(
            self.outbox,
            self.store,
            self.subscriptions,
            {a.name: a for a in self.adapters},
            metrics=self.metrics,
            watches=self.watches,
        )
        self.scheduler = Scheduler(
            subscriptions=self.subscriptions,
            planner=DigestPlanner(self.store, self.outbox),
            leader=LeaderLock(self.db),
            on_planned=self.relay.kick.set,
            poll_loop=self._poll_loops,
            grace=timedelta(hours=settings.digest_catch_up_hours),
        )
        self.commands = Commands(
            self.store,
            self.search,
            lookup=self.source,
            remote_search=settings.remote_search,
            remote_budget=settings.remote_search_budget,
            timezone=settings.timezone,
            subscriptions=self.subscriptions,
            on_subscriptions_changed=self.scheduler.sync,
            default_digest_top=settings.digest_top,
            watches=self.watches,
            on_watches_changed=self._watches_changed,
            metrics=self.metrics,
            source_problem=lambda: self.poller.last_error,
        )
        for adapter in self.adapters:
            if hasattr(adapter, "watch_suggester"):  # Discord's autocomplete for unwatch
                adapter.watch_suggester = self.commands.suggest_watches
        await self.subscriptions.sync_config(
            [static_subscription(d, settings.digest_top) for d in settings.digests]
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(self) -> None:
        """Start every adapter and background job; return when asked to stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        if self.stopping.is_set():
            return
        for adapter in self.adapters:
            await adapter.start(self.commands.handle)
            finished = getattr(adapter, "finished", None)
            if isinstance(finished, asyncio.Event):  # the console ends on `quit` / Ctrl-D
                self._tasks.append(asyncio.create_task(self._stop_when(finished)))
        self._tasks.append(asyncio.create_task(self.search.follow(), name="search-index"))
        await self.start_web_server()
        await self.show_console_digest(initial=True)
        await self.scheduler.start()
        await self.recover_abandoned_posts()
        self._tasks.append(asyncio.create_task(self.relay.run_forever(), name="relay"))
        with long_lived_frozen():
            await self.stopping.wait()

    async def recover_abandoned_posts(self) -> None:
        """SQLite is one process: once we lead, any post left ``sending`` was abandoned by a
        crash and is reconciled now rather than after its lease. (PostgreSQL replicas wait
        for the lease to expire, since the claimer may still be alive.)"""
        if self.db.dialect == "sqlite" and self.scheduler.is_leader:
            abandoned = await self.outbox.release_abandoned()
            if abandoned:
                log.info("%d posts were cut off by a crash; reconciling them", abandoned)

    async def start_web_server(self) -> None:
        """Serve /healthz and adapter routes (Slack HTTP mode). Console-only runs skip it."""
        routes = [r for a in self.adapters for r in getattr(a, "web_routes", list)()]
        if not routes and all(a.name == "console" for a in self.adapters):
            return
        from bot.web import (
            WebServer,
            adapters_check,
            create_app,
            database_check,
            readiness,
            recent_poll_check,
        )

        poll_age = timedelta(minutes=3 * self.settings.poll_interval_minutes)
        ready = readiness(
            {
                "database": database_check(self.db.engine),
                "adapters": adapters_check(self.adapters),
                "poll": recent_poll_check(self._poll_reference, poll_age),
            }
        )
        server = WebServer(
            create_app(routes, health=self.health, ready=ready, metrics=self.metrics),
            host=self.settings.http_host,
            port=self.settings.http_port,
        )
        try:
            await server.start()
        except OSError as exc:
            if routes:
                raise ConfigError(
                    f"cannot listen on {self.settings.http_host}:{self.settings.http_port} "
                    f"({exc}); set PAPERBOY_HTTP_HOST / PAPERBOY_HTTP_PORT"
                ) from exc
            log.warning("health endpoint unavailable: %s", exc)
            return
        self.web = server
        log.info("HTTP server listening on %s", server.url)

    def _poll_reference(self) -> datetime | None:
        """For readiness: followers do not poll, and a fresh leader gets the same grace
        as a poll interval that failed, so only a leader that stopped polling is unready."""
        if not self.scheduler.is_leader:
            return utcnow()
        since = [t for t in (self.poller.last_success, self.scheduler.led_since) if t is not None]
        return max(since, default=self._started_at)  # a poll of an earlier leadership is old

    async def _refresh_metrics(self, metrics: Metrics) -> None:
        semantic = self.search.semantic
        lexical = self.search.lexical.index
        metrics.set_search(
            lexical.size if lexical is not None else 0,
            semantic.status.embedded,
            semantic.usable,
        )
        metrics.set_leader(self.scheduler.is_leader)
        metrics.set_last_poll(self.poller.last_success)
        metrics.set_outbox(await self.outbox.counts())

    async def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "leader": self.scheduler.is_leader,
            "last_poll": self.poller.last_success.isoformat() if self.poller.last_success else None,
        }

    async def _stop_when(self, event: asyncio.Event) -> None:
        await event.wait()
        self.stopping.set()

    async def _poll_loops(self) -> None:
        """The leader's work: polling every source, and embedding what they bring."""
        await asyncio.gather(
            *(p.run_forever(self._after_poll) for p in self.pollers), self._embed_forever()
        )

    async def _embed_forever(self) -> None:
        """Embed papers that have no vectors yet: at start, then whenever new papers
        reach the search index (a poll, an import by another process). The vectors are in
        the database, so the leader embeds for every replica."""
        semantic = self.search.semantic
        await semantic.wait_loaded()
        while semantic.job is not None:
            semantic.wanted.clear()
            try:
                done = await semantic.embed_pending()
                if done:
                    log.info("embedded %d papers for semantic search", done)
            except Exception:
                log.exception("embedding papers failed; retrying after the next poll")
            await semantic.wanted.wait()

    async def _watches_changed(self) -> None:
        self.alerts.invalidate()

    async def _after_poll(self, result: PollResult) -> None:
        """After every successful poll: alert watchers, embed the new papers, then
        (console) show the digest."""
        self.search.semantic.wanted.set()
        try:
            if await self.alerts.run():
                self.relay.kick.set()
        except Exception:
            log.exception("matching watches failed")
        self.polled.set()
        if not self._digest_shown and result.fetched:
            await self.show_console_digest(initial=False)

    async def show_console_digest(self, *, initial: bool) -> None:
        """Console mode: print the latest digest from the store (before and after a poll)."""
        console = next((a for a in self.adapters if a.name == "console"), None)
        if console is None:
            return
        selection = await latest_day_selection(
            self.store,
            now=utcnow(),
            timezone=self.settings.timezone,
            top=self.settings.digest_top,
        )
        if not selection.papers:
            if initial:
                log.info("the store is empty; fetching from Hugging Face")
            return
        self._digest_shown = True
        await console.post(
            CONSOLE_DESTINATION, digest_reply(selection), key=f"console-digest:{selection.day}"
        )

    async def close(self, *, drain_seconds: float = 10.0) -> None:
        """Stop in an order that loses nothing and posts nothing twice (SIGTERM, a rolling
        restart): stop taking commands, let the posts in flight finish (bounded), give
        back the leader lock, mark what is still unfinished for reconciliation, disconnect.
        """
        if self.web is not None:  # no more Slack HTTP commands; the load balancer moves on
            with contextlib.suppress(Exception):
                await self.web.stop()
        await self.relay.stop()
        relay_task = next((t for t in self._tasks if t.get_name() == "relay"), None)
        if relay_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(relay_task), timeout=drain_seconds)
            except (TimeoutError, asyncio.CancelledError, Exception):
                log.warning(
                    "posts still in flight after %.0f s; they will be reconciled", drain_seconds
                )
        await self.scheduler.shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            released = await self.outbox.release_worker(self.relay.worker)
            if released:
                log.info("released %d in-flight posts for reconciliation", released)
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.close()
        await self.source.close()
        if self.arxiv is not None:
            await self.arxiv.close()
        with contextlib.suppress(Exception):
            await self.search.close()
        await self.db.close()

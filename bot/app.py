"""Composition root: settings -> store, sources, command core, adapters, background work.

Adapters are found through an explicit mapping of names to import paths and imported only
when configured, so the core never imports a platform SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from typing import Any

from bot.commands import Commands
from bot.config import Settings
from bot.digest import digest_reply, latest_day_selection
from bot.models import Destination, utcnow
from bot.poller import Poller, PollResult
from bot.ports import ChatAdapter
from bot.sources.huggingface import HuggingFaceSource
from bot.store import Database, PaperStore

log = logging.getLogger(__name__)

ADAPTERS: dict[str, str] = {
    "console": "adapters.console:ConsoleAdapter",
    "slack": "adapters.slack:SlackAdapter",
    "discord": "adapters.discord:DiscordAdapter",
}


_CONSOLE_DEST = Destination(platform="console", workspace="local", channel="console")


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


def build_source(settings: Settings) -> HuggingFaceSource:
    return HuggingFaceSource(
        settings.hf_api_url, token=settings.hf_token, timeout=settings.http_timeout
    )


class Paperboy:
    """The running bot. ``async with Paperboy(settings) as bot: await bot.run()``."""

    def __init__(self, settings: Settings, *, adapters: list[ChatAdapter] | None = None) -> None:
        self.settings = settings
        self._given_adapters = adapters
        self.adapters: list[ChatAdapter] = []
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._digest_shown = False

    async def __aenter__(self) -> Paperboy:
        settings = self.settings
        self.db, self.store = await open_store(settings)
        self.source = build_source(settings)
        self.commands = Commands(
            self.store,
            lookup=self.source if settings.remote_search else None,
            remote_budget=settings.remote_search_budget,
            timezone=settings.timezone,
        )
        self.poller = Poller(
            self.source, self.store, interval=settings.poll_interval_minutes * 60.0
        )
        if self._given_adapters is not None:
            self.adapters = list(self._given_adapters)
        else:
            self.adapters = [build_adapter(n, settings) for n in adapter_names(settings)]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(self) -> None:
        """Start every adapter and background job; return when asked to stop."""
        for adapter in self.adapters:
            await adapter.start(self.commands.handle)
            finished = getattr(adapter, "finished", None)
            if isinstance(finished, asyncio.Event):  # the console ends on `quit` / Ctrl-D
                self._tasks.append(asyncio.create_task(self._stop_when(finished)))
        if any(a.name == "console" for a in self.adapters):
            await self.show_console_digest(initial=True)
        self._tasks.append(
            asyncio.create_task(self.poller.run_forever(self._after_poll), name="poller")
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()

    async def _stop_when(self, event: asyncio.Event) -> None:
        await event.wait()
        self.stopping.set()

    async def _after_poll(self, result: PollResult) -> None:
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
            _CONSOLE_DEST, digest_reply(selection), key=f"console-digest:{selection.day}"
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.close()
        await self.source.close()
        await self.db.close()

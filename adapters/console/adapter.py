"""The console adapter: prints replies with rich and reads ``/papers`` commands from stdin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import Self

from rich.console import Console

from adapters.console.render import render_reply
from bot.config import Settings
from bot.models import AdapterLimits, CommandRequest, Destination, PostResult, PostStatus, Reply
from bot.ports import CommandHandler

log = logging.getLogger(__name__)

CONSOLE_DESTINATION = Destination(platform="console", workspace="local", channel="console")
QUIT_WORDS = frozenset({"quit", "exit", ":q"})


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed on stdin, read by a daemon thread so shutdown never waits for Enter."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="paperboy-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


class ConsoleAdapter:
    """A terminal as a chat channel: everyone typing is allowed to manage it."""

    name = "console"
    limits = AdapterLimits(max_cards_per_message=100, max_text_chars=100_000, max_title_chars=500)

    def __init__(
        self,
        *,
        console: Console | None = None,
        lines: AsyncIterator[str] | None = None,
        user: str = "console",
    ) -> None:
        self.console = console or Console()
        self._lines = lines
        self.user = user
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls()

    async def start(self, handle: CommandHandler) -> None:
        self.console.print(
            "[dim]Type /papers help (or just `help`, `today`, `search diffusion`); quit to stop.[/]"
        )
        self._task = asyncio.create_task(self._listen(handle), name="console-commands")

    async def _listen(self, handle: CommandHandler) -> None:
        lines = self._lines if self._lines is not None else stdin_lines()
        try:
            async for raw in lines:
                line = raw.strip()
                if not line:
                    continue
                if line.lower() in QUIT_WORDS:
                    break
                request = CommandRequest.from_text(
                    line,
                    user=self.user,
                    destination=CONSOLE_DESTINATION,
                    can_manage_channel=True,
                    user_name=self.user,
                )
                try:
                    reply = await handle(request)
                except Exception:  # the console must survive a bug in one command
                    log.exception("command %r failed", line)
                    self.console.print("[red]That command failed; see the log.[/]")
                    continue
                self.show(reply)
        finally:
            self.finished.set()

    def show(self, reply: Reply) -> None:
        for renderable in render_reply(reply):
            self.console.print(renderable)
        self.console.print()

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult:
        self.show(reply)
        return PostResult(PostStatus.SENT, message_ids=(key,))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

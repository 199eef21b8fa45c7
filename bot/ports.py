"""The protocols the core needs from the outside world.

Adapters and sources implement them structurally; nothing inherits from these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Protocol, runtime_checkable

from bot.models import AdapterLimits, CommandRequest, Destination, Paper, PostResult, Reply

CommandHandler = Callable[[CommandRequest], Awaitable[Reply]]
"""The core's entry point for a slash command: adapters call it and render the reply."""


@runtime_checkable
class ChatAdapter(Protocol):
    """A chat platform (or the console).

    ``start`` connects and routes every ``/papers`` command to ``handle``; it returns once
    the adapter is listening (the listening itself runs as background tasks). ``post``
    never raises for platform errors: it answers with a typed ``PostResult``.
    """

    name: str
    limits: AdapterLimits

    async def start(self, handle: CommandHandler) -> None: ...

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult: ...

    async def close(self) -> None: ...


class SourceError(Exception):
    """A source could not be reached or answered garbage; the message says which, in one line."""


@runtime_checkable
class PaperSource(Protocol):
    """Somewhere papers come from (Hugging Face Daily Papers, arXiv feeds)."""

    name: str

    async def fetch_day(self, day: date) -> list[Paper]:
        """Every paper listed for ``day`` (UTC). Raises ``SourceError`` when unreachable."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class PaperLookup(Protocol):
    """A source that can also find single papers and answer searches (remote fallback)."""

    async def fetch_paper(self, paper_id: str) -> Paper | None: ...

    async def search(self, query: str, *, limit: int = 20) -> list[Paper]: ...

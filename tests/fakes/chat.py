"""An in-memory ChatAdapter for core tests (errbot's test backend, for delivery).

It implements the real protocol, records every post, and can be scripted to answer
with any ``PostStatus`` or to raise, like a platform that fails.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from bot.models import AdapterLimits, Destination, PostResult, PostStatus, Reply
from bot.ports import CommandHandler


@dataclass
class Posted:
    dest: Destination
    reply: Reply
    key: str


class RecordingAdapter:
    def __init__(self, name: str = "console", *, reconciles: bool = True) -> None:
        self.name = name
        self.limits = AdapterLimits(max_cards_per_message=50, max_text_chars=40_000)
        self.posts: list[Posted] = []
        self.visible: dict[str, list[str]] = {}  # key -> message ids really "on the platform"
        self.script: deque[PostResult | Exception | tuple[str, PostResult]] = deque()
        self.lookups: list[str] = []
        self.handle: CommandHandler | None = None
        if not reconciles:
            self.find_posted = None  # type: ignore[assignment]

    async def start(self, handle: CommandHandler) -> None:
        self.handle = handle

    def fail_next(self, *results: PostResult | Exception | tuple[str, PostResult]) -> None:
        """Queue outcomes. ``("posted", result)`` means: the message IS posted, but the
        caller gets ``result`` (e.g. a timeout after the platform accepted it)."""
        self.script.extend(results)

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult:
        if self.script:
            outcome = self.script.popleft()
            if isinstance(outcome, Exception):
                raise outcome
            if isinstance(outcome, tuple):
                self._record(dest, reply, key)
                return outcome[1]
            return outcome
        ids = self._record(dest, reply, key)
        return PostResult(PostStatus.SENT, message_ids=ids)

    def _record(self, dest: Destination, reply: Reply, key: str) -> tuple[str, ...]:
        self.posts.append(Posted(dest, reply, key))
        ids = (f"m{len(self.posts)}",)
        self.visible[key] = list(ids)
        return ids

    async def find_posted(self, dest: Destination, key: str) -> PostResult | None:
        self.lookups.append(key)
        ids = self.visible.get(key)
        return PostResult(PostStatus.SENT, message_ids=tuple(ids)) if ids else None

    async def close(self) -> None:
        pass

    def papers_to(self, channel: str) -> list[str]:
        """Every paper id posted to ``channel``, in order, duplicates included."""
        per: dict[str, list[str]] = defaultdict(list)
        for p in self.posts:
            per[p.dest.channel].extend(c.paper_id for c in p.reply.cards)
        return per[channel]

"""Partial posts: the parts a multi-message post already sent, and the messages it planned.

A reply that takes several messages can fail halfway (rate limited, a 5xx, a timeout),
and the delivery layer then posts the same key again later, with the reply rebuilt from
the papers as they are by then. A changed summary or upvote count can move the split
points, so resuming "after part k" of a fresh rendering would repeat some cards or skip
others. The retry therefore sends the rest of the messages rendered the first time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from adapters.discord.render import DiscordMessage

MAX_REMEMBERED_KEYS = 1000  # keys whose partial progress is kept (the oldest go first)


class PartialPosts:
    """Per key: the message ids already sent and the messages of the whole post."""

    def __init__(self, limit: int = MAX_REMEMBERED_KEYS) -> None:
        self.limit = limit
        self._posts: OrderedDict[str, tuple[tuple[str, ...], tuple[DiscordMessage, ...]]] = (
            OrderedDict()
        )

    def resume(
        self, key: str | None, rendered: Sequence[DiscordMessage]
    ) -> tuple[list[str], tuple[DiscordMessage, ...]]:
        """The ids sent so far under ``key`` and the messages to post: the remembered
        plan when a post of ``key`` stopped halfway, else ``rendered`` (nothing sent)."""
        if key is not None and key in self._posts:
            sent, planned = self._posts.pop(key)
            return list(sent), planned
        return [], tuple(rendered)

    def keep(self, key: str | None, sent: Sequence[str], planned: Sequence[DiscordMessage]) -> None:
        """Remember that ``sent`` parts of ``planned`` went out under ``key``."""
        if key is None or not sent:
            return
        self._posts[key] = (tuple(sent), tuple(planned))
        while len(self._posts) > self.limit:
            self._posts.popitem(last=False)

"""Who may manage a channel's paperboy settings (subscriptions, channel watches).

Slack has no cheap per-channel "manage" permission for apps, so paperboy decides:

- in a direct message with the bot, the user manages their own DM: always allowed;
- workspace admins and owners (``users.info``: ``is_admin``, ``is_owner``,
  ``is_primary_owner``) may manage every channel;
- the person who created a channel (``conversations.info``: ``creator``) may manage it.

Everyone else may still use lookups (search, today, ...). Answers are cached for
``ttl`` seconds per user and per channel; when Slack cannot be asked, the answer is
"no" (fail closed) and is not cached.
"""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.pacing import Clock

log = logging.getLogger(__name__)


class ChannelPermissions:
    """Answers ``can_manage(team, channel, user, is_dm)`` with the policy above."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = 300.0,
        clock: Clock = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._admins: dict[tuple[str, str], tuple[float, bool]] = {}
        self._creators: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def can_manage(self, team: str, channel: str, user: str, *, is_dm: bool) -> bool:
        if is_dm:
            return True
        if not user:
            return False
        admin, creator = await asyncio.gather(
            self._is_admin(team, user), self._creator(team, channel)
        )
        return admin or (creator is not None and creator == user)

    async def _is_admin(self, team: str, user: str) -> bool:
        cached = self._fresh(self._admins, (team, user))
        if cached is not None:
            return cached
        try:
            info = await self.client.users_info(user=user)
        except Exception as exc:  # fail closed; never break a command over this
            log.warning("slack users.info failed for %s: %s", user, exc)
            return False
        member = info.get("user") or {}
        admin = any(member.get(flag) for flag in ("is_admin", "is_owner", "is_primary_owner"))
        self._store(self._admins, (team, user), admin)
        return admin

    async def _creator(self, team: str, channel: str) -> str | None:
        cached = self._fresh(self._creators, (team, channel))
        if cached is not None:
            return cached or None
        try:
            info = await self.client.conversations_info(channel=channel)
        except Exception as exc:
            log.warning("slack conversations.info failed for %s: %s", channel, exc)
            return None
        creator = str((info.get("channel") or {}).get("creator") or "")
        self._store(self._creators, (team, channel), creator)
        return creator or None

    def _fresh(self, cache: dict, key: tuple[str, str]):  # type: ignore[type-arg]
        entry = cache.get(key)
        if entry is None or self._clock() - entry[0] > self.ttl:
            return None
        return entry[1]

    def _store(self, cache: dict, key: tuple[str, str], value: object) -> None:  # type: ignore[type-arg]
        if len(cache) >= self._max_entries:
            cache.clear()
        cache[key] = (self._clock(), value)

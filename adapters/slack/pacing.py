"""About one message per second per channel, Slack's documented posting rate.

Clock and sleep are injected so tests check the pacing without waiting for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ChannelPacer:
    """Serialises posts per channel and spaces them ``interval`` seconds apart.

    Use as ``async with pacer.slot(channel): await post(...)``. Posts to different
    channels do not wait for each other.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_channels: int = 10_000,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._max_channels = max_channels
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_post: dict[str, float] = {}

    def slot(self, channel: str) -> _Slot:
        """A context manager holding ``channel``'s turn; it waits for the spacing first."""
        return _Slot(self, channel)

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            if len(self._locks) >= self._max_channels:
                self._forget_idle()
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    def _forget_idle(self) -> None:
        now = self._clock()
        for channel in [c for c, lock in self._locks.items() if not lock.locked()]:
            if now - self._last_post.get(channel, 0.0) >= self.interval:
                self._locks.pop(channel, None)
                self._last_post.pop(channel, None)

    async def _wait_turn(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = last + self.interval - self._clock()
            if wait > 0:
                await self._sleep(wait)

    def _mark(self, channel: str) -> None:
        self._last_post[channel] = self._clock()


class _Slot:
    def __init__(self, pacer: ChannelPacer, channel: str) -> None:
        self._pacer = pacer
        self._channel = channel
        self._lock = pacer._lock(channel)

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            await self._pacer._wait_turn(self._channel)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._pacer._mark(self._channel)
        self._lock.release()

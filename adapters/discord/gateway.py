"""Keeping the gateway connection alive without burning IDENTIFYs.

Discord allows 1,000 IDENTIFYs a day; a bot that crash-loops through them is locked out.
discord.py RESUMEs when it can and calls ``before_identify_hook`` before every IDENTIFY:
:class:`IdentifyThrottle` spaces those out (exponential backoff while they keep failing,
and a hard daily budget). :func:`supervise` restarts the connection loop when discord.py
gives up on it, with backoff, and stops for good on errors a retry cannot fix (bad token,
missing privileged intents, invalid sharding).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum

import discord

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

DAY_SECONDS = 24 * 60 * 60
# Gateway close codes that no reconnect can fix.
FATAL_CLOSE_CODES = frozenset({4004, 4010, 4011, 4012, 4013, 4014})


class IdentifyThrottle:
    """Spaces IDENTIFYs: the first is immediate; repeats within ``streak_window`` back off
    exponentially from ``base_delay`` up to ``max_delay``; never more than ``daily_budget``
    in 24 hours (Discord's limit is 1,000; the rest is a margin for restarts)."""

    def __init__(
        self,
        *,
        daily_budget: int = 900,
        base_delay: float = 5.0,
        max_delay: float = 15 * 60.0,
        streak_window: float = 15 * 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.daily_budget = daily_budget
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.streak_window = streak_window
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._history: deque[float] = deque()

    def delay(self) -> float:
        """Seconds to wait before the next IDENTIFY, given the ones already made."""
        now = self._clock()
        while self._history and self._history[0] <= now - DAY_SECONDS:
            self._history.popleft()
        if len(self._history) >= self.daily_budget:
            return self._history[0] + DAY_SECONDS - now
        streak = sum(1 for at in self._history if at > now - self.streak_window)
        if streak == 0:
            return 0.0
        delay = min(self.max_delay, self.base_delay * 2 ** (streak - 1))
        return delay * (1 + 0.25 * self._jitter())

    async def wait(self) -> None:
        """Wait as long as :meth:`delay` says, then count one IDENTIFY."""
        delay = self.delay()
        if delay > 0:
            log.info("waiting %.0fs before identifying with the Discord gateway", delay)
            await self._sleep(delay)
        self._history.append(self._clock())

    @property
    def identifies_today(self) -> int:
        now = self._clock()
        return sum(1 for at in self._history if at > now - DAY_SECONDS)


class Backoff:
    """Exponential backoff with jitter; ``reset`` after a connection that stayed up."""

    def __init__(
        self,
        *,
        base: float = 2.0,
        cap: float = 10 * 60.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self._jitter = jitter
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return delay * (0.5 + 0.5 * self._jitter())

    def reset(self) -> None:
        self.attempts = 0


class GatewayOutcome(StrEnum):
    CLOSED = "closed"  # we were asked to stop
    FATAL = "fatal"  # a retry cannot help: bad token, intents, sharding


def is_fatal(exc: BaseException) -> bool:
    """Whether reconnecting after ``exc`` is pointless."""
    if isinstance(exc, discord.LoginFailure | discord.PrivilegedIntentsRequired):
        return True
    return isinstance(exc, discord.ConnectionClosed) and exc.code in FATAL_CLOSE_CODES


async def _fatal(step: Callable[[], Awaitable[None]], fatal: str, transient: str) -> bool:
    """Run one step of the supervisor; True when it failed for good (logged either way)."""
    try:
        await step()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_fatal(exc):
            log.error("%s: %s", fatal, _describe(exc))
            return True
        log.warning("Discord %s: %s", transient, _describe(exc))
    return False


async def supervise(
    connect: Callable[[], Awaitable[None]],
    reopen: Callable[[], Awaitable[None]],
    *,
    closing: Callable[[], bool],
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    backoff: Backoff | None = None,
    stable_after: float = 5 * 60.0,
) -> GatewayOutcome:
    """Run ``connect`` (discord.py's reconnecting loop) until closed or fatally failed.

    When ``connect`` gives up, wait with backoff, ``reopen`` (re-login) and run it again.
    A connection that stayed up for ``stable_after`` seconds resets the backoff.
    """
    backoff = backoff or Backoff()
    while not closing():
        started = clock()
        if await _fatal(connect, "Discord gateway stopped for good", "connection lost"):
            return GatewayOutcome.FATAL
        if closing():
            break
        if clock() - started >= stable_after:
            backoff.reset()
        delay = backoff.next_delay()
        log.info("reconnecting to Discord in %.0fs", delay)
        await sleep(delay)
        if closing():
            break
        if await _fatal(reopen, "Discord login failed for good", "login failed, will retry"):
            return GatewayOutcome.FATAL
    return GatewayOutcome.CLOSED


def _describe(exc: BaseException) -> str:
    if isinstance(exc, discord.ConnectionClosed):
        return f"gateway closed with code {exc.code}"
    return f"{type(exc).__name__}: {exc}"

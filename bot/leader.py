"""Which replica runs the scheduler.

PostgreSQL: ``pg_try_advisory_lock`` held on a dedicated connection; it is released on
shutdown, or by the server when that connection dies. A leader whose host vanishes
without closing the connection (power cut, network partition) is noticed by TCP
keepalives that the lock's session asks the server for, so the lock is freed within
about 15 s instead of the server's default two hours; on its side, a leader whose check
of the connection gets no answer within :data:`CHECK_TIMEOUT` steps down. SQLite means
one process, but a second one started by mistake must not schedule too: an exclusive
``flock`` on a file beside the database plays the same role.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store import Database

log = logging.getLogger(__name__)

LOCK_KEY = 0x7061706572626F79 & 0x7FFF_FFFF_FFFF_FFFF  # "paperboy"
CHECK_TIMEOUT = 5.0  # seconds the lock's connection has to answer a check
# The lock session's TCP keepalives (server side): first probe after 5 s idle, then every
# 2 s, dead after 3 unanswered; and unacknowledged data for 10 s means dead too.
KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
}


class LeaderLock:
    """``await lock.try_acquire()`` -> True when this process now leads."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None
        self.held = False

    def _lock_path(self) -> Path | None:
        database = make_url(str(self.db.engine.url)).database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database + ".leader")

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.db.dialect == "postgresql":
            conn = await self.db.engine.connect()
            try:
                got = await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                ok = bool(got.scalar())
                await conn.commit()
            except Exception:
                await conn.close()
                raise
            if ok:
                self._conn = conn
                await self._ask_for_keepalives(conn)
            else:
                await conn.close()
            self.held = ok
            return ok
        path = self._lock_path()
        if path is None:
            self.held = True
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self.held = True
        return True

    @staticmethod
    async def _ask_for_keepalives(conn: AsyncConnection) -> None:
        for name, value in KEEPALIVES.items():
            try:
                await conn.execute(
                    text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value}
                )
                await conn.commit()
            except Exception as exc:  # an older server without the setting: keep the rest
                await conn.rollback()
                log.info("the leader lock's connection cannot set %s: %s", name, exc)

    async def still_held(self) -> bool:
        """False when the lock was lost (the PostgreSQL connection died or stopped
        answering: then this replica lets go of it)."""
        if not self.held:
            return False
        if self._conn is not None:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await self._conn.execute(text("SELECT 1"))
                    await self._conn.commit()
            except Exception as exc:
                reason = (
                    f"no answer in {CHECK_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else exc
                )
                log.warning("lost the leader lock's connection: %s", reason)
                await self._drop()
                return False
        return True

    async def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # A connection that stopped answering may not answer a goodbye either.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await conn.invalidate()

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                await self._conn.commit()
        await self._drop()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def describe(lock: Any) -> str:
    return "leader" if getattr(lock, "held", False) else "follower"

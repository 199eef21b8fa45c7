"""Which replica runs the scheduler.

PostgreSQL: ``pg_try_advisory_lock`` held on a dedicated connection; it is released on
shutdown, or by the server when that connection dies. SQLite means one process, but a
second one started by mistake must not schedule too: an exclusive ``flock`` on a file
beside the database plays the same role.
"""

from __future__ import annotations

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

    async def still_held(self) -> bool:
        """False when the lock was lost (the PostgreSQL connection died)."""
        if not self.held:
            return False
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                await self._conn.commit()
            except Exception as exc:
                log.warning("lost the leader lock's connection: %s", exc)
                await self._drop()
                return False
        return True

    async def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()

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

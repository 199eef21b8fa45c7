"""WAL checkpoints of a bulk import, on a thread of their own.

In WAL mode SQLite appends every committed page to the ``-wal`` file and, once it holds
more than ``wal_autocheckpoint`` pages (1,000 by default), the connection that commits
copies those pages back into the database file and syncs both ("checkpoint"), before
its ``COMMIT`` returns. For a bulk import that is ~300 MB per 100,000-paper transaction,
6-9 us per paper of the writer's time (bench/README.md, "WAL checkpoints beside the
writer"). :class:`WalCheckpointer` runs those checkpoints on a connection and thread of
its own instead, while the writer goes on with the next transaction: a ``PASSIVE``
checkpoint copies what is committed without blocking readers or writers.

The log is reset to its start only by a writer that finds it fully copied, which never
happens while transactions follow each other at once: the writer waits for the
checkpoint in flight (:meth:`WalCheckpointer.drain`) whenever the log has grown past
:data:`WAL_LIMIT_BYTES`, which bounds the extra disk an import takes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading

from bot.store.database import Database, _in_memory

log = logging.getLogger(__name__)

WAL_LIMIT_BYTES = 1 << 30  # 1 GiB of write-ahead log, then the writer waits for a checkpoint


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` on request, on its own thread.

    :meth:`request` returns at once; :meth:`drain` waits until everything committed
    before the last request is in the database file; :meth:`close` drains and stops.
    A checkpoint that fails (another one running, a reader pinning old pages, an I/O
    error) is logged and left to the next one: nothing is lost, the log only stays longer.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Condition()
        self._requested = 0  # requests so far
        self._covered = 0  # the last request that a finished checkpoint covered
        self._stopping = False
        self.log_bytes = 0  # the log's size as the last checkpoint found it (0 after a drain)
        # A daemon: an interrupted checkpoint is safe (SQLite redoes it), a hung exit is not.
        self._thread = threading.Thread(
            target=self._run, name="paperboy-wal-checkpoint", daemon=True
        )
        self._thread.start()

    @classmethod
    def for_database(cls, db: Database) -> WalCheckpointer | None:
        """A checkpointer for ``db`` if it is an SQLite file (None otherwise)."""
        if db.dialect != "sqlite" or _in_memory(db.engine):
            return None
        return cls(str(db.engine.url.database))

    def request(self) -> None:
        """Ask for a checkpoint of everything committed so far (returns at once)."""
        with self._wake:
            self._requested += 1
            self._wake.notify_all()

    async def drain(self) -> None:
        """Wait until a checkpoint that started after the last :meth:`request` is done."""
        await asyncio.to_thread(self._wait_covered)
        self.log_bytes = 0  # all copied: the next write transaction starts the log over

    async def close(self) -> None:
        """Checkpoint what is left, then stop the thread."""
        try:
            self.request()
            await self.drain()
        finally:  # cancelled too: the thread ends after the checkpoint in flight
            with self._wake:
                self._stopping = True
                self._wake.notify_all()
        await asyncio.to_thread(self._thread.join)

    def _wait_covered(self) -> None:
        with self._wake:
            target = self._requested
            self._wake.wait_for(lambda: self._covered >= target)

    def _run(self) -> None:
        try:
            self._serve()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoints of %s stopped: %s", self._path, exc)
        finally:
            with self._wake:
                self._covered = 1 << 62  # nobody waits for checkpoints that never come
                self._wake.notify_all()

    def _serve(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None)
        try:
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
            connection.execute("PRAGMA wal_autocheckpoint=0")
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._stopping or self._requested > self._covered)
                    if self._stopping:
                        return
                    target = self._requested
                self._checkpoint(connection, page_size)
                with self._wake:
                    self._covered = target
                    self._wake.notify_all()
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection, page_size: int) -> None:
        try:
            busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("a WAL checkpoint failed (the next one will retry): %s", exc)
            return
        if busy:  # another connection was checkpointing; the next request catches up
            log.debug("WAL checkpoint skipped: another one was running")
        self.log_bytes = max(frames, 0) * page_size


__all__ = ["WAL_LIMIT_BYTES", "WalCheckpointer"]

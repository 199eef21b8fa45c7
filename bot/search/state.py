"""What a derived index folder was built from, kept beside it as a small JSON file.

A derived index is only trusted when its state names the same database (its random
``database_id``), the same index version, and a revision the database has reached; any
doubt (no file, another database, a newer revision than the database knows, unreadable
JSON) means building it again from the database.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True, slots=True)
class IndexState:
    database_id: str
    version: str
    revision: int  # every change up to this revision is in the index

    def matches(self, database_id: str, version: str, latest_revision: int) -> bool:
        return (
            self.database_id == database_id
            and self.version == version
            and self.revision <= latest_revision
        )


def read_state(path: Path) -> IndexState | None:
    """The state saved at ``path``, or None when there is none or it is unreadable."""
    try:
        raw = json.loads(path.read_text())
        return IndexState(str(raw["database_id"]), str(raw["version"]), int(raw["revision"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(path: Path, state: IndexState) -> None:
    """Save ``state`` at ``path`` atomically (a crash leaves the old file or the new)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(asdict(state)))
    os.replace(temporary, path)


class OwnerLock:
    """One process at a time maintains the indexes of a folder (writes, rebuilds, deletes
    them); the others only read. An advisory lock on ``<folder>/owner.lock``, released by
    :meth:`release` or by the process's end, however it ends."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "owner.lock"
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process holds it now."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


__all__ = ["IndexState", "OwnerLock", "read_state", "write_state"]

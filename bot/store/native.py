"""Batches of rows through one SQLite statement without the GIL (``bot/_sqlitebatch.c``).

A bulk import analyzes the next batch on one thread while SQLite writes this one on
another. The stdlib's ``executemany`` takes the GIL back after every row, so beside the
analyzer each row waits for a switch interval; this runs a whole batch in C with the GIL
released. The store uses it for an import's rows on SQLite (``AVAILABLE``: the papers, both
full-text tables, the day floors), and falls back to executemany and one JSON array per
full-text statement when the module was not built (no compiler at install, or a Python
whose ``sqlite3`` it cannot reach).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

try:
    import bot._sqlitebatch as _sqlitebatch
except ImportError:  # pragma: no cover - depends on the build
    _sqlitebatch = None

# The C module reads the handle out of CPython's own connection object.
AVAILABLE = _sqlitebatch is not None and sys.implementation.name == "cpython"

# SQLite's primary result codes, as the stdlib's sqlite3 maps them to exceptions.
_ERRORS: dict[int, type[sqlite3.Error]] = {
    2: sqlite3.InternalError,  # SQLITE_INTERNAL
    11: sqlite3.DatabaseError,  # SQLITE_CORRUPT
    12: sqlite3.InternalError,  # SQLITE_NOTFOUND
    18: sqlite3.DataError,  # SQLITE_TOOBIG
    19: sqlite3.IntegrityError,  # SQLITE_CONSTRAINT
    20: sqlite3.IntegrityError,  # SQLITE_MISMATCH
    21: sqlite3.InterfaceError,  # SQLITE_MISUSE
    25: sqlite3.InterfaceError,  # SQLITE_RANGE
    26: sqlite3.DatabaseError,  # SQLITE_NOTADB
}


def execute_rows(connection: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` once per row of ``rows`` (None, int, float, str or bytes values) on
    ``connection``, inside whatever transaction it has open; returns the rows changed.

    Call it on the connection's own thread. A row SQLite refuses raises the same
    ``sqlite3`` exception ``executemany`` would (rows before it stay written, the rest are
    not run); a value of another type raises ``TypeError``.
    """
    if _sqlitebatch is None:  # pragma: no cover - depends on the build
        raise RuntimeError("bot._sqlitebatch is not built")
    # (The C function holds its own copy of the list while the GIL is released.)
    batch = rows if isinstance(rows, list) else list(rows)
    result = _sqlitebatch.execute_rows(connection, sql, batch)
    if isinstance(result, tuple):
        code, message, row = result
        if code & 0xFF == 7:  # SQLITE_NOMEM
            raise MemoryError(message)
        error = _ERRORS.get(code & 0xFF, sqlite3.OperationalError)(
            message if row < 0 else f"{message} (row {row + 1} of {len(rows)})"
        )
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
        raise error
    return int(result)


def execute_batches(
    connection: sqlite3.Connection, batches: Sequence[tuple[str, Sequence[Sequence[Any]]]]
) -> int:
    """:func:`execute_rows` for each ``(sql, rows)`` of ``batches``, in order; returns the
    rows changed by all of them."""
    return sum(execute_rows(connection, sql, rows) for sql, rows in batches if rows)


__all__ = ["AVAILABLE", "execute_batches", "execute_rows"]

"""bot/_sqlitebatch.c through bot.store.native: rows written exactly as executemany would."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.store import native

pytestmark = pytest.mark.skipif(not native.AVAILABLE, reason="bot._sqlitebatch is not built")


@pytest.fixture
def conn():
    connection = sqlite3.connect(":memory:", isolation_level=None)
    yield connection
    connection.close()


values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(),  # surrogates included: refused, like executemany refuses them
    st.binary(max_size=64),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(values, values, values), max_size=20))
def test_any_rows_are_stored_as_executemany_stores_them(rows) -> None:
    native_db = sqlite3.connect(":memory:", isolation_level=None)
    plain_db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for db in (native_db, plain_db):
            db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, a, b, c)")
        sql = "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"
        try:
            plain_db.executemany(sql, rows)
        except UnicodeEncodeError:
            with pytest.raises(UnicodeEncodeError):
                native.execute_rows(native_db, sql, rows)
            return
        assert native.execute_rows(native_db, sql, rows) == len(rows)
        query = "SELECT n, a, typeof(a), b, typeof(b), c, typeof(c) FROM t ORDER BY n"
        assert native_db.execute(query).fetchall() == plain_db.execute(query).fetchall()
    finally:
        native_db.close()
        plain_db.close()


def test_a_refused_row_raises_the_stdlib_error_and_keeps_the_rows_before_it(conn) -> None:
    conn.execute("CREATE TABLE t (k PRIMARY KEY)")
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE constraint failed: t\.k \(row 3"):
        native.execute_rows(conn, "INSERT INTO t VALUES (?)", [(1,), (2,), (1,), (3,)])
    assert conn.in_transaction  # the caller decides: roll back or go on
    assert conn.execute("SELECT k FROM t ORDER BY k").fetchall() == [(1,), (2,)]
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_statement_errors_are_operational_errors(conn) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        native.execute_rows(conn, "INSERT INTO missing VALUES (?)", [(1,)])


def test_rows_must_fit_the_statement(conn) -> None:
    conn.execute("CREATE TABLE t (a, b)")
    with pytest.raises(ValueError, match="row 2 has 1 values, the statement takes 2"):
        native.execute_rows(conn, "INSERT INTO t VALUES (?, ?)", [(1, 2), (3,)])
    with pytest.raises(TypeError, match="unsupported type"):
        native.execute_rows(conn, "INSERT INTO t VALUES (?, ?)", [(1, object())])
    with pytest.raises(OverflowError):
        native.execute_rows(conn, "INSERT INTO t VALUES (?, ?)", [(1, 2**64)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)  # checked before any row
    assert native.execute_rows(conn, "INSERT INTO t VALUES (?, ?)", []) == 0


def test_only_open_sqlite3_connections_are_taken(conn) -> None:
    with pytest.raises(TypeError):
        native.execute_rows(object(), "SELECT 1", [()])  # type: ignore[arg-type]
    closed = sqlite3.connect(":memory:")
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        native.execute_rows(closed, "SELECT 1", [()])


def test_the_rows_stay_alive_while_the_statement_runs(conn) -> None:
    """The caller's list may change while the GIL is released; the batch must not."""
    conn.execute("CREATE TABLE t (a)")
    rows = [(f"value {n}",) for n in range(2000)]
    expected = [r[0] for r in rows]
    done = threading.Event()

    def shrink() -> None:
        while not done.is_set() and rows:
            rows.pop()

    other = threading.Thread(target=shrink)
    other.start()
    try:
        written = native.execute_rows(conn, "INSERT INTO t VALUES (?)", rows)
    finally:
        done.set()
        other.join()
    stored = [r[0] for r in conn.execute("SELECT a FROM t ORDER BY rowid")]
    assert written == len(stored) and stored == expected[: len(stored)]


def test_batches_run_in_order_and_stop_at_the_first_refusal(conn) -> None:
    conn.execute("CREATE TABLE a (k PRIMARY KEY)")
    conn.execute("CREATE TABLE b (k)")
    batches = [
        ("INSERT INTO a VALUES (?)", [(1,), (2,)]),
        ("INSERT INTO b SELECT count(*) FROM a WHERE k <= ?", [(9,)]),  # sees batch 1
        ("INSERT INTO a VALUES (?)", []),
    ]
    assert native.execute_batches(conn, batches) == 3
    assert conn.execute("SELECT k FROM b").fetchall() == [(2,)]
    with pytest.raises(sqlite3.IntegrityError):
        native.execute_batches(
            conn, [("INSERT INTO a VALUES (?)", [(1,)]), ("INSERT INTO b VALUES (?)", [(7,)])]
        )
    assert conn.execute("SELECT count(*) FROM b").fetchone() == (1,)  # the second never ran

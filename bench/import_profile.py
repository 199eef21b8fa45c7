"""Where a bulk import's time goes, statement by statement (SQLite).

``python -m bench.import_profile [PAPERS]`` (default 200,000) imports synthetic papers
into a fresh SQLite file with timers around the writer's statements and steps, prints a
table and writes ``bench/results/import_profile.json``. The timers wrap functions of
``bot.store`` from outside (this is instrumentation, not part of paperboy); times are
wall-clock on the awaiting side, which for the single writer is the SQLite thread's time.

``--without-index`` measures the floor under any full-text engine: the same import with
the FTS5 writes and the final merge left out (everything else, the analysis included,
still runs), written to ``bench/results/import_profile_without_index.json``. The papers
it stores are not searchable; it exists to show what budget an index has.

``--index-beside`` measures the same FTS5 writes moved beside the rows: into a second
database file, by a connection of their own on a thread of their own, while the store's
connection goes on with the next batch's rows (``import_profile_index_beside.json``).
paperboy does not do this (rows and index would no longer commit together); it shows
what that design would gain.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bot.store.papers as papers_module
import bot.store.writer as writer_module
from bench.corpus import generate
from bench.engine_probe import create_fts_tables
from bot.store import Database, PaperStore, native
from bot.store.driver import RawConnection

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parent / "data"


class Timers:
    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._originals: list[tuple[Any, str, Any]] = []

    def restore(self) -> None:
        """Put the wrapped functions back."""
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    def _record(self, key: str, seconds: float) -> None:
        self.seconds[key] += seconds
        self.calls[key] += 1

    def _swap(self, owner: Any, name: str, stand_in: Callable[[Any], Any]) -> None:
        """Put ``stand_in(original)`` in place of ``owner.name`` until :meth:`restore`."""
        original = getattr(owner, name)
        self._originals.append((owner, name, original))
        setattr(owner, name, stand_in(original))

    def wrap_async(self, owner: Any, name: str, label: Callable[..., str]) -> None:
        def wrap(original: Any) -> Any:
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self._record(label(*args), time.perf_counter() - started)

            return timed

        self._swap(owner, name, wrap)

    def wrap_sync(
        self,
        owner: Any,
        name: str,
        label: Callable[..., str],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Time a synchronous function by ``clock`` (wall time by default: one that runs
        on SQLite's thread)."""

        def wrap(original: Any) -> Any:
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = clock()
                try:
                    return original(*args, **kwargs)
                finally:
                    self._record(label(*args), clock() - started)

            return timed

        self._swap(owner, name, wrap)

    def replace(self, owner: Any, name: str, stand_in: Any) -> None:
        self._swap(owner, name, lambda _original: stand_in)

    def wrap_cpu(self, owner: Any, name: str, key: str) -> None:
        """The calling thread's CPU time in ``owner.name``, counted under ``key``."""
        self.wrap_sync(owner, name, lambda *_args: key, clock=time.thread_time)


def _fresh_file(name: str = "import-profile.db") -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _statement(_connection: Any, sql: str, *_: Any) -> str:
    return "SQL " + " ".join(sql.split())[:56]


def _no_index_batches(_kind: str, _rows: Any) -> list[Any]:
    return []


async def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


class IndexBeside:
    """The FTS5 writes of an import, done by a second connection on its own thread, into
    ``path``: each batch's statements in one transaction, then one ``optimize``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._work: queue.Queue[Any] = queue.Queue(maxsize=2)  # a batch ahead at most
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="index-beside", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            tables = create_fts_tables(db)
            while (batch := self._work.get()) is not None:
                try:
                    if batch == "optimize":
                        for table in tables:
                            db.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
                    else:
                        db.execute("BEGIN")
                        for statement, payload in batch:
                            db.execute(statement, [payload])
                        db.execute("COMMIT")
                except BaseException as exc:  # reported by the next write or merge
                    self._failure = exc
                finally:
                    self._work.task_done()
        finally:
            db.close()

    async def write(self, _raw: RawConnection, kind: str, rows: Any) -> None:
        self._raise()
        statements, payloads = writer_module._FTS_JSON[kind], writer_module._fts_payloads(rows)
        await asyncio.to_thread(self._work.put, list(zip(statements, payloads, strict=True)))

    async def merge_deferred(self, _db: Any, *, inserted: int) -> None:
        await asyncio.to_thread(self._work.put, "optimize")
        await asyncio.to_thread(self._work.join)
        self._raise()

    def close(self) -> None:
        self._work.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._failure is not None:
            raise RuntimeError("the index beside failed") from self._failure


MODES = {
    "store": "import_profile.json",
    "without-index": "import_profile_without_index.json",
    "index-beside": "import_profile_index_beside.json",
}


async def profile(count: int, *, mode: str = "store") -> dict[str, Any]:
    timers = Timers()
    beside = None
    try:
        if mode == "without-index":
            timers.replace(writer_module, "_fts_write", _nothing)
            timers.replace(writer_module, "_index_batches", _no_index_batches)
            timers.replace(papers_module, "merge_deferred", _nothing)
        elif mode == "index-beside":
            # The design it measures was made for the JSON batches (a statement each).
            timers.replace(native, "AVAILABLE", False)
            beside = IndexBeside(_fresh_file("import-profile-index.db"))
            timers.replace(writer_module, "_fts_write", beside.write)
            timers.replace(papers_module, "merge_deferred", beside.merge_deferred)
        return await _profile(count, timers) | {"mode": mode}
    finally:
        timers.restore()
        if beside is not None:
            beside.close()


async def _profile(count: int, timers: Timers) -> dict[str, Any]:
    for method in ("fetch", "execute", "executemany", "execute_rows"):
        timers.wrap_async(RawConnection, method, _statement)
    timers.wrap_sync(native, "execute_rows", _statement)  # each table of a native batch
    steps = {
        (papers_module.PaperStore, "_write"): "step: one batch's write transaction",
        (papers_module._SharedTransaction, "commit"): "step: commit of a bulk transaction",
        (papers_module, "upsert_chunk"): "step: upsert_chunk (without BEGIN/COMMIT)",
        (writer_module, "_insert"): "step: _insert (rows, FTS, waiting for the next batch)",
        (writer_module, "_lower_day_floors"): "step: day floors (Python + SQL)",
        (papers_module, "merge_deferred"): "step: the final FTS5 merge",
    }
    for (owner, name), key in steps.items():
        timers.wrap_async(owner, name, lambda *_args, key=key: key)
    timers.wrap_cpu(papers_module, "prepared_rows", "thread CPU: analysis + row encoding")

    papers = list(generate(count))
    path = _fresh_file()
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
        started, cpu = time.perf_counter(), time.process_time()
        await PaperStore(db).upsert(papers)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await db.close()
    rows = [
        {
            "what": key,
            "us_per_paper": round(seconds / count * 1e6, 1),
            "calls": timers.calls[key],
        }
        for key, seconds in timers.seconds.most_common()
    ]
    return {
        "papers": count,
        "wall_seconds": round(wall, 2),
        "papers_per_second": round(count / wall),
        "us_per_paper": round(wall / count * 1e6, 1),
        "process_cpu_us_per_paper": round(cpu / count * 1e6, 1),  # all threads
        "breakdown": rows,
    }


def main(argv: list[str]) -> int:
    flags = [a.removeprefix("--") for a in argv if a.startswith("--")]
    mode = flags[0] if flags else "store"
    if len(flags) > 1 or mode not in MODES:
        print("usage: python -m bench.import_profile [PAPERS] [--without-index | --index-beside]")
        return 2
    numbers = [a for a in argv if not a.startswith("--")]
    count = int(numbers[0]) if numbers else 200_000
    result = asyncio.run(profile(count, mode=mode))
    path = RESULTS / MODES[mode]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    what = "" if mode == "store" else f" ({mode})"
    print(
        f"{count:,} papers{what}: {result['papers_per_second']:,}/s ({result['us_per_paper']} us; "
        f"CPU of all threads {result['process_cpu_us_per_paper']} us)"
    )
    for row in result["breakdown"]:
        print(f"{row['us_per_paper']:8.1f} us  x{row['calls']:<5} {row['what']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

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
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bot.store.papers as papers_module
import bot.store.writer as writer_module
from bench.corpus import generate
from bot.store import Database, PaperStore
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

    def wrap_async(self, owner: Any, name: str, label: Callable[..., str]) -> None:
        original = getattr(owner, name)
        self._originals.append((owner, name, original))

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                key = label(*args)
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        setattr(owner, name, timed)

    def replace(self, owner: Any, name: str, stand_in: Any) -> None:
        self._originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, stand_in)

    def wrap_cpu(self, owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)
        self._originals.append((owner, name, original))

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] += time.thread_time() - started
                self.calls[key] += 1

        setattr(owner, name, timed)


def _fresh_file() -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / "import-profile.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _statement(_raw: RawConnection, sql: str, *_: Any) -> str:
    return "SQL " + " ".join(sql.split())[:56]


async def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


async def profile(count: int, *, index: bool = True) -> dict[str, Any]:
    timers = Timers()
    try:
        if not index:
            timers.replace(writer_module, "_fts_write", _nothing)
            timers.replace(papers_module, "merge_deferred", _nothing)
        return await _profile(count, timers) | {"index": index}
    finally:
        timers.restore()


async def _profile(count: int, timers: Timers) -> dict[str, Any]:
    for method in ("fetch", "execute", "executemany"):
        timers.wrap_async(RawConnection, method, _statement)
    steps = {
        (papers_module.PaperStore, "_write"): "step: one batch's write transaction",
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
    index = "--without-index" not in argv
    numbers = [a for a in argv if a != "--without-index"]
    count = int(numbers[0]) if numbers else 200_000
    result = asyncio.run(profile(count, index=index))
    path = RESULTS / ("import_profile.json" if index else "import_profile_without_index.json")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    what = "" if index else " without the full-text index"
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

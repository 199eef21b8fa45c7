"""How fast this machine is at the moment: a fixed workload, timed beside a benchmark.

The VM these benchmarks run on changes speed from hour to hour: the same 1M-paper import
has used 68 s of CPU in one hour and 134 s in another, with no steal time reported to
the guest. :func:`probe` times the same small piece of work every time, so a result
file says how fast the machine was while its figures were taken, and two runs of a
benchmark can be compared in proportion to it.

The workload is the import's own kind of work, without paperboy's code (so a change to
paperboy never changes the probe): an FTS5 insert of fixed text into an in-memory table,
configured as the store's (``detail=full``, contentless, ascii tokenizer), and a loop of
plain Python bytecode.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

PROBE_TEXTS = 20_000
PYTHON_LOOP = 2_000_000


def _fts5_insert(texts: Sequence[str]) -> float:
    """Seconds to index ``texts`` into a fresh in-memory FTS5 table."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE probe USING fts5(body, content='', columnsize=0, "
            "detail=full, tokenize='ascii')"
        )
        started = time.perf_counter()
        with conn:
            conn.executemany(
                "INSERT INTO probe (rowid, body) VALUES (?, ?)", enumerate(texts, start=1)
            )
        return time.perf_counter() - started
    finally:
        conn.close()


def _python_loop(n: int) -> float:
    """Seconds for ``n`` iterations of a small bytecode loop."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i % 7
    assert total >= 0
    return time.perf_counter() - started


def probe(texts: Sequence[str]) -> dict[str, float]:
    """Time the fixed workload over the first :data:`PROBE_TEXTS` of ``texts``.

    ``fts5_us_per_text``: an FTS5 insert per text; ``python_ns_per_loop``: one
    iteration of the bytecode loop. Lower is faster; same ``texts``, same work.
    """
    sample = [text.lower() for text in texts[:PROBE_TEXTS]]
    fts5 = min(_fts5_insert(sample) for _ in range(2))
    loop = min(_python_loop(PYTHON_LOOP) for _ in range(2))
    return {
        "texts": len(sample),
        "fts5_us_per_text": round(fts5 / max(len(sample), 1) * 1e6, 2),
        "python_ns_per_loop": round(loop / PYTHON_LOOP * 1e9, 2),
    }


__all__ = ["probe"]

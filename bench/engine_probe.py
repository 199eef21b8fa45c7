"""What indexing alone costs per paper, FTS5 against tantivy, on the same documents.

``python -m bench.engine_probe [PAPERS]`` (default 100,000) analyzes synthetic papers
once with paperboy's analyzer (``bot.store.fulltext.fts_document``), then indexes the same
analyzed text

* into a contentless FTS5 table configured as the store's (``ascii`` tokenizer,
  ``detail=full``, ``columnsize=0``, 32 MiB hash, merging deferred to one ``optimize``),
  5,000 papers per transaction, with the stdlib ``sqlite3`` (no asyncio, no rows table);
  then the same with ``detail=column`` (no phrase queries) and ``detail=none`` (no
  phrases, no column filters), to show what the search features cost at indexing time;
* into tantivy (PyPI ``tantivy``, not a paperboy dependency: the probe skips it when it
  is not installed), whitespace tokenizer, positions, on 1 and on 2 indexing threads.

It reports CPU microseconds per paper (the process's CPU, so tantivy's own threads
count) and the ceiling they put on an import on this machine: its cores divided by
analysis + indexing CPU, as if storing the rows and everything else were free. Results
go to ``bench/results/engine_probe.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.corpus import generate
from bot.store.fulltext import fts_document
from bot.store.writer import _MERGING, Document

RESULTS = Path(__file__).resolve().parent / "results" / "engine_probe.json"
BATCH = 5000
COLUMNS = ("title", "keywords", "abstract", "authors", "votes")


def analyzed(count: int) -> tuple[list[Document], float]:
    """``count`` analyzed papers and the CPU seconds the analysis took."""
    papers = list(generate(count))
    started = time.process_time()
    documents = [fts_document(paper) for paper in papers]  # what the store indexes
    return documents, time.process_time() - started


def _timed(work: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds of the whole process, wall seconds) ``work`` took."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def probe_fts5(
    documents: Sequence[Document], directory: Path, detail: str = "full"
) -> dict[str, Any]:
    """The store's two FTS5 tables, fed as a bulk import feeds them (``detail`` other
    than the store's ``full``: the big table only, the title table stays as it is)."""
    db = sqlite3.connect(directory / f"fts5-{detail}.db", isolation_level=None)
    tables = create_fts_tables(db, detail)
    seconds = {"insert": 0.0, "commit": 0.0}

    def insert() -> None:
        for start in range(0, len(documents), BATCH):
            batch = documents[start : start + BATCH]
            began = time.process_time()
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO papers_fts (rowid, title, keywords, abstract, authors, votes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(start + i + 1, *doc) for i, doc in enumerate(batch)],
            )
            db.executemany(
                "INSERT INTO papers_head_fts (rowid, title, keywords, votes) VALUES (?, ?, ?, ?)",
                [(start + i + 1, d[0], d[1], d[4]) for i, d in enumerate(batch)],
            )
            committing = time.process_time()
            db.execute("COMMIT")
            seconds["insert"] += committing - began
            seconds["commit"] += time.process_time() - committing

    def optimize() -> None:
        for table in tables:
            db.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")

    cpu, wall = _timed(insert)
    merge_cpu, merge_wall = _timed(optimize)
    _check_fts5(db, documents, detail)
    db.close()
    count = len(documents)
    return {
        "engine": f"FTS5 (SQLite {sqlite3.sqlite_version})"
        + ("" if detail == "full" else f" detail={detail}"),
        "threads": 1,
        "cpu_us_per_paper": round((cpu + merge_cpu) / count * 1e6, 1),
        "wall_us_per_paper": round((wall + merge_wall) / count * 1e6, 1),
        "breakdown_cpu_us": {
            "insert": round(seconds["insert"] / count * 1e6, 1),
            "commit (segment flush)": round(seconds["commit"] / count * 1e6, 1),
            "optimize (one merge)": round(merge_cpu / count * 1e6, 1),
        },
    }


def create_fts_tables(db: sqlite3.Connection, detail: str = "full") -> dict[str, str]:
    """The store's two FTS5 tables in ``db`` (WAL), set up as a bulk import sets them
    (``detail`` for the big one); returns their columns by table."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    tables = {"papers_fts": ", ".join(COLUMNS), "papers_head_fts": "title, keywords, votes"}
    for table, columns in tables.items():
        level = detail if table == "papers_fts" else "full"
        db.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({columns}, "
            f"content='', columnsize=0, detail={level}, tokenize='ascii')"
        )
        settings = {"hashsize": 33554432, **_MERGING["bulk"]}  # as migrations and bulk() set
        for setting, value in settings.items():
            db.execute(f"INSERT INTO {table}({table}, rank) VALUES ('{setting}', {value})")
    return tables


def _check_fts5(
    db: sqlite3.Connection, documents: Sequence[Document], detail: str = "full"
) -> None:
    """Raise unless sampled documents are found by a phrase of their own abstract, or
    what of it ``detail`` can answer (a probe of an index that does not work would
    measure nothing)."""
    step = max(1, len(documents) // 50)
    for rowid in range(1, len(documents) + 1, step):
        words = documents[rowid - 1][2].split()[:3]
        if not words:
            continue
        query = {
            "full": '{abstract} : "' + " ".join(words) + '"',
            "column": "{abstract} : (" + " AND ".join(words) + ")",
            "none": " AND ".join(words),
        }[detail]
        found = db.execute(
            "SELECT 1 FROM papers_fts WHERE papers_fts MATCH ? AND rowid = ?", (query, rowid)
        ).fetchone()
        if found is None:
            raise RuntimeError(f"FTS5 did not find paper {rowid} by {query}")


def probe_tantivy(documents: Sequence[Document], directory: Path, threads: int) -> dict[str, Any]:
    """The same documents in a tantivy index with ``threads`` indexing threads."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("rowid", stored=True, indexed=True, fast=True)
    for column in COLUMNS:
        builder.add_text_field(column, tokenizer_name="whitespace", index_option="position")
    schema = builder.build()
    path = directory / f"tantivy-{threads}"
    path.mkdir()
    index = tantivy.Index(schema, path=str(path))
    writer = index.writer(heap_size=1_000_000_000, num_threads=threads)

    def add() -> None:
        for rowid, doc in enumerate(documents, start=1):
            fields = dict(zip(COLUMNS, doc, strict=True))
            writer.add_document(tantivy.Document(rowid=rowid, **fields))

    def commit() -> None:
        writer.commit()
        writer.wait_merging_threads()

    cpu, wall = _timed(add)
    commit_cpu, commit_wall = _timed(commit)
    count = len(documents)
    return {
        "engine": f"tantivy {tantivy.__version__.split(',')[0].removeprefix('tantivy ')}",
        "threads": threads,
        "cpu_us_per_paper": round((cpu + commit_cpu) / count * 1e6, 1),
        "wall_us_per_paper": round((wall + commit_wall) / count * 1e6, 1),
        "breakdown_cpu_us": {
            "add_document (Python object, tokenizing, indexing)": round(cpu / count * 1e6, 1),
            "commit and merges": round(commit_cpu / count * 1e6, 1),
        },
    }


def run(count: int) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    documents, analysis_cpu = analyzed(count)
    analysis_us = analysis_cpu / count * 1e6
    engines: list[dict[str, Any]] = []
    directory = Path(tempfile.mkdtemp(prefix="engine-probe-"))
    try:
        engines.extend(probe_fts5(documents, directory, d) for d in ("full", "column", "none"))
        try:
            import tantivy  # noqa: F401
        except ImportError:
            skipped = "tantivy is not installed (pip install tantivy)"
        else:
            skipped = None
            engines.extend(probe_tantivy(documents, directory, t) for t in (1, 2))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    for engine in engines:
        total = analysis_us + engine["cpu_us_per_paper"]
        engine["analysis_plus_index_cpu_us"] = round(total, 1)
        engine["ceiling_papers_per_second"] = round(cores / total * 1e6)
    tokens = sum(len(" ".join(doc).split()) for doc in documents) / count
    return {
        "papers": count,
        "cores": cores,
        "tokens_per_paper": round(tokens, 1),
        "analysis_cpu_us_per_paper": round(analysis_us, 1),
        "engines": engines,
        **({"tantivy": skipped} if skipped else {}),
        "ceiling": "cores / (analysis + indexing CPU per paper): rows, commits and the "
        "rest of an import taken as free",
    }


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 100_000
    result = run(count)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{count:,} papers, {result['tokens_per_paper']} tokens each; analysis "
        f"{result['analysis_cpu_us_per_paper']} us CPU per paper"
    )
    for engine in result["engines"]:
        print(
            f"{engine['engine']:>36} x{engine['threads']}: {engine['cpu_us_per_paper']:6.1f} us "
            f"CPU, {engine['wall_us_per_paper']:6.1f} us wall per paper; ceiling with analysis "
            f"on {result['cores']} cores: {engine['ceiling_papers_per_second']:,}/s"
        )
    if "tantivy" in result:
        print(result["tantivy"])
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

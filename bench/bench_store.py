"""Store benchmark: import throughput and search latency, SQLite and PostgreSQL.

Environment:
  BENCH_PAPERS      papers for SQLite (default 1,000,000)
  BENCH_PG_PAPERS   papers for PostgreSQL (default: BENCH_PAPERS, at most 200,000)
  BENCH_PG_URL      PostgreSQL server URL (default: PAPERBOY_TEST_DATABASE_URL); the
                    benchmark creates and drops its own database there
  BENCH_ROUNDS      timed rounds over the query mix (default 5, after one warm-up)
  BENCH_DATABASES   which to run (default "sqlite,postgresql")
"""

from __future__ import annotations

import gc
import os
import platform
import sqlite3
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.corpus import SPAN, START, CorpusGenerator
from bench.machine_speed import probe as machine_speed
from bot.models import Paper
from bot.query import parse
from bot.store import Database, PaperStore
from bot.store.writer import segment_counts

DATA_DIR = Path(__file__).resolve().parent / "data"

# The fixed query mix: (category, query). Very common terms, phrases, rare terms,
# OR, exclusions, fields and queries without any full match (partial results).
QUERY_MIX: list[tuple[str, str]] = [
    ("common-1", "model"),
    ("common-1", "learning"),
    ("common-1", "data"),
    ("common-2", "language model"),
    ("common-2", "diffusion model"),
    ("common-2", "video generation"),
    ("common-3", "large language models"),
    ("common-4", "reinforcement learning reasoning benchmark"),
    ("common-4", "efficient training large models"),
    ("phrase", '"large language models"'),
    ("phrase", '"language model"'),
    ("phrase", '"state of the art"'),
    ("phrase", '"video generation"'),
    ("phrase", '"reinforcement learning" reasoning'),
    ("mixed", "diffusion transformer image"),
    ("mixed", "multimodal reasoning benchmark"),
    ("mixed", "robot manipulation policy"),
    ("mixed", "speech recognition"),
    ("or", 'mamba OR ssm OR "state space"'),
    ("or", "video OR image generation"),
    ("exclude", "diffusion -video"),
    ("exclude", "language model -survey -benchmark"),
    ("field", "title:diffusion"),
    ("field", 'title:"language model"'),
    ("partial", "diffusion zyxwvut"),
    ("partial", "protein folding quantum chemistry"),
]


def _rare_queries(generator: CorpusGenerator) -> list[tuple[str, str]]:
    # Names from the generator's long tail: a few hundred to a handful of papers each.
    names = generator.names
    return [
        ("rare-1", names[40]),
        ("rare-1", names[400]),
        ("rare-1", names[4000]),
        ("rare-2", f"{names[300]} model"),
        ("rare-author", f"author:{names[150]}"),
        ("rare-phrase", f'"{names[800]} {names[900]}"'),
    ]


def _percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


async def _import(store: PaperStore, papers: list[Paper]) -> dict[str, Any]:
    gc.collect()
    started = time.perf_counter()
    cpu = time.process_time()
    result = await store.upsert(papers)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    report: dict[str, Any] = {
        "papers": len(papers),
        "inserted": result.inserted,
        "seconds": round(seconds, 2),
        "papers_per_second": round(len(papers) / seconds),
        "process_cpu_seconds": round(cpu_seconds, 2),
    }
    if store.db.dialect == "sqlite":
        report["segments_left"] = await segment_counts(store.db)
    return report


async def _optimize(store: PaperStore, imported: dict[str, Any]) -> None:
    """``PaperStore.optimize()``, timed apart from the import (FTS5 `optimize`: all
    segments into one; PostgreSQL `VACUUM ANALYZE`)."""
    started = time.perf_counter()
    await store.optimize()
    seconds = time.perf_counter() - started
    imported["optimize_seconds"] = round(seconds, 2)
    imported["papers_per_second_including_optimize"] = round(
        imported["papers"] / (imported["seconds"] + seconds)
    )


async def _search_latency(
    store: PaperStore, mix: list[tuple[str, str]], rounds: int
) -> dict[str, Any]:
    parsed = [(category, text, parse(text)) for category, text in mix]
    since = START + SPAN - timedelta(days=30)
    variants = [
        ("page-1", {}),
        ("page-3", {"offset": 20}),
        ("since-30d", {"since": since}),
        ("min-upvotes-10", {"min_upvotes": 10}),
    ]
    for _, _, query in parsed:  # warm-up round (page cache, analyzer memo)
        await store.search(query)
    samples: list[float] = []
    by_category: dict[str, list[float]] = {}
    by_variant: dict[str, list[float]] = {}
    by_query: dict[str, list[float]] = {}
    results: dict[str, int] = {}
    for _ in range(rounds):
        for variant, kwargs in variants:
            for category, text, query in parsed:
                started = time.perf_counter()
                result = await store.search(query, limit=10, **kwargs)
                elapsed = (time.perf_counter() - started) * 1000
                samples.append(elapsed)
                by_category.setdefault(category, []).append(elapsed)
                by_variant.setdefault(variant, []).append(elapsed)
                if variant == "page-1":
                    by_query.setdefault(text, []).append(elapsed)
                    results[text] = len(result.papers) * (-1 if result.partial else 1)
    return {
        "all": _percentiles(samples),
        "by_category": {k: _percentiles(v) for k, v in sorted(by_category.items())},
        "by_variant": {k: _percentiles(v) for k, v in by_variant.items()},
        "by_query_p50_ms": {k: round(statistics.median(v), 2) for k, v in by_query.items()},
        "results_on_page_1 (negative = partial matches)": results,
    }


async def _bench_database(
    url: str, papers: list[Paper], mix: list[tuple[str, str]], rounds: int
) -> dict[str, Any]:
    db = await Database.connect(url)
    try:
        await db.upgrade()
        store = PaperStore(db)
        imported = await _import(store, papers)
        # SQLite: ~0 s, the bulk import merged its segments. PostgreSQL: VACUUM flushes the
        # GIN pending lists that every search would scan.
        await _optimize(store, imported)
        latency = await _search_latency(store, mix, rounds)
    finally:
        await db.close()
    return {"import": imported, "search": latency}


def _fresh_sqlite_file(count: int) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"bench-{count}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _file_size(path: Path) -> int:
    return path.stat().st_size


async def _bench_sqlite(papers: list[Paper], mix, rounds: int) -> dict[str, Any]:
    path = _fresh_sqlite_file(len(papers))
    result = await _bench_database(f"sqlite+aiosqlite:///{path}", papers, mix, rounds)
    result["database_bytes"] = _file_size(path)
    result["sqlite_version"] = sqlite3.sqlite_version
    return result


async def _bench_postgresql(
    server_url: str, papers: list[Paper], mix, rounds: int
) -> dict[str, Any]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"paperboy_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        result = await _bench_database(url, papers, mix, rounds)
        async with admin.connect() as conn:
            version = (await conn.exec_driver_sql("SHOW server_version")).scalar_one()
        result["server_version"] = version
        return result
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def run() -> dict[str, Any]:
    count = int(os.environ.get("BENCH_PAPERS", "1000000"))
    pg_count = int(os.environ.get("BENCH_PG_PAPERS", str(min(count, 200_000))))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    pg_url = os.environ.get("BENCH_PG_URL") or os.environ.get("PAPERBOY_TEST_DATABASE_URL")

    generator = CorpusGenerator()
    started = time.perf_counter()
    papers = list(generator.papers(count))
    generate_seconds = time.perf_counter() - started
    mix = QUERY_MIX + _rare_queries(generator)
    abstracts = [p.abstract for p in papers[:20_000]]
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # The same fixed work before and after: how fast the VM was during this run
            # (bench/machine_speed.py; compare runs in proportion to it).
            "speed_before": machine_speed(abstracts),
        },
        "corpus": {
            "papers": count,
            "generator_seed": generator.seed,
            "generate_seconds": round(generate_seconds, 1),
            "mean_abstract_words": round(
                statistics.fmean(len(p.abstract.split()) for p in papers[:10000]), 1
            ),
        },
        "targets": {"import_papers_per_second": 20000, "search_p50_ms": 5, "search_p95_ms": 20},
        "query_mix": [q for _, q in mix],
    }
    databases = os.environ.get("BENCH_DATABASES", "sqlite,postgresql").split(",")
    if "sqlite" in databases:
        report["sqlite"] = await _bench_sqlite(papers, mix, rounds)
    if "postgresql" not in databases:
        pass
    elif pg_url:
        try:
            # A smaller corpus of its own, spanning the same dates (the first papers of the
            # big one are all old: `since` searches would find nothing there).
            pg_papers = papers if pg_count >= count else list(generator.papers(pg_count))
            report["postgresql"] = await _bench_postgresql(pg_url, pg_papers, mix, rounds)
            report["postgresql"]["papers"] = pg_count
            if pg_count < count:
                report["postgresql"]["note"] = (
                    f"PostgreSQL ran on a corpus of {pg_count} papers over the same dates "
                    "(import is slower there; set BENCH_PG_PAPERS to change)"
                )
        except OSError as exc:
            report["postgresql"] = {"skipped": f"not reachable: {exc}"}
    else:
        report["postgresql"] = {"skipped": "set BENCH_PG_URL or PAPERBOY_TEST_DATABASE_URL"}
    report["machine"]["speed_after"] = machine_speed(abstracts)
    return report

"""Store benchmark: import, search and hybrid search at scale, beside raw tantivy.

Environment:
  BENCH_PAPERS      synthetic papers (default 1,000,000)
  BENCH_RUNS        imports timed, each into fresh folders (default 3; medians reported)
  BENCH_ROUNDS      timed rounds over the query mix, after one warm-up (default 5)
  BENCH_MODEL_DIR   an embedding model folder (e.g. all-MiniLM-L6-v2 ONNX): enables the
                    hybrid part, with synthetic vectors for the corpus (see below)
  BENCH_MODEL       its fastembed name (default sentence-transformers/all-MiniLM-L6-v2)
  BENCH_PG_PAPERS   papers for PostgreSQL (default: BENCH_PAPERS, at most 200,000)
  BENCH_PG_URL      PostgreSQL server URL (default: PAPERBOY_TEST_DATABASE_URL); the
                    benchmark creates and drops its own database there
  BENCH_DATABASES   which to run (default "sqlite,postgresql")

**Import** is what ``paperboy import`` does: ``PaperStore.upsert`` of every paper into a
fresh SQLite file with the search engine following (its catch-up included in the time),
until the lexical index holds every paper. The baseline, in the same process on the
same papers: raw tantivy (its own en_stem analyzer over title, keywords, abstract and
authors, 128 MB writer heap, default threads), from ``Document`` to commit.

**Search**: the query mix through ``SearchEngine.search`` (page 1, page 3, since 30
days, min-upvotes 10), and the page-1 queries through raw tantivy's own query parser
(title boosted 2), interleaved. **Cold**: the first search of a freshly opened engine.
**Incremental**: 200 new papers upserted and searchable (one poll's worth, a busy day).

**Hybrid**: real vectors cannot be computed for a million papers here (~15 papers/s), so
the corpus gets synthetic ones shaped like real ones: the seed papers are embedded with
the real model, and each synthetic paper takes a seed paper's vectors mixed with
another's and noise, renormalised. Queries are embedded by the real model, inside the
timed search.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from bench.corpus import SPAN, START, CorpusGenerator
from bench.machine_speed import probe as machine_speed
from bot.models import Paper
from bot.query import parse
from bot.search import SearchEngine
from bot.store import Database, PaperStore

DATA_DIR = Path(__file__).resolve().parent / "data" / "store"

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
    ("sentence", "remove layer normalization from transformers"),
    ("sentence", "teach a robot to fold clothes from videos of people"),
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


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {"n": len(ordered), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median of the runs, with min and max (never the best run alone)."""
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": [round(v, 2) for v in values],
    }


def folder_bytes(*paths: Path) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- raw tantivy ---------------------------------------------------------------------


def raw_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for field in ("title", "keywords", "abstract", "authors"):
        builder.add_text_field(field, tokenizer_name="en_stem")
    builder.add_integer_field("row", indexed=True, fast=True)
    return builder.build()


def raw_import(papers: Sequence[Paper], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(raw_schema(), path=str(folder))
    started = time.perf_counter()
    writer = index.writer(heap_size=128_000_000)
    for row, paper in enumerate(papers):
        writer.add_document(
            tantivy.Document(
                title=paper.title,
                keywords=" ".join(paper.ai_keywords),
                abstract=paper.abstract,
                authors=" ".join(paper.author_names),
                row=row,
            )
        )
    writer.commit()
    writer.wait_merging_threads()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "papers_per_second": round(len(papers) / seconds),
        "bytes": folder_bytes(folder),
    }


def raw_query_text(text: str) -> str:
    return text.replace("author:", "authors:")


# --- paperboy ------------------------------------------------------------------------


async def open_store(folder: Path) -> tuple[Database, PaperStore]:
    db = await Database.connect(f"sqlite+aiosqlite:///{folder / 'paperboy.db'}")
    await db.upgrade()
    return db, PaperStore(db)


async def paperboy_import(papers: Sequence[Paper], folder: Path) -> dict[str, Any]:
    """``paperboy import``: the store and the lexical index following it."""
    db, store = await open_store(folder)
    engine = await SearchEngine(store, folder / "search").open()
    try:
        started = time.perf_counter()
        cpu = time.process_time()
        await store.upsert(papers)
        await engine.catch_up()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
        assert engine.lexical.index is not None and engine.lexical.index.size == len(papers)
    finally:
        await engine.close()
        await db.close()
    database = await asyncio.to_thread(lambda: folder_bytes(*folder.glob("paperboy.db*")))
    return {
        "seconds": round(seconds, 2),
        "papers_per_second": round(len(papers) / seconds),
        "process_cpu_seconds": round(cpu_seconds, 2),
        "database_bytes": database,  # the write-ahead log included
        "index_bytes": await asyncio.to_thread(folder_bytes, folder / "search"),
    }


async def cold_first_query(folder: Path, text: str) -> float:
    db, store = await open_store(folder)
    try:
        started = time.perf_counter()
        engine = await SearchEngine(store, folder / "search").open()
        opened = time.perf_counter()
        await engine.search(parse(text), limit=10)
        searched = time.perf_counter()
        await engine.close()
    finally:
        await db.close()
    return round((opened - started) * 1000, 2), round((searched - opened) * 1000, 2)


async def incremental(store: PaperStore, engine: SearchEngine, new: list[Paper]) -> dict:
    started = time.perf_counter()
    await store.upsert(new)
    stored = time.perf_counter()
    title = " ".join(new[-1].title.replace('"', " ").split())
    found = await engine.full_matches(parse(f'title:"{title}"'), limit=100)
    done = time.perf_counter()
    assert new[-1].id in {p.id for p in found}
    return {
        "papers": len(new),
        "store_ms": round((stored - started) * 1000, 1),
        "searchable_after_ms": round((done - started) * 1000, 1),
    }


async def lexical_latency(
    engine: SearchEngine, raw: tantivy.Index, mix: list[tuple[str, str]], rounds: int
) -> dict[str, Any]:
    since = START + SPAN - timedelta(days=30)
    variants = [
        ("page-1", {}),
        ("page-3", {"offset": 20}),
        ("since-30d", {"since": since}),
        ("min-upvotes-10", {"min_upvotes": 10}),
    ]
    raw_searcher = raw.searcher()
    fields = ["title", "keywords", "abstract"]

    def raw_search(text: str) -> int:
        query = raw.parse_query(raw_query_text(text), fields, field_boosts={"title": 2.0})
        return len(raw_searcher.search(query, 10).hits)

    parsed = [(category, text, parse(text)) for category, text in mix]
    for _, text, query in parsed:  # warm-up
        await engine.search(query)
        raw_search(text)
    ours: list[float] = []
    theirs: list[float] = []
    by_variant: dict[str, list[float]] = {}
    by_category: dict[str, list[float]] = {}
    for _ in range(rounds):
        for variant, kwargs in variants:
            for category, text, query in parsed:
                started = time.perf_counter()
                await engine.search(query, limit=10, **kwargs)
                elapsed = (time.perf_counter() - started) * 1000
                by_variant.setdefault(variant, []).append(elapsed)
                if variant == "page-1":
                    ours.append(elapsed)
                    by_category.setdefault(category, []).append(elapsed)
                    started = time.perf_counter()
                    raw_search(text)
                    theirs.append((time.perf_counter() - started) * 1000)
    page_one, raw_one = percentiles(ours), percentiles(theirs)
    return {
        "paperboy_page_1": page_one,
        "raw_tantivy_page_1": raw_one,
        "p95_ratio": round(page_one["p95_ms"] / raw_one["p95_ms"], 2),
        "by_variant": {k: percentiles(v) for k, v in by_variant.items()},
        "by_category": {k: percentiles(v) for k, v in sorted(by_category.items())},
    }


# --- hybrid ---------------------------------------------------------------------------


def synthetic_vectors(
    model: Any, papers: Sequence[Paper], seed: int = 7
) -> tuple[list[np.ndarray], float]:
    """Vectors for ``papers`` shaped like real ones (see the module docstring), and how
    many real papers per second the model embedded while making them."""
    from bot.search.embedding import paper_texts
    from tests.conftest import load_seed_papers

    seeds = load_seed_papers()
    started = time.perf_counter()
    real = [model.embed_passages(paper_texts(p)) for p in seeds]
    rate = len(seeds) / (time.perf_counter() - started)
    rng = np.random.default_rng(seed)
    out = []
    for _ in papers:
        a, b = real[rng.integers(len(real))], real[rng.integers(len(real))]
        mix = a + 0.5 * b[rng.integers(len(b), size=len(a))]
        mix = mix + rng.normal(0, 0.03, size=mix.shape)
        out.append((mix / np.linalg.norm(mix, axis=1, keepdims=True)).astype(np.float32))
    return out, rate


async def hybrid_part(
    folder: Path, papers: list[Paper], mix: list[tuple[str, str]], rounds: int
) -> dict[str, Any]:
    from bench.bench_relevance import load_model, read_set
    from bot.store.vectors import VectorStore

    model, described = load_model()
    db, store = await open_store(folder)
    report: dict[str, Any] = {"model": described}
    try:
        vectors, rate = synthetic_vectors(model, papers)
        report["embedding_papers_per_second_real_model"] = round(rate, 1)
        vector_store = VectorStore(db, model.name, model.dimensions)
        rows = {p.id: i for p, i in zip(papers, range(1, len(papers) + 1), strict=True)}
        started = time.perf_counter()
        batch = 5000
        for start in range(0, len(papers), batch):
            chunk = papers[start : start + batch]
            await vector_store.save(
                [(rows[p.id], p, vectors[start + i]) for i, p in enumerate(chunk)]
            )
        report["vectors_stored_seconds"] = round(time.perf_counter() - started, 1)
        del vectors
        before = rss_mb()
        started = time.perf_counter()
        engine = await SearchEngine(store, folder / "search", embedder=lambda: model).open()
        await engine.semantic.wait_loaded()
        await engine.semantic.refresh(force=True)
        report["vector_index_build_seconds"] = round(time.perf_counter() - started, 1)
        report["rss_mb_before_and_after_vector_index"] = [before, rss_mb()]
        assert engine.semantic.usable, engine.semantic.status
        sentences = [
            (s, q) for s in ("known_items_dev", "known_items_dev_hard") for q, _ in read_set(s)[:15]
        ]
        queries = [q for _, q in mix] + [q for _, q in sentences]
        for text in queries:  # warm-up
            await engine.search(parse(text))
        samples: list[float] = []
        for _ in range(rounds):
            for text in queries:
                started = time.perf_counter()
                await engine.search(parse(text), limit=10)
                samples.append((time.perf_counter() - started) * 1000)
        report["hybrid_search_including_query_embedding"] = percentiles(samples)
        await engine.close()
    finally:
        await db.close()
    return report


# --- PostgreSQL -----------------------------------------------------------------------


async def postgresql_part(server_url: str, papers: list[Paper], mix, rounds: int) -> dict:
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"paperboy_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    folder = DATA_DIR / "postgresql"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        db = await Database.connect(url)
        await db.upgrade()
        store = PaperStore(db)
        engine = await SearchEngine(store, folder / "search").open()
        started = time.perf_counter()
        await store.upsert(papers)
        await engine.catch_up()
        seconds = time.perf_counter() - started
        samples = []
        parsed = [parse(text) for _, text in mix]
        for query in parsed:
            await engine.search(query)
        for _ in range(rounds):
            for query in parsed:
                started = time.perf_counter()
                await engine.search(query, limit=10)
                samples.append((time.perf_counter() - started) * 1000)
        await engine.close()
        await db.close()
        return {
            "papers": len(papers),
            "import_papers_per_second": round(len(papers) / seconds),
            "search": percentiles(samples),
        }
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


async def run() -> dict[str, Any]:
    count = int(os.environ.get("BENCH_PAPERS", "1000000"))
    runs = max(3, int(os.environ.get("BENCH_RUNS", "3")))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    pg_count = int(os.environ.get("BENCH_PG_PAPERS", str(min(count, 200_000))))
    pg_url = os.environ.get("BENCH_PG_URL") or os.environ.get("PAPERBOY_TEST_DATABASE_URL")
    databases = os.environ.get("BENCH_DATABASES", "sqlite,postgresql").split(",")

    generator = CorpusGenerator()
    papers = list(generator.papers(count + 200))
    papers, new_papers = papers[:count], papers[count:]
    mix = QUERY_MIX + _rare_queries(generator)
    abstracts = [p.abstract for p in papers[:20_000]]
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "speed_before": machine_speed(abstracts),
        },
        "corpus": {"papers": count, "generator_seed": generator.seed},
        "targets": {
            "import_ratio_to_raw_tantivy": 0.6,
            "lexical_p95_ratio_to_raw_tantivy": 1.2,
            "lexical_p95_ms": 50,
            "hybrid_p95_ms": 100,
        },
        "query_mix": [q for _, q in mix],
    }
    if "sqlite" in databases:
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        imports = []
        for run_number in range(runs):
            folder = DATA_DIR / f"run-{run_number}"
            ours = await paperboy_import(papers, folder)
            raw = raw_import(papers, DATA_DIR / f"raw-{run_number}")
            imports.append({"paperboy": ours, "raw_tantivy": raw})
            last = run_number == runs - 1
            if not last:
                shutil.rmtree(folder)
                shutil.rmtree(DATA_DIR / f"raw-{run_number}")
        ratios = [
            i["paperboy"]["papers_per_second"] / i["raw_tantivy"]["papers_per_second"]
            for i in imports
        ]
        report["import"] = {
            "runs": imports,
            "paperboy_papers_per_second": spread(
                [i["paperboy"]["papers_per_second"] for i in imports]
            ),
            "raw_tantivy_papers_per_second": spread(
                [i["raw_tantivy"]["papers_per_second"] for i in imports]
            ),
            "ratio": spread(ratios),
        }
        folder, raw_folder = DATA_DIR / f"run-{runs - 1}", DATA_DIR / f"raw-{runs - 1}"
        report["cold_first_query_ms"] = dict(
            zip(
                ("open", "first_search"),
                await cold_first_query(folder, "diffusion model"),
                strict=True,
            )
        )
        db, store = await open_store(folder)
        engine = await SearchEngine(store, folder / "search").open()
        try:
            report["incremental_upsert"] = await incremental(store, engine, new_papers)
            raw_index = tantivy.Index.open(str(raw_folder))
            report["lexical_search"] = await lexical_latency(engine, raw_index, mix, rounds)
            report["rss_mb_lexical_engine_open"] = rss_mb()
        finally:
            await engine.close()
            await db.close()
        if os.environ.get("BENCH_MODEL_DIR"):
            report["hybrid"] = await hybrid_part(folder, papers, mix, rounds)
        else:
            report["hybrid"] = {"skipped": "set BENCH_MODEL_DIR to an embedding model folder"}
    if "postgresql" in databases:
        if pg_url:
            pg_papers = papers[:pg_count]
            try:
                report["postgresql"] = await postgresql_part(pg_url, pg_papers, mix, rounds)
            except OSError as exc:
                report["postgresql"] = {"skipped": f"not reachable: {exc}"}
        else:
            report["postgresql"] = {"skipped": "set BENCH_PG_URL or PAPERBOY_TEST_DATABASE_URL"}
    report["machine"]["speed_after"] = machine_speed(abstracts)
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    return report


__all__ = ["QUERY_MIX", "run"]

"""Relevance on the dev sets: ``python -m bench relevance``.

The 503 seed papers (tests/fixtures) are imported into a throw-away SQLite store and
searched through paperboy's own :class:`bot.search.SearchEngine` with the queries of
``bench/eval`` (hand-written judgments, see its README), twice: by words alone, and
hybrid with the embedding model. Metrics: MRR@10 and recall@10 for the known-item sets,
nDCG@10 (gain 2 for strongly, 1 for partly relevant papers) and recall@50 for topics.

The model: ``BENCH_MODEL_DIR`` (a folder fastembed loads, e.g. an all-MiniLM-L6-v2 ONNX
export), named by ``BENCH_MODEL`` (default sentence-transformers/all-MiniLM-L6-v2);
without ``BENCH_MODEL_DIR`` the model is loaded by name (downloaded once into
``BENCH_MODEL_CACHE``, default ~/.cache/paperboy-bench). The result says which it used.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bot.query import parse
from bot.search import SearchEngine
from bot.search.embedding import FastEmbedder
from bot.store import Database, PaperStore

EVAL_DIR = Path(__file__).resolve().parent / "eval"
SETS = ("known_items_dev", "known_items_dev_hard", "topics_dev")
TARGETS = {
    "known_items_dev": {"mrr@10": 0.92},
    "known_items_dev_hard": {"mrr@10": 0.80},
    "topics_dev": {"ndcg@10": 0.88, "recall@50": 0.95},
}


def read_set(name: str) -> list[tuple[str, dict[str, int]]]:
    """``(query, {paper id: gain})`` of one judgment file."""
    judged = []
    for line in (EVAL_DIR / f"{name}.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        query, ids = line.split("\t")
        gains = {}
        for item in ids.split(","):
            item = item.strip()
            gains[item.rstrip("*")] = 2 if item.endswith("*") else 1
        judged.append((query, gains))
    return judged


def metrics(name: str, ranked: Sequence[list[str]], judged: Sequence[dict[str, int]]) -> dict:
    if name.startswith("known_items"):
        rr, hit = [], []
        for found, gains in zip(ranked, judged, strict=True):
            target = next(iter(gains))
            rank = found[:10].index(target) + 1 if target in found[:10] else None
            rr.append(1 / rank if rank else 0.0)
            hit.append(1.0 if rank else 0.0)
        return {"mrr@10": statistics.fmean(rr), "recall@10": statistics.fmean(hit)}
    ndcg, recall = [], []
    for found, gains in zip(ranked, judged, strict=True):
        dcg = sum(gains.get(p, 0) / math.log2(i + 2) for i, p in enumerate(found[:10]))
        ideal = sorted(gains.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg.append(dcg / idcg)
        recall.append(len(set(found[:50]) & set(gains)) / len(gains))
    return {"ndcg@10": statistics.fmean(ndcg), "recall@50": statistics.fmean(recall)}


async def evaluate(engine: SearchEngine) -> dict:
    report: dict = {}
    latencies: list[float] = []
    for name in SETS:
        judged = read_set(name)
        ranked = []
        for query, _ in judged:
            started = time.perf_counter()
            result = await engine.search(parse(query), limit=50)
            latencies.append(time.perf_counter() - started)
            ranked.append([p.id for p in result.papers])
        report[name] = {
            k: round(v, 3) for k, v in metrics(name, ranked, [g for _, g in judged]).items()
        }
    latencies.sort()
    report["search_ms_p50"] = round(latencies[len(latencies) // 2] * 1000, 2)
    return report


def load_model() -> tuple[FastEmbedder, str]:
    name = os.environ.get("BENCH_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    folder = os.environ.get("BENCH_MODEL_DIR")
    cache = Path(os.environ.get("BENCH_MODEL_CACHE", "~/.cache/paperboy-bench")).expanduser()
    model = FastEmbedder(
        name, cache_dir=cache, model_path=Path(folder) if folder else None, threads=None
    )
    return model, f"{name} ({'from ' + folder if folder else 'by name'})"


def met(report: dict) -> bool:
    return all(report[s][m] >= v for s, targets in TARGETS.items() for m, v in targets.items())


async def run() -> dict:
    from tests.conftest import load_seed_papers

    model, described = load_model()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        db = await Database.connect(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
        await db.upgrade()
        store = PaperStore(db)
        await store.upsert(load_seed_papers())
        lexical = await SearchEngine(store, directory / "lexical").open()
        await lexical.catch_up()
        words = await evaluate(lexical)
        await lexical.close()

        hybrid = await SearchEngine(store, directory / "hybrid", embedder=lambda: model).open()
        await hybrid.semantic.wait_loaded()
        started = time.perf_counter()
        embedded = await hybrid.semantic.embed_pending()
        embedding_seconds = time.perf_counter() - started
        await hybrid.catch_up()
        await hybrid.semantic.refresh(force=True)
        assert hybrid.semantic.usable, hybrid.semantic.status
        meaning = await evaluate(hybrid)
        await hybrid.close()
        await db.close()
    report = {
        "model": described,
        "papers": 503,
        "embedding": {
            "papers": embedded,
            "seconds": round(embedding_seconds, 1),
            "papers_per_second": round(embedded / embedding_seconds, 1),
        },
        "lexical": words,
        "hybrid": meaning,
        "targets": TARGETS,
        "hybrid_meets_targets": met(meaning),
    }
    for mode in ("lexical", "hybrid"):
        line = "  ".join(
            f"{s}: " + " / ".join(f"{m} {v}" for m, v in report[mode][s].items()) for s in SETS
        )
        print(f"{mode:8} {line}  (p50 {report[mode]['search_ms_p50']} ms)")
    return report


__all__ = ["run"]

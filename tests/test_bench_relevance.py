"""The relevance benchmark's judgments and metrics (bench/bench_relevance.py), and the store
benchmark end to end on a small corpus (bench/bench_store.py)."""

from __future__ import annotations

import math

import pytest

from bench import bench_relevance, bench_store


def test_the_dev_sets_are_in_the_repository():
    sizes = {name: len(bench_relevance.read_set(name)) for name in bench_relevance.SETS}
    assert sizes == {"known_items_dev": 80, "known_items_dev_hard": 50, "topics_dev": 25}
    query, gains = bench_relevance.read_set("topics_dev")[0]
    assert query == "mixture of experts routing" and gains["seed-0088"] == 2
    assert gains["seed-0175"] == 1  # unmarked: partly relevant


def test_known_item_metrics():
    ranked = [["a", "t1"], ["t2"], ["x"] * 10 + ["t3"]]
    judged = [{"t1": 1}, {"t2": 1}, {"t3": 1}]
    scores = bench_relevance.metrics("known_items_dev", ranked, judged)
    assert scores == {"mrr@10": pytest.approx((0.5 + 1 + 0) / 3), "recall@10": pytest.approx(2 / 3)}


def test_topic_metrics_use_graded_gains():
    ranked = [["p", "s", "n"]]
    judged = [{"s": 2, "p": 1}]
    scores = bench_relevance.metrics("topics_dev", ranked, judged)
    ideal = 2 + 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx((1 + 2 / math.log2(3)) / ideal)
    assert scores["recall@50"] == 1.0


async def test_the_store_benchmark_runs_and_compares_with_raw_tantivy(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_PAPERS", "300")
    monkeypatch.setenv("BENCH_ROUNDS", "1")
    monkeypatch.setenv("BENCH_DATABASES", "sqlite")
    monkeypatch.delenv("BENCH_MODEL_DIR", raising=False)
    monkeypatch.setattr(bench_store, "DATA_DIR", tmp_path / "store")
    report = await bench_store.run()
    assert len(report["import"]["runs"]) == 3
    assert report["import"]["ratio"]["min"] <= report["import"]["ratio"]["median"]
    assert report["lexical_search"]["paperboy_page_1"]["n"] == len(report["query_mix"])
    assert report["incremental_upsert"]["papers"] == 200
    assert "skipped" in report["hybrid"]

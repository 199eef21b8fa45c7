"""The engine probe (bench/engine_probe.py) measures a working FTS5 index."""

import sqlite3
import sys

import pytest

from bench import engine_probe


def test_probe_reports_fts5_and_skips_tantivy_when_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tantivy", None)  # import tantivy -> ImportError
    monkeypatch.setattr(engine_probe.tempfile, "tempdir", str(tmp_path))

    result = engine_probe.run(300)

    assert result["papers"] == 300
    assert result["tokens_per_paper"] > 20  # titles, keywords, abstracts, authors
    assert "not installed" in result["tantivy"]
    fts5, column, none = result["engines"]
    assert fts5["engine"].startswith("FTS5") and "detail" not in fts5["engine"]
    assert column["engine"].endswith("detail=column") and none["engine"].endswith("detail=none")
    assert all(engine["cpu_us_per_paper"] > 0 for engine in result["engines"])
    assert fts5["analysis_plus_index_cpu_us"] == pytest.approx(
        result["analysis_cpu_us_per_paper"] + fts5["cpu_us_per_paper"], abs=0.11
    )
    assert fts5["ceiling_papers_per_second"] == pytest.approx(
        result["cores"] / fts5["analysis_plus_index_cpu_us"] * 1e6, rel=5e-3
    )
    assert list(tmp_path.iterdir()) == []  # its scratch directory is gone


@pytest.mark.parametrize("detail", ["full", "column", "none"])
def test_check_fails_on_an_index_missing_a_document(tmp_path, detail):
    documents, _ = engine_probe.analyzed(3)
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute(
        "CREATE VIRTUAL TABLE papers_fts USING fts5(title, keywords, abstract, authors, votes, "
        f"content='', columnsize=0, detail={detail}, tokenize='ascii')"
    )
    db.executemany(
        "INSERT INTO papers_fts (rowid, title, keywords, abstract, authors, votes) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(i, *doc) for i, doc in enumerate(documents[:2], start=1)],
    )
    engine_probe._check_fts5(db, documents[:2], detail)  # both there: no error
    with pytest.raises(RuntimeError, match="paper 3"):
        engine_probe._check_fts5(db, documents, detail)

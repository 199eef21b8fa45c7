"""The import profiler (bench/import_profile.py) accounts for an import and cleans up."""

from __future__ import annotations

import json
import sqlite3

import bot.store.papers as papers
import bot.store.writer as writer
from bench import import_profile
from bot.store import native
from bot.store.driver import RawConnection


async def test_the_profile_breaks_a_bulk_import_down_and_unwraps_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(import_profile, "DATA", tmp_path)
    execute = RawConnection.execute
    result = await import_profile.profile(6_000)  # two transactions: a bulk import
    assert RawConnection.execute is execute  # the timers are gone
    rows = {row["what"]: row for row in result["breakdown"]}
    assert result["papers"] == 6_000 and result["papers_per_second"] > 0
    # the process CPU includes the analysis thread's
    thread_cpu = rows["thread CPU: analysis + row encoding"]["us_per_paper"]
    assert result["process_cpu_us_per_paper"] >= thread_cpu > 0
    if native.AVAILABLE:  # both batches in one bulk transaction
        commits = rows["step: commit of a bulk transaction"]
        assert commits["calls"] == 1 and 0 < commits["us_per_paper"] <= result["us_per_paper"]
    else:
        batches = rows["step: one batch's write transaction"]
        assert batches["calls"] == 2 and 0 < batches["us_per_paper"] <= result["us_per_paper"]
    assert rows["step: the final FTS5 merge"]["calls"] == 1
    assert any(what.startswith("SQL INSERT INTO papers_fts") for what in rows)
    with sqlite3.connect(tmp_path / "import-profile.db") as db:
        assert _matching(db, "model") > 1_000


def _matching(db: sqlite3.Connection, term: str) -> int:
    """Papers the full-text index finds for ``term``."""
    return db.execute(
        "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", [term]
    ).fetchone()[0]


async def test_without_the_index_it_stores_rows_but_writes_no_postings(tmp_path, monkeypatch):
    monkeypatch.setattr(import_profile, "DATA", tmp_path)
    fts_write, merge_deferred = writer._fts_write, papers.merge_deferred
    result = await import_profile.profile(6_000, mode="without-index")
    assert (writer._fts_write, papers.merge_deferred) == (fts_write, merge_deferred)
    rows = {row["what"] for row in result["breakdown"]}
    assert (
        result["mode"] == "without-index"
        and "SQL INSERT INTO papers (id, paper_id, title, abstract, autho" in rows
    )
    assert not any("fts" in what for what in rows)
    with sqlite3.connect(tmp_path / "import-profile.db") as db:
        assert db.execute("SELECT count(*) FROM papers").fetchone() == (6_000,)
        assert _matching(db, "model") == 0


def test_the_command_line_names_its_result_by_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(import_profile, "DATA", tmp_path / "data")
    monkeypatch.setattr(import_profile, "RESULTS", tmp_path / "results")
    assert import_profile.main(["3000", "--without-index"]) == 0
    saved = json.loads((tmp_path / "results" / "import_profile_without_index.json").read_text())
    assert saved["papers"] == 3_000 and saved["mode"] == "without-index"
    assert "3,000 papers (without-index)" in capsys.readouterr().out
    assert import_profile.main(["--sideways"]) == 2  # an unknown mode: usage, nothing run


async def test_the_index_beside_holds_the_postings_the_store_file_does_not(tmp_path, monkeypatch):
    monkeypatch.setattr(import_profile, "DATA", tmp_path)
    result = await import_profile.profile(6_000, mode="index-beside")
    assert result["mode"] == "index-beside" and result["papers_per_second"] > 0
    assert writer._fts_write.__module__ == "bot.store.writer"  # put back
    with sqlite3.connect(tmp_path / "import-profile.db") as db:
        assert db.execute("SELECT count(*) FROM papers").fetchone() == (6_000,)
        assert _matching(db, "model") == 0
    with sqlite3.connect(tmp_path / "import-profile-index.db") as index:
        assert _matching(index, "model") > 1_000
        # the final merge ran there: one segment
        segments = index.execute(
            "SELECT count(DISTINCT id >> 37) FROM papers_fts_data WHERE id >= 1 << 37"
        ).fetchone()[0]
        assert segments == 1

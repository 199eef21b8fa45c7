"""The import profiler (bench/import_profile.py) accounts for an import and cleans up."""

from __future__ import annotations

from bench import import_profile
from bot.store.driver import RawConnection


async def test_the_profile_breaks_a_bulk_import_down_and_unwraps_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(import_profile, "DATA", tmp_path)
    execute = RawConnection.execute
    result = await import_profile.profile(6_000)  # two transactions: a bulk import
    assert RawConnection.execute is execute  # the timers are gone
    rows = {row["what"]: row for row in result["breakdown"]}
    assert result["papers"] == 6_000 and result["papers_per_second"] > 0
    batches = rows["step: one batch's write transaction"]
    assert batches["calls"] == 2 and 0 < batches["us_per_paper"] <= result["us_per_paper"]
    assert rows["step: the final FTS5 merge"]["calls"] == 1
    assert any(what.startswith("SQL INSERT INTO papers_fts") for what in rows)

"""The ``paperboy`` command line, run as a real subprocess against a throwaway data dir."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parent / "fixtures" / "hf_daily_papers_seed.json"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-data")


def paperboy(data_dir, *args, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOY_", "HF_TOKEN"))}
    env.update(
        PAPERBOY_DATA_DIR=str(data_dir),
        PAPERBOY_HF_API_URL="http://127.0.0.1:9",  # never the internet
        PAPERBOY_LOG_LEVEL="WARNING",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def imported(data_dir):
    # Six transactions of 100: one bulk import across them (see the merged-index test).
    return paperboy(data_dir, "import", str(SEED), "--batch", "100")


def test_import_reports_counts_and_is_idempotent(data_dir, imported):
    assert "Imported: 503 new, 0 updated, 0 skipped." in imported.stderr
    again = paperboy(data_dir, "import", str(SEED))
    assert "Imported: 0 new" in again.stderr


def test_import_is_one_bulk_import_leaving_one_merged_index(data_dir, imported):
    import sqlite3

    database = next(data_dir.rglob("*.db"))
    with sqlite3.connect(database) as conn:
        merging = dict(
            conn.execute("SELECT k, v FROM papers_fts_config WHERE k = 'automerge'").fetchall()
        )
        # %_data rows of segments have ids from 1 << 37 (segment id << 37 | page).
        segments = conn.execute(
            "SELECT count(DISTINCT id >> 37) FROM papers_fts_data WHERE id >= 1 << 37"
        ).fetchone()[0]
    assert merging == {"automerge": 4} and segments == 1


def test_search_json_has_the_documented_fields(data_dir, imported):
    result = paperboy(data_dir, "search", '"video generation"', "--limit", "5", "--json")
    papers = json.loads(result.stdout)
    assert 1 <= len(papers) <= 5
    for paper in papers:
        assert {"id", "title", "url", "upvotes", "published_at", "authors"} <= paper.keys()
        assert paper["url"].endswith(paper["id"])
    top = papers[0]
    assert "video generation" in (top["title"] + " " + top["summary"]).lower()


def test_search_since_and_min_upvotes_filter(data_dir, imported):
    result = paperboy(data_dir, "search", "model", "--min-upvotes", "35", "--json")
    papers = json.loads(result.stdout)
    assert papers and all(p["upvotes"] >= 35 for p in papers)
    since = paperboy(data_dir, "search", "model", "--since", "2026-01-01", "--json")
    recent = json.loads(since.stdout)
    assert recent and all(p["submitted_at"] >= "2026-01-01" for p in recent)


def test_bad_query_is_one_clear_line_and_exit_2(data_dir, imported):
    result = paperboy(data_dir, "search", "--", "-survey", check=False)
    assert result.returncode == 2
    assert "cannot only exclude" in result.stderr
    assert "Traceback" not in result.stderr


def test_digest_preview_json_is_the_latest_day_by_upvotes(data_dir, imported):
    seed = json.loads(SEED.read_text())
    latest_day = max(item["paper"]["submittedOnDailyAt"][:10] for item in seed)
    expected = sorted(
        (i for i in seed if i["paper"]["submittedOnDailyAt"][:10] == latest_day),
        key=lambda i: -i["paper"]["upvotes"],
    )
    result = paperboy(data_dir, "digest", "--preview", "--json")
    payload = json.loads(result.stdout)
    assert payload["day"] == latest_day
    assert [p["id"] for p in payload["papers"]] == [i["paper"]["id"] for i in expected][:10]


def test_digest_preview_renders_for_people(data_dir, imported):
    result = paperboy(data_dir, "digest", "--preview")
    assert "Trending papers" in result.stdout
    assert "https://huggingface.co/papers/" in result.stdout


def test_import_of_a_broken_file_says_so(data_dir, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"paper": {"id": "2611.1"')
    result = paperboy(data_dir, "import", str(broken), check=False)
    assert result.returncode == 1
    assert "broken.json" in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_is_idempotent(data_dir):
    assert "up to date" in paperboy(data_dir, "db", "upgrade").stderr
    assert "up to date" in paperboy(data_dir, "db", "upgrade").stderr


def test_watch_test_on_an_empty_library_says_there_is_nothing_to_try(tmp_path):
    result = paperboy(tmp_path, "watch", "test", "mamba")
    assert "No papers of the last 30 days are stored yet" in result.stdout
    assert "Matched" not in result.stdout


def test_watch_test_shows_what_a_query_would_match(data_dir, imported):
    result = paperboy(data_dir, "watch", "test", '"video generation"', "--days", "5000")
    assert "Matched " in result.stdout and "papers of the last 5000 days" in result.stdout
    count = int(result.stdout.split("Matched ", 1)[1].split(" ", 1)[0])
    search = json.loads(
        paperboy(data_dir, "search", '"video generation"', "--limit", "500", "--json").stdout
    )
    assert count == len(search) > 0
    assert paperboy(data_dir, "watch", "test", "--", "-x", check=False).returncode == 2

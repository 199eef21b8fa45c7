"""The ``paperboy`` command line, run as a real subprocess against a throwaway data dir."""

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
import typer.main

from bot import cli
from bot.app import load_object
from tests.fakes.huggingface import FakeHuggingFace, make_item
from tests.fakes.scripted import ScriptedResponse

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "fixtures" / "hf_daily_papers_seed.json"
DAILY = "/api/daily_papers"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-data")


def _env(data_dir, overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBOY_", "HF_TOKEN"))}
    env.update(
        PAPERBOY_DATA_DIR=str(data_dir),
        PAPERBOY_HF_API_URL="http://127.0.0.1:9",  # never the internet
        PAPERBOY_LOG_LEVEL="WARNING",
        PAPERBOY_SEMANTIC_SEARCH="false",
    )
    env.update(overrides)
    return env


def paperboy(data_dir, *args, check=True, **env):
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=_env(data_dir, env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def paperboy_async(data_dir, *args, **env):
    """``paperboy`` while this event loop keeps serving a fake (subprocess.run would block it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=_env(data_dir, env),
        cwd=data_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return subprocess.CompletedProcess(args, process.returncode, stdout.decode(), stderr.decode())


def flat(text):
    """``text`` with the line breaks the terminal width put in it undone."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def imported(data_dir):
    return paperboy(data_dir, "import", str(SEED))


def test_import_reports_counts_and_is_idempotent(data_dir, imported):
    assert "Imported: 503 new, 0 updated, 0 unchanged, 0 skipped." in imported.stderr
    again = paperboy(data_dir, "import", str(SEED))
    assert "Imported: 0 new, 0 updated, 503 unchanged, 0 skipped." in again.stderr


def test_import_of_a_json_object_names_the_file_not_hugging_face(data_dir, tmp_path):
    saved = tmp_path / "answer.json"
    saved.write_text('{"papers": []}')
    result = paperboy(data_dir, "import", str(saved), check=False)
    assert result.returncode == 1
    assert (
        f"{saved} holds a JSON object; expected an array of papers (a saved /api/daily_papers "
        "or /api/papers/search answer)"
    ) in flat(result.stderr)
    assert "Hugging Face" not in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "(the file is empty)"),
        (b"\n  \n", "(the file is empty)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "(binary data, not text)"),
        (b"\x00\x00\x00\x00[]", "(binary data, not text)"),
        (b"<html>503</html>", "(Expecting value at line 1, column 1)"),
        (b'[{"paper": {"id": "2611.1"', "(Expecting ',' delimiter at line 1, column 27)"),
    ],
)
def test_import_of_a_file_that_is_not_json_says_so_in_one_line(data_dir, tmp_path, content, reason):
    saved = tmp_path / "saved.json"
    saved.write_bytes(content)
    result = paperboy(data_dir, "import", str(saved), check=False)
    assert result.returncode == 1
    assert f"{saved} is not JSON {reason}" in flat(result.stderr)
    assert "Traceback" not in result.stderr


def test_import_leaves_a_search_index_that_rebuild_can_build_again(data_dir, imported):
    from bot.search.state import read_state

    state = read_state(data_dir / "search" / "lexical.json")
    assert state is not None and state.revision >= 503
    status = paperboy(data_dir, "status")
    assert "Search index: 503 papers" in flat(status.stdout)
    rebuilt = paperboy(data_dir, "index", "rebuild")
    assert "Search index rebuilt: 503 papers." in flat(rebuilt.stderr)
    found = json.loads(paperboy(data_dir, "search", "--json", "transformers without").stdout)
    assert found[0]["title"] == "Transformers without Normalization"


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


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["the"], "Nothing to look for in `the`"),
        (["model", "--since", "soon"], "'soon'"),
        (["model", "--min-upvotes", "99999999999999999999"], "between 0 and 1000000"),
        (["model", "--limit", "0"], "--limit must be between 1 and 500"),
    ],
)
def test_search_errors_stay_json_with_json(data_dir, args, says):
    result = paperboy(data_dir, "search", *args, "--json", check=False)
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert list(error) == ["error"] and says in error["error"]
    plain = paperboy(data_dir, "search", *args, check=False)
    assert plain.returncode == 2 and plain.stdout == "" and says in flat(plain.stderr)


def test_query_text_that_looks_like_markup_is_printed_as_is(data_dir):
    result = paperboy(data_dir, "search", "[/] the", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Nothing to look for in `[/] the`" in flat(result.stderr)


def test_search_help_says_how_to_start_a_query_with_a_dash(data_dir):
    result = paperboy(data_dir, "search", "--help")
    assert "paperboy search -- '-survey transformer'" in flat(result.stdout)


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


def test_import_help_names_both_accepted_shapes(data_dir):
    shown = flat(paperboy(data_dir, "import", "--help").stdout)
    assert "/api/daily_papers" in shown and "/api/papers/search" in shown
    assert "again changes nothing" in shown


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


def _days_back(count):
    today = datetime.now(UTC).date()
    return [today - timedelta(days=back) for back in range(count)]


async def test_fetch_stops_at_the_first_day_hugging_face_cannot_be_reached(tmp_path):
    days = _days_back(3)
    items = [make_item(f"2611.0000{i}", f"Paper {i}", day=d) for i, d in enumerate(days)]
    async with FakeHuggingFace(items) as hf:
        hf.fail_next(DAILY, status=200, json_body={"error": "no list"})  # day 1: malformed
        hf.fail_next(DAILY, status=503, headers={"Retry-After": "0"}, times=3)
        hf.drop_next(DAILY)  # day 2: unreachable once the source's 4 attempts are used up
        result = await paperboy_async(tmp_path, "fetch", "--days", "3", PAPERBOY_HF_API_URL=hf.url)
        asked = [r.query["date"] for r in hf.requests_to(DAILY)]
    assert result.returncode == 1
    assert asked == [days[0].isoformat()] + [days[1].isoformat()] * 4  # never day 3
    shown = flat(result.stderr)
    assert f"{days[0]}: Hugging Face answered a JSON object" in shown  # skipped, went on
    assert (
        f"{days[1]}: Hugging Face is unreachable (the connection was dropped after 4 attempts); "
        "stopped after fetching 0 of 3 days."
    ) in shown
    assert str(days[2]) not in shown


async def test_fetch_says_once_that_hugging_face_fails_and_how_many_days_it_fetched(tmp_path):
    days = _days_back(7)
    async with FakeHuggingFace([make_item("2611.00001", "Today's paper", day=days[0])]) as hf:
        hf.queue(DAILY, ScriptedResponse())  # today: the normal answer
        hf.fail_next(DAILY, status=503, headers={"Retry-After": "0"}, times=99)  # then 503s
        result = await paperboy_async(tmp_path, "fetch", "--days", "7", PAPERBOY_HF_API_URL=hf.url)
        asked = [r.query["date"] for r in hf.requests_to(DAILY)]
    assert result.returncode == 1
    assert asked == [days[0].isoformat()] + [days[1].isoformat()] * 4  # not 4 for each day
    shown = flat(result.stderr)
    assert f"{days[0]}: 1 paper (1 new, 0 updated)" in shown
    assert (
        f"{days[1]}: Hugging Face answered HTTP 503 after 4 attempts (/api/daily_papers); "
        "stopped after fetching 1 of 7 days."
    ) in shown
    assert shown.count("503") == 1


async def test_fetch_refuses_a_future_date_before_asking_hugging_face(tmp_path):
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    async with FakeHuggingFace([]) as hf:
        result = await paperboy_async(
            tmp_path, "fetch", "--date", "2099-01-01", PAPERBOY_HF_API_URL=hf.url
        )
        assert result.returncode == 2 and hf.requests == []
        assert "--date 2099-01-01 is in the future" in flat(result.stderr)
        # A day ahead is still fine: it is already "today" east of UTC.
        ahead = await paperboy_async(
            tmp_path, "fetch", "--date", str(tomorrow), PAPERBOY_HF_API_URL=hf.url
        )
        assert ahead.returncode == 0, ahead.stderr
        assert [r.query["date"] for r in hf.requests_to(DAILY)] == [str(tomorrow)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--days", "800000"], "less than or equal to 3650"),  # before any date arithmetic
        (["--date", "2025-01-01", "--days", "3"], "Use --date or --days, not both."),
    ],
)
async def test_fetch_refuses_impossible_days_before_asking_hugging_face(tmp_path, args, says):
    async with FakeHuggingFace([]) as hf:
        result = await paperboy_async(tmp_path, "fetch", *args, PAPERBOY_HF_API_URL=hf.url)
    assert result.returncode == 2 and hf.requests == []
    assert says in flat(result.stderr) and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PAPERBOY_LOG_LEVEL", "LOUD", "PAPERBOY_LOG_LEVEL: unknown log level 'LOUD'"),
        (
            "PAPERBOY_DATABASE_URL",
            "mysql://paperboy:hunter2@db/papers",
            "PAPERBOY_DATABASE_URL: mysql databases are not supported; use SQLite",
        ),
        (
            "PAPERBOY_DATABASE_URL",
            "postgresql://paperboy:hunter2@db/papers",
            "PAPERBOY_DATABASE_URL: postgresql needs the async driver: postgresql+asyncpg://",
        ),
        ("PAPERBOY_DATA_DIR", "{file}/data", "PAPERBOY_DATA_DIR: the directory {file}/data cannot"),
    ],
)
def test_bad_settings_are_a_configuration_error_not_a_traceback(tmp_path, variable, value, says):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    value, says = value.format(file=a_file), says.format(file=a_file)
    result = paperboy(tmp_path, "db", "upgrade", check=False, **{variable: value})
    assert result.returncode == 2
    assert f"Configuration error: {says}" in flat(result.stderr)
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_top_level_help_lists_the_discord_commands(tmp_path):
    for args in (["--help"], []):
        shown = paperboy(tmp_path, *args, check=False).stdout
        assert re.search(r"discord\s+Discord: invite the bot", shown), shown


@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
def test_help_lists_adapter_groups_by_their_own_help_without_loading_them():
    for path, help_line in cli.ADAPTER_CLIS.values():
        assert load_object(path).info.help == help_line  # the listing cannot drift
    # `paperboy --help` in a fresh interpreter loads neither discord.py nor SQLAlchemy.
    probe = (
        "import sys; sys.argv = ['paperboy', '--help']\n"
        "from bot.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('discord', 'sqlalchemy', 'pydantic') if m in sys.modules]\n"
        "print('loaded:', heavy, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "loaded: []" in result.stderr, result.stderr


def _cli_commands():
    """``{command: [subcommands]}`` of ``paperboy``, the adapters' groups included."""
    groups = dict(typer.main.get_command(cli.app).commands)
    for name, (path, _help) in cli.ADAPTER_CLIS.items():
        groups[name] = typer.main.get_command(load_object(path))
    return {
        name: sorted(command.commands) if isinstance(command, click.Group) else []
        for name, command in groups.items()
    }


@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
def test_readme_command_line_section_lists_every_command():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("paperboy ")]
    for name, subcommands in _cli_commands().items():
        documented = [line for line in lines if line.split()[1] == name]
        assert documented, f"`paperboy {name}` is missing from the README"
        for sub in subcommands:
            assert any(re.search(rf"(^| ){sub}( |$)", line[9:]) for line in documented), (
                f"`paperboy {name} {sub}` is missing from the README"
            )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+asyncpg://paperboy:hunter2@127.0.0.1:1/papers", "Connect call failed"),
        ("sqlite+aiosqlite:///{directory}", "unable to open database file"),  # a directory
    ],
)
def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path, url, says):
    url = url.format(directory=tmp_path)
    result = paperboy(tmp_path, "search", "diffusion", check=False, PAPERBOY_DATABASE_URL=url)
    assert result.returncode == 1
    shown = flat(result.stderr)
    assert shown.startswith("Cannot connect to the database ") and says in shown
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_digest_now_posts_the_subscribed_digests_and_takes_no_commands(tmp_path):
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    items = [
        make_item(f"2611.0000{i}", f"Fresh paper {i}", day=yesterday, upvotes=9 - i)
        for i in range(3)
    ]
    saved = tmp_path / "yesterday.json"
    saved.write_text(json.dumps(items))
    digests = json.dumps([{"platform": "console", "channel": "console", "top": 2, "days": "daily"}])
    paperboy(tmp_path, "import", str(saved))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "digest", "--now"],
        env=_env(tmp_path, {"PAPERBOY_DIGESTS": digests}),
        input="/papers help\n",  # not read: the bot's adapters take commands, this posts
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    shown = flat(result.stdout)
    assert "Fresh paper 0" in shown and "Fresh paper 1" in shown and "Fresh paper 2" not in shown
    assert "Type /papers help" not in shown and "this help" not in shown
    assert "Posted 1," in result.stderr

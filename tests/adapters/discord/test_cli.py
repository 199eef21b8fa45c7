"""``paperboy discord invite-url | sync | check`` against the fake (in its own thread)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord.http
import pytest
from typer.testing import CliRunner

from adapters.discord.cli import app
from tests.fakes.discord import APPLICATION_ID, TOKEN, FakeDiscord, fake_discord_in_thread

runner = CliRunner()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeDiscord]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    with fake_discord_in_thread() as server:
        monkeypatch.setenv("PAPERBOY_DISCORD_TOKEN", TOKEN)
        monkeypatch.setenv("PAPERBOY_DISCORD_API_URL", server.api_url)
        yield server


def test_invite_url_has_exactly_the_needed_permissions_and_scopes() -> None:
    result = runner.invoke(app, ["invite-url", "--client-id", "123456789012345678"])

    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == ["123456789012345678"]
    assert query["scope"] == ["bot applications.commands"]
    permissions = discord.Permissions(int(query["permissions"][0]))
    # documented bits: VIEW_CHANNEL 10, SEND_MESSAGES 11, EMBED_LINKS 14, IN_THREADS 38
    assert permissions.value == (1 << 10) | (1 << 11) | (1 << 14) | (1 << 38)


def test_invite_url_asks_discord_for_the_application_id(fake: FakeDiscord) -> None:
    result = runner.invoke(app, ["invite-url"])

    assert result.exit_code == 0, result.output
    assert f"client_id={APPLICATION_ID}" in result.output


def test_sync_registers_then_check_is_clean(fake: FakeDiscord) -> None:
    before = runner.invoke(app, ["check"])
    assert before.exit_code == 1 and "/papers is not registered" in before.output

    synced = runner.invoke(app, ["sync"])
    assert synced.exit_code == 0, synced.output
    assert "Registered /papers globally" in synced.output
    [papers] = fake.global_commands
    subcommands = {o["name"] for o in papers["options"]}
    assert {"search", "subscribe", "unwatch"} <= subcommands
    assert all(len(o["description"]) <= 100 for o in papers["options"])

    after = runner.invoke(app, ["check"])
    assert after.exit_code == 0, after.output


def test_sync_to_one_guild(fake: FakeDiscord) -> None:
    result = runner.invoke(app, ["sync", "--guild", "4242"])

    assert result.exit_code == 0, result.output
    assert "in server 4242" in result.output
    assert [c["name"] for c in fake.guild_commands["4242"]] == ["papers"]


def test_rejected_token_is_one_clear_line(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERBOY_DISCORD_TOKEN", "wrong")
    result = runner.invoke(app, ["sync"])

    assert result.exit_code == 1
    assert "rejected PAPERBOY_DISCORD_TOKEN" in result.output
    assert "wrong" not in result.output


def test_missing_token_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAPERBOY_DISCORD_TOKEN", raising=False)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2 and "PAPERBOY_DISCORD_TOKEN" in result.output


def test_a_bad_setting_is_one_line_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", "mysql://paperboy:hunter2@db/papers")
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "Configuration error: PAPERBOY_DATABASE_URL: mysql databases are not supported" in (
        result.output
    )
    assert "hunter2" not in result.output

"""``paperboy discord ...``: the invite URL and application command registration."""

from __future__ import annotations

import asyncio
from typing import Annotated

import discord
import typer

from adapters.discord.adapter import DiscordAdapter
from bot.config import Settings, config_problems, load_settings

app = typer.Typer(
    help="Discord: invite the bot, register the /papers commands.",
    no_args_is_help=True,
    add_completion=False,
)

# Exactly what paperboy does in a channel: see it, post, post in threads, show embeds.
REQUIRED_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, send_messages_in_threads=True, embed_links=True
)
SCOPES = ("bot", "applications.commands")


def invite_url(client_id: int) -> str:
    """The OAuth2 URL that adds the bot with the permissions and scopes paperboy needs."""
    return discord.utils.oauth_url(client_id, permissions=REQUIRED_PERMISSIONS, scopes=SCOPES)


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:
        for problem in config_problems(exc):
            typer.echo(f"Configuration error: {problem}", err=True)
        raise typer.Exit(2) from None


def _adapter(settings: Settings) -> DiscordAdapter:
    if settings.discord_token is None:
        typer.echo("Set PAPERBOY_DISCORD_TOKEN (the bot token) first.", err=True)
        raise typer.Exit(2)
    return DiscordAdapter.from_settings(settings)


async def _logged_in(adapter: DiscordAdapter) -> discord.Client:
    try:
        return await adapter.login()
    except discord.LoginFailure:
        typer.echo("Discord rejected PAPERBOY_DISCORD_TOKEN (401).", err=True)
        await adapter.close()
        raise typer.Exit(1) from None
    except (discord.HTTPException, OSError) as exc:
        typer.echo(f"Cannot reach Discord: {exc}", err=True)
        await adapter.close()
        raise typer.Exit(1) from None


@app.command("invite-url")
def invite_url_command(
    client_id: Annotated[
        int | None,
        typer.Option(help="Application (client) id; default: asked from Discord with the token."),
    ] = None,
) -> None:
    """Print the URL that adds paperboy to a server (scopes bot + applications.commands)."""
    if client_id is None:
        adapter = _adapter(_settings())

        async def application_id() -> int:
            client = await _logged_in(adapter)
            try:
                return int(client.application_id or 0)
            finally:
                await adapter.close()

        client_id = asyncio.run(application_id())
    typer.echo(invite_url(client_id))


@app.command("sync")
def sync_command(
    guild: Annotated[
        int | None,
        typer.Option(
            help="Register in this server only (instant; for testing) instead of globally."
        ),
    ] = None,
) -> None:
    """Register the /papers commands with Discord (overwrites what is registered)."""
    adapter = _adapter(_settings())

    async def sync() -> list[str]:
        await _logged_in(adapter)
        tree = adapter.client.tree
        try:
            if guild is None:
                synced = await tree.sync()
            else:
                target = discord.Object(guild)
                tree.copy_global_to(guild=target)
                synced = await tree.sync(guild=target)
        except discord.HTTPException as exc:
            typer.echo(f"Discord refused the commands: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            await adapter.close()
        return [command.name for command in synced]

    names = asyncio.run(sync())
    where = f"in server {guild}" if guild is not None else "globally"
    typer.echo(f"Registered {', '.join('/' + n for n in names)} {where}.")


@app.command("check")
def check_command() -> None:
    """Compare the registered commands with this version of paperboy (exit 1 if they differ)."""
    adapter = _adapter(_settings())

    async def check() -> list[str]:
        await _logged_in(adapter)
        try:
            return await adapter.warn_if_commands_differ()
        finally:
            await adapter.close()

    problems = asyncio.run(check())
    if problems:
        for problem in problems:
            typer.echo(problem)
        typer.echo("Run `paperboy discord sync` to register the current commands.")
        raise typer.Exit(1)
    typer.echo("The registered commands match the code.")

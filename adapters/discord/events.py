"""Discord interactions -> ``CommandRequest``; rendered messages -> discord.py send arguments.

Destinations: ``workspace`` is the guild id ("" in DMs); ``channel`` is the channel (or
thread) id, except for direct messages where it is the **user id** (``is_dm=True``), so
the core can address "this user's DMs" without knowing Discord's DM channel ids. The
adapter opens the DM channel when it posts there.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from adapters.discord.buttons import CUSTOM_ID_PATTERN, DecodedButton, decode_match
from adapters.discord.render import FLAG_SUPPRESS_EMBEDS, DiscordMessage
from bot.models import CommandRequest, Destination, Platform

NO_MENTIONS = discord.AllowedMentions.none()


def destination_for(interaction: discord.Interaction[Any]) -> Destination:
    """Where the interaction happened, as a platform-neutral destination."""
    if interaction.guild_id is None:
        return Destination(Platform.DISCORD.value, "", str(interaction.user.id), is_dm=True)
    return Destination(
        Platform.DISCORD.value, str(interaction.guild_id), str(interaction.channel_id or "")
    )


def can_manage_channel(interaction: discord.Interaction[Any]) -> bool:
    """Manage Channels (or Administrator) in this channel; always true in the user's own DMs."""
    if interaction.guild_id is None:
        return True
    permissions = interaction.permissions
    return permissions.manage_channels or permissions.administrator


def request_for(
    interaction: discord.Interaction[Any], subcommand: str, args: str
) -> CommandRequest:
    """The ``CommandRequest`` for ``/papers <subcommand> <args>`` invoked by this interaction."""
    return CommandRequest(
        subcommand=subcommand.lower(),
        args=args.strip(),
        user=str(interaction.user.id),
        destination=destination_for(interaction),
        can_manage_channel=can_manage_channel(interaction),
        user_name=interaction.user.display_name,
    )


def request_from_line(interaction: discord.Interaction[Any], command: str) -> CommandRequest:
    """The ``CommandRequest`` for a command line carried by a button."""
    subcommand, _, args = command.strip().partition(" ")
    return request_for(interaction, subcommand, args)


class ButtonRouter(Protocol):
    async def on_button(
        self, interaction: discord.Interaction[Any], decoded: DecodedButton | None
    ) -> None: ...


class PaperboyButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_PATTERN):
    """A stateless button: discord.py rebuilds it from the ``custom_id`` on every press.

    The press is handed to ``interaction.client.paperboy_router`` (set by the adapter).
    """

    def __init__(self, button: discord.ui.Button[Any], decoded: DecodedButton | None = None):
        super().__init__(button)
        self.decoded = decoded

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PaperboyButton:
        button = discord.ui.Button[Any](custom_id=match.string, label="…")
        return cls(button, decode_match(match))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        router: ButtonRouter | None = getattr(interaction.client, "paperboy_router", None)
        if router is not None:
            await router.on_button(interaction, self.decoded)


def view_for(message: DiscordMessage) -> discord.ui.View | None:
    """The buttons of ``message`` as a discord.py view (``None`` when it has none)."""
    if not message.components:
        return None
    view = discord.ui.View(timeout=None)
    for row_index, row in enumerate(message.components):
        for spec in row["components"]:
            button = discord.ui.Button[Any](
                style=discord.ButtonStyle(spec["style"]),
                label=spec["label"],
                custom_id=spec["custom_id"],
                row=row_index,
            )
            view.add_item(PaperboyButton(button))
    return view


def send_kwargs(message: DiscordMessage) -> dict[str, Any]:
    """Arguments for ``InteractionResponse.send_message`` / ``Webhook.send``."""
    kwargs: dict[str, Any] = {
        "content": message.content or None,
        "embeds": [discord.Embed.from_dict(embed) for embed in message.embeds],
        "allowed_mentions": NO_MENTIONS,
        "suppress_embeds": bool(message.flags & FLAG_SUPPRESS_EMBEDS),
    }
    if (view := view_for(message)) is not None:
        kwargs["view"] = view
    return kwargs


def edit_kwargs(message: DiscordMessage) -> dict[str, Any]:
    """Arguments for editing a message in place (everything replaced)."""
    return {
        "content": message.content or None,
        "embeds": [discord.Embed.from_dict(embed) for embed in message.embeds],
        "allowed_mentions": NO_MENTIONS,
        "view": view_for(message),
    }

"""Answer interactions: run the core's handler, defer when it is slow, send the reply.

Discord wants a first response within 3 s. The handler gets ``defer_after`` seconds; if it
has not answered by then the interaction is deferred ("paperboy is thinking…") and the
reply follows as an edit of that response plus follow-ups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import discord

from adapters.discord.buttons import ButtonAction, DecodedButton
from adapters.discord.events import (
    NO_MENTIONS,
    edit_kwargs,
    request_for,
    request_from_line,
    send_kwargs,
)
from adapters.discord.render import DiscordMessage, render_reply
from bot.models import CommandRequest, Reply, ReplyKind
from bot.ports import CommandHandler

log = logging.getLogger(__name__)

DEFAULT_DEFER_AFTER = 1.5  # seconds; leaves room for the defer itself inside Discord's 3 s
FAILURE_REPLY = Reply(
    text="Sorry, something went wrong while answering. Please try again in a moment.",
    kind=ReplyKind.ERROR,
)
STALE_BUTTON_REPLY = Reply(text="This button no longer works.", kind=ReplyKind.ERROR)


class InteractionResponder:
    """Turns slash commands and button presses into core requests and answers them."""

    def __init__(self, handle: CommandHandler, *, defer_after: float = DEFAULT_DEFER_AFTER):
        self.handle = handle
        self.defer_after = defer_after

    async def run_command(
        self, interaction: discord.Interaction[Any], subcommand: str, args: str
    ) -> None:
        """Answer ``/papers <subcommand> <args>``."""
        request = request_for(interaction, subcommand, args)
        reply, deferred = await self._answer(
            request, lambda: interaction.response.defer(ephemeral=True, thinking=True)
        )
        await self._deliver(
            interaction, reply, deferred_ephemeral=True if deferred else None, edit=False
        )

    async def on_button(
        self, interaction: discord.Interaction[Any], decoded: DecodedButton | None
    ) -> None:
        """Answer a press on one of paperboy's buttons."""
        if decoded is None:
            await self._deliver(
                interaction, STALE_BUTTON_REPLY, deferred_ephemeral=None, edit=False
            )
            return
        if decoded.action is ButtonAction.COPY:
            await self._copy_to_channel(interaction)
            return
        request = request_from_line(interaction, decoded.command)
        if decoded.action is ButtonAction.SHARE:
            reply, deferred = await self._answer(
                request, lambda: interaction.response.defer(ephemeral=False, thinking=True)
            )
            if reply.kind is not ReplyKind.ERROR:
                reply = replace(reply, ephemeral=False)
            await self._deliver(
                interaction, reply, deferred_ephemeral=False if deferred else None, edit=False
            )
            return
        message = interaction.message
        in_place = message is not None and message.flags.ephemeral
        if in_place:  # paging an ephemeral answer: replace it
            reply, deferred = await self._answer(request, lambda: interaction.response.defer())
            await self._deliver(
                interaction,
                replace(reply, ephemeral=True),
                deferred_ephemeral=None,
                edit=True,
                deferred_update=deferred,
            )
        else:
            reply, deferred = await self._answer(
                request, lambda: interaction.response.defer(ephemeral=True, thinking=True)
            )
            await self._deliver(
                interaction, reply, deferred_ephemeral=True if deferred else None, edit=False
            )

    async def _answer(
        self, request: CommandRequest, defer: Callable[[], Awaitable[Any]]
    ) -> tuple[Reply, bool]:
        task = asyncio.ensure_future(self._handle_safely(request))
        done, _ = await asyncio.wait({task}, timeout=self.defer_after)
        deferred = False
        if not done:
            try:
                await defer()
                deferred = True
            except discord.HTTPException as exc:
                log.warning("could not defer a Discord interaction: %s", exc)
        return await task, deferred

    async def _handle_safely(self, request: CommandRequest) -> Reply:
        try:
            return await self.handle(request)
        except Exception:
            log.exception("command %r failed", request.subcommand)
            return FAILURE_REPLY

    async def _deliver(
        self,
        interaction: discord.Interaction[Any],
        reply: Reply,
        *,
        deferred_ephemeral: bool | None,
        edit: bool,
        deferred_update: bool = False,
    ) -> None:
        """Send ``reply``: as the first response, an edit of it, and follow-ups."""
        messages = render_reply(reply, in_channel=not reply.ephemeral)
        ephemeral = reply.ephemeral
        rest: list[DiscordMessage] = messages[1:]
        try:
            first = messages[0]
            if edit and deferred_update:
                await interaction.edit_original_response(**edit_kwargs(first))
            elif edit:
                await interaction.response.edit_message(**edit_kwargs(first))
            elif deferred_ephemeral is None:
                await interaction.response.send_message(**send_kwargs(first), ephemeral=ephemeral)
            elif deferred_ephemeral == ephemeral:
                await interaction.edit_original_response(**edit_kwargs(first))
            elif deferred_ephemeral:
                # deferred privately, but the answer is for everyone: say so, then post it
                await interaction.edit_original_response(content="Posted in the channel.")
                rest = messages
            else:
                # deferred publicly (a share), but the answer is private (an error): the
                # public "thinking" message goes away and only the presser sees the answer
                await interaction.delete_original_response()
                rest = messages
            for message in rest:
                await interaction.followup.send(**send_kwargs(message), ephemeral=ephemeral)
        except discord.HTTPException as exc:
            log.warning("could not answer a Discord interaction: %s", exc)

    async def _copy_to_channel(self, interaction: discord.Interaction[Any]) -> None:
        message = interaction.message
        if message is None:
            await self._deliver(
                interaction, STALE_BUTTON_REPLY, deferred_ephemeral=None, edit=False
            )
            return
        try:
            await interaction.response.send_message(
                content=message.content or None,
                embeds=message.embeds,
                allowed_mentions=NO_MENTIONS,
                ephemeral=False,
            )
        except discord.HTTPException as exc:
            log.warning("could not share a Discord message: %s", exc)

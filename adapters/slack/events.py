"""Thin translations of Slack payloads into platform-neutral ``CommandRequest`` s.

Pure functions over the dicts bolt hands to listeners (slash command payloads and
``block_actions`` bodies); no network, no interpretation of the command itself.

Destinations: a command typed in a direct message (``channel_name == "directmessage"``,
or a ``D…`` channel id) maps to ``Destination(is_dm=True, channel=<user id>)``: the bot
can always post to a user id (it opens the app's DM with that user), while it cannot post
into a DM between two people where the command may have been typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.slack.render import ACTION_SHARE_PREFIX
from bot.models import CommandRequest, Destination, Platform

DM_CHANNEL_NAME = "directmessage"


def is_dm(channel_id: str, channel_name: str | None) -> bool:
    return channel_name == DM_CHANNEL_NAME or channel_id.startswith("D")


def destination_for(
    team_id: str, channel_id: str, channel_name: str | None, user_id: str
) -> Destination:
    """Where replies for this conversation go (see the module docstring for DMs)."""
    if is_dm(channel_id, channel_name):
        return Destination(Platform.SLACK.value, team_id, user_id, is_dm=True)
    return Destination(Platform.SLACK.value, team_id, channel_id)


def command_to_request(command: dict[str, Any], *, can_manage_channel: bool) -> CommandRequest:
    """A ``/papers`` slash command payload -> ``CommandRequest``."""
    user_id = str(command.get("user_id", ""))
    dest = destination_for(
        str(command.get("team_id", "")),
        str(command.get("channel_id", "")),
        command.get("channel_name"),
        user_id,
    )
    return CommandRequest.from_text(
        str(command.get("text") or ""),
        user=user_id,
        destination=dest,
        can_manage_channel=can_manage_channel,
        user_name=command.get("user_name") or None,
    )


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A press on one of our buttons: the command line to run and how to show the result."""

    request: CommandRequest
    share: bool  # post the result visibly in the channel
    # The answer replaces the ephemeral message the button sat on (More, a later page);
    # a card's button (Similar) answers in a new message, leaving the list in place.
    replaces_message: bool


def action_to_press(body: dict[str, Any], *, can_manage_channel: bool) -> ButtonPress | None:
    """A ``block_actions`` body for one of our buttons -> ``ButtonPress`` (None if not ours)."""
    actions = body.get("actions") or []
    if not actions:
        return None
    action = actions[0]
    action_id = str(action.get("action_id", ""))
    command_line = str(action.get("value") or "")
    user = body.get("user") or {}
    user_id = str(user.get("id", ""))
    team_id = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    channel_id = str(channel.get("id") or container.get("channel_id") or "")
    dest = destination_for(team_id, channel_id, channel.get("name"), user_id)
    request = CommandRequest.from_text(
        command_line,
        user=user_id,
        destination=dest,
        can_manage_channel=can_manage_channel,
        user_name=user.get("username") or user.get("name") or None,
    )
    return ButtonPress(
        request=request,
        share=action_id.startswith(ACTION_SHARE_PREFIX),
        replaces_message=bool(container.get("is_ephemeral")) and "_card" not in action_id,
    )

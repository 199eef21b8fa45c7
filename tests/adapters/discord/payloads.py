"""Interaction payloads shaped like the ones Discord sends over the gateway."""

from __future__ import annotations

import itertools
from typing import Any

from adapters.discord.buttons import encode_custom_id
from bot.models import Button
from tests.fakes.discord import APPLICATION_ID

EPHEMERAL = 64
USER = {
    "id": "31337",
    "username": "ada",
    "global_name": "Ada",
    "discriminator": "0",
    "avatar": None,
}
_ids = itertools.count(5_000_000_000_000_000_000)


def _base(kind: int, *, perms: int = 0, dm: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(next(_ids)),
        "application_id": str(APPLICATION_ID),
        "type": kind,
        "token": f"tok{next(_ids)}",
        "version": 1,
        "locale": "en-US",
        "attachment_size_limit": 8 * 1024 * 1024,
        "entitlements": [],
        "app_permissions": "274877926400",
    }
    if dm:
        payload["context"] = 1
        payload["user"] = USER
        payload["channel"] = {"id": "8800", "type": 1, "recipients": [USER]}
    else:
        payload["context"] = 0
        payload["guild_id"] = "100"
        payload["guild_locale"] = "en-US"
        payload["channel"] = {
            "id": "555",
            "type": 0,
            "guild_id": "100",
            "name": "papers",
            "position": 0,
            "permission_overwrites": [],
        }
        payload["member"] = {
            "user": USER,
            "roles": [],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(perms),
        }
    return payload


def slash(sub: str, options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    payload = _base(2, **kwargs)
    types = {bool: 5, int: 4, str: 3}
    sub_options = [
        {"name": name, "type": types[type(value)], "value": value}
        for name, value in (options or {}).items()
    ]
    payload["data"] = {
        "id": "777",
        "name": "papers",
        "type": 1,
        "options": [{"name": sub, "type": 1, "options": sub_options}],
    }
    return payload


def autocomplete(sub: str, option: str, typed: str) -> dict[str, Any]:
    payload = slash(sub)
    payload["type"] = 4
    payload["data"]["options"][0]["options"] = [
        {"name": option, "type": 3, "value": typed, "focused": True}
    ]
    return payload


def press(button: Button, *, on_ephemeral: bool = True, embeds: Any = ()) -> dict[str, Any]:
    custom_id = encode_custom_id(button)
    assert custom_id is not None
    payload = _base(3)
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    payload["message"] = {
        "id": str(next(_ids)),
        "channel_id": "555",
        "type": 20,
        "content": "**Search: diffusion**",
        "author": {"id": str(APPLICATION_ID), "username": "paperboy", "discriminator": "0"},
        "attachments": [],
        "embeds": list(embeds),
        "mentions": [],
        "mention_roles": [],
        "pinned": False,
        "tts": False,
        "timestamp": "2026-11-21T09:00:00+00:00",
        "edited_timestamp": None,
        "flags": EPHEMERAL if on_ephemeral else 0,
        "components": [
            {
                "type": 1,
                "components": [{"type": 2, "style": 1, "label": "x", "custom_id": custom_id}],
            }
        ],
    }
    return payload

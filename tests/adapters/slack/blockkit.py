"""Checks shared by the Slack tests: payloads valid per slack_sdk and within the limits."""

from __future__ import annotations

import json
import re
from typing import Any

from slack_sdk.models.blocks import Block

# Slack's limits (reference: platforms.md), kept apart from the renderer's own constants
# so that loosening one of those makes these checks fail.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_IMAGE_URL = 3000
# msg_blocks_too_long has been seen at ~13k characters; the renderer promises 12k of JSON.
MAX_BLOCKS_JSON = 12_000
MAX_NOTIFICATION_TEXT = 300

_LINK = re.compile(r"<(https?://[^|<>]+)\|([^<>]*)>")
_MENTION = re.compile(r"<@[A-Z0-9]+>")
_ENTITY = re.compile(r"&(amp|lt|gt);")


def assert_valid_message(message: dict[str, Any]) -> None:
    """Every block parses and validates with slack_sdk; message-level limits hold."""
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= MAX_BLOCKS
    assert len(json.dumps(blocks, ensure_ascii=False)) <= MAX_BLOCKS_JSON
    assert 0 < len(message["text"]) <= MAX_NOTIFICATION_TEXT
    action_ids = []
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()  # raises SlackObjectFormationError past a Block Kit limit
        if raw["type"] == "section":
            assert len(raw["text"]["text"]) <= MAX_SECTION_TEXT
            assert_mrkdwn_safe(raw["text"]["text"])
            accessory = raw.get("accessory")
            if accessory:
                assert len(accessory["image_url"]) <= MAX_IMAGE_URL
        elif raw["type"] == "header":
            assert len(raw["text"]["text"]) <= MAX_HEADER_TEXT
        elif raw["type"] == "context":
            assert len(raw["elements"]) <= MAX_CONTEXT_ELEMENTS
            for element in raw["elements"]:
                assert len(element["text"]) <= MAX_CONTEXT_TEXT
                assert_mrkdwn_safe(element["text"])
        elif raw["type"] == "actions":
            assert len(raw["elements"]) <= MAX_ACTIONS_ELEMENTS
            for element in raw["elements"]:
                assert len(element["text"]["text"]) <= MAX_BUTTON_TEXT
                assert len(element["value"]) <= MAX_BUTTON_VALUE
                action_ids.append(element["action_id"])
    assert len(action_ids) == len(set(action_ids)), "action_id must be unique in a message"


def assert_mrkdwn_safe(text: str) -> None:
    """Only our own links/mentions use < >; every & starts an escape."""
    stripped = _MENTION.sub("", _LINK.sub(lambda m: m.group(2), text))
    assert "<" not in stripped and ">" not in stripped, text
    assert "&" not in _ENTITY.sub("", stripped), text


def message_text(message: dict[str, Any]) -> str:
    """All the mrkdwn/plain text of a message, concatenated."""
    parts: list[str] = []
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            if "text" in element:
                text = element["text"]
                parts.append(text if isinstance(text, str) else text["text"])
    return "\n".join(parts)


def card_links(message: dict[str, Any]) -> list[str]:
    """URLs of the full cards in a message (the linked title of each card's section)."""
    urls = []
    for block in message["blocks"]:
        if block["type"] == "section":
            first = block["text"]["text"].split("\n", 1)[0]
            match = re.fullmatch(r"\*<(https?://[^|<>]+)\|.*>\*", first)
            if match:
                urls.append(match.group(1))
    return urls


def reply_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The reply's own buttons (Share, More...), without the cards' ("Similar")."""
    return [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if "_card" not in element["action_id"]
    ]


def card_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons under the cards of a message, in order."""
    return [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if "_card" in element["action_id"]
    ]

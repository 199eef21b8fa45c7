"""Stateless buttons: the ``custom_id`` carries the ``/papers`` command line itself.

Discord allows 100 characters per ``custom_id``. A command line that does not fit is
zlib-compressed and base85-encoded; if even that is too long, a "Share in channel" button
falls back to re-posting the message it sits on (``copy``), and any other button is left
out (the reply itself is still shown in full). Nothing is kept in memory, so buttons keep
working across restarts and replicas.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from enum import StrEnum

from bot.models import Button

MAX_CUSTOM_ID_CHARS = 100
MAX_BUTTON_LABEL_CHARS = 80
CUSTOM_ID_PREFIX = "pb1:"
# A share button whose command does not fit: it re-posts the message it sits on.
COPY_CUSTOM_ID = f"{CUSTOM_ID_PREFIX}c:"

# mode letters: r = run for the presser, s = share in channel; upper case = compressed
# payload; c = copy the message the button is on into the channel.
CUSTOM_ID_PATTERN = re.compile(r"pb1:(?P<mode>[rsRSc]):(?P<data>.*)", re.DOTALL)


class ButtonAction(StrEnum):
    RUN = "run"  # run the command for the presser (ephemeral)
    SHARE = "share"  # run the command and post the result in the channel
    COPY = "copy"  # re-post the message carrying the button in the channel


@dataclass(frozen=True, slots=True)
class DecodedButton:
    """What pressing a paperboy button asks for."""

    action: ButtonAction
    command: str = ""


def encode_custom_id(button: Button) -> str | None:
    """The ``custom_id`` for ``button``, or ``None`` when it cannot be carried statelessly."""
    mode = "s" if button.share else "r"
    plain = f"{CUSTOM_ID_PREFIX}{mode}:{button.command}"
    if len(plain) <= MAX_CUSTOM_ID_CHARS:
        return plain
    packed = base64.b85encode(zlib.compress(button.command.encode(), 9)).decode("ascii")
    compressed = f"{CUSTOM_ID_PREFIX}{mode.upper()}:{packed}"
    if len(compressed) <= MAX_CUSTOM_ID_CHARS:
        return compressed
    if button.share:
        return COPY_CUSTOM_ID
    return None


def decode_custom_id(custom_id: str) -> DecodedButton | None:
    """What a ``custom_id`` from :func:`encode_custom_id` asks for (``None``: not ours)."""
    match = CUSTOM_ID_PATTERN.fullmatch(custom_id)
    if match is None:
        return None
    return decode_match(match)


def decode_match(match: re.Match[str]) -> DecodedButton | None:
    mode, data = match["mode"], match["data"]
    if mode == "c":
        return DecodedButton(ButtonAction.COPY)
    if mode in "RS":
        try:
            data = zlib.decompress(base64.b85decode(data)).decode()
        except (ValueError, zlib.error, binascii.Error, UnicodeDecodeError):
            return None
    action = ButtonAction.SHARE if mode in "sS" else ButtonAction.RUN
    return DecodedButton(action, data)

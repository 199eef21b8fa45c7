"""Saved Hugging Face answers, as ``paperboy import`` reads them from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAVED_ANSWERS = "a saved /api/daily_papers or /api/papers/search answer"


def json_kind(value: object) -> str:
    """What JSON calls the type of a parsed value: object, array, string, ..."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "null"


def read_saved_items(path: Path) -> list[Any]:
    """The items of a saved Hugging Face answer (a JSON array).

    Raises ``ValueError`` with one line naming the file when it is not JSON or not an
    array, and ``OSError`` when it cannot be read.
    """
    data = path.read_bytes()
    reason = "the file is empty" if not data.strip() else ""
    if not reason:
        try:
            raw = json.loads(data)  # UTF-8, or UTF-16/32 as some shells save
        except UnicodeDecodeError:
            reason = "binary data, not text"
        except json.JSONDecodeError as exc:
            reason = (
                "binary data, not text"
                if "\x00" in exc.doc
                else f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
            )
    if reason:
        raise ValueError(f"{path} is not JSON ({reason})")
    if not isinstance(raw, list):
        raise ValueError(
            f"{path} holds a JSON {json_kind(raw)}; expected an array of papers ({SAVED_ANSWERS})"
        )
    return raw

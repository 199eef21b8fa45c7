"""Compare the registered application commands with the code, and register them.

Registering (``CommandTree.sync``) overwrites every command and is rate limited, so it
runs from ``paperboy discord sync``, never on start. On start the adapter only fetches
what is registered and warns when it differs from the code.
"""

from __future__ import annotations

from typing import Any

# Fields that define how a command looks and behaves; everything else Discord adds
# (ids, versions, localizations we do not use) is ignored by the comparison.
_COMMAND_KEYS = ("name", "description", "type", "default_member_permissions", "nsfw")
_OPTION_KEYS = (
    "name",
    "description",
    "type",
    "required",
    "autocomplete",
    "min_value",
    "max_value",
    "min_length",
    "max_length",
)


def _normalize_option(option: dict[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {key: option.get(key) for key in _OPTION_KEYS}
    shape["required"] = bool(shape["required"])
    shape["autocomplete"] = bool(shape["autocomplete"])
    shape["choices"] = [(c["name"], c["value"]) for c in option.get("choices") or ()]
    shape["channel_types"] = sorted(option.get("channel_types") or ())
    shape["options"] = [_normalize_option(o) for o in option.get("options") or ()]
    return shape


def normalize_command(command: dict[str, Any]) -> dict[str, Any]:
    """The comparable shape of a command payload (local ``to_dict`` or fetched JSON)."""
    shape: dict[str, Any] = {key: command.get(key) for key in _COMMAND_KEYS}
    shape["type"] = shape["type"] or 1
    shape["nsfw"] = bool(shape["nsfw"])
    if shape["default_member_permissions"] is not None:
        shape["default_member_permissions"] = str(shape["default_member_permissions"])
    shape["contexts"] = sorted(command.get("contexts") or ())
    shape["integration_types"] = sorted(command.get("integration_types") or ())
    shape["options"] = [_normalize_option(o) for o in command.get("options") or ()]
    return shape


def command_differences(local: list[dict[str, Any]], registered: list[dict[str, Any]]) -> list[str]:
    """What differs between the code's commands and the registered ones (empty: in sync)."""
    mine = {c["name"]: normalize_command(c) for c in local}
    theirs = {c["name"]: normalize_command(c) for c in registered}
    problems = [f"/{name} is not registered" for name in sorted(mine.keys() - theirs.keys())]
    problems += [
        f"/{name} is registered but no longer in the code"
        for name in sorted(theirs.keys() - mine.keys())
    ]
    for name in sorted(mine.keys() & theirs.keys()):
        if mine[name] != theirs[name]:
            problems.append(f"/{name} differs: {_first_difference(mine[name], theirs[name])}")
    return problems


def _first_difference(mine: Any, theirs: Any, path: str = "") -> str:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in mine:
            if mine[key] != theirs.get(key):
                return _first_difference(mine[key], theirs.get(key), f"{path}.{key}".lstrip("."))
    if isinstance(mine, list) and isinstance(theirs, list):
        if len(mine) != len(theirs):
            return f"{path or 'options'}: {len(mine)} in code, {len(theirs)} registered"
        for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if a != b:
                label = a.get("name", index) if isinstance(a, dict) else index
                return _first_difference(a, b, f"{path}[{label}]")
    return f"{path}: {mine!r} in code, {theirs!r} registered"

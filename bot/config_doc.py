"""The settings reference, generated from :class:`bot.config.Settings` so it cannot drift.

``python -m bot.config_doc`` (``make docs``) rewrites ``.env.example`` and the README's
settings table; a test checks that the committed files match.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from pydantic.fields import FieldInfo

from bot.config import Settings, default_data_dir

SECTIONS = {
    "data_dir": "Storage",
    "hf_api_url": "Hugging Face",
    "semantic_search": "Semantic search",
    "digest_top": "Digests",
    "adapters": "Chat platforms (with no token configured, the console adapter runs)",
    "http_host": "HTTP server (health checks, Slack HTTP mode)",
    "log_level": "Logging",
}


def _default(field: FieldInfo) -> str:
    if field.default_factory is default_data_dir:
        return "(per-user data directory)"
    if field.default_factory is not None:
        return json.dumps(field.default_factory())  # type: ignore[call-arg]
    if field.default is None:
        return ""
    if isinstance(field.default, bool):
        return str(field.default).lower()
    return str(field.default)


def _is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)


def env_example() -> str:
    lines = [
        "# paperboy settings: copy to .env and uncomment what you need. All are optional.",
        "# Real environment variables take precedence over this file.",
    ]
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            lines += ["", f"# === {SECTIONS[name]} ==="]
        lines.append("")
        lines += [f"# {line}" for line in textwrap.wrap(field.description or "", 96)]
        value = (
            ""
            if _is_secret(field) or field.default_factory is default_data_dir
            else _default(field)
        )
        lines.append(f"# PAPERBOY_{name.upper()}={value}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    rows = ["| Setting | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = f"`{_default(field)}`" if _default(field) and not _is_secret(field) else "—"
        meaning = (
            f"{field.description} Secret: never logged." if _is_secret(field) else field.description
        )
        rows.append(f"| `PAPERBOY_{name.upper()}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"


def readme_with_table(readme: str) -> str:
    """``readme`` with the settings table between its markers regenerated."""
    start = readme.index(README_START) + len(README_START)
    end = readme.index(README_END)
    return readme[:start] + "\n" + markdown_table() + readme[end:]


def sync(root: Path) -> None:
    """Rewrite ``.env.example`` and the README's settings table under ``root``."""
    (root / ".env.example").write_text(env_example())
    readme = root / "README.md"
    readme.write_text(readme_with_table(readme.read_text()))


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "sync"
    if kind == "sync":
        sync(Path.cwd())
    else:
        sys.stdout.write(env_example() if kind == "env" else markdown_table())

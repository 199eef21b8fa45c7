"""Settings: environment variables prefixed ``PAPERBOY_``, or a ``.env`` file.

Every field here is documented in ``.env.example``; secrets are ``SecretStr`` so they
never show up in logs or reprs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.models import MAX_DIGEST_TOP


def default_data_dir() -> Path:
    return Path(user_data_dir("paperboy", appauthor=False))


# The databases paperboy runs on, with the async driver each needs.
DATABASE_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
LOG_LEVELS = "DEBUG, INFO, WARNING or ERROR"


class StaticDigest(BaseModel):
    """A digest set up in configuration instead of with /papers subscribe."""

    platform: Literal["slack", "discord", "console"]
    channel: str
    workspace: str = ""
    at: str = "09:00"
    timezone: str = "UTC"
    days: Literal["weekdays", "daily"] = "weekdays"
    top: int | None = Field(default=None, ge=1, le=MAX_DIGEST_TOP)  # None: PAPERBOY_DIGEST_TOP
    min_upvotes: int = Field(default=0, ge=0)
    topic: str | None = None
    format: Literal["compact", "full"] = "full"
    post_empty: bool = False
    include_arxiv: bool = False

    @field_validator("at")
    @classmethod
    def _time(cls, value: str) -> str:
        from bot.options import parse_time

        return parse_time(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from bot.options import parse_zone

        return parse_zone(value)


class Settings(BaseSettings):
    """paperboy's configuration. Field descriptions feed the configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix="PAPERBOY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- storage ---
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite database and other state live.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in the data directory. "
        "For PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )

    # --- Hugging Face ---
    hf_api_url: str = Field(
        default="https://huggingface.co", description="Base URL of the Hugging Face API."
    )
    hf_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PAPERBOY_HF_TOKEN", "HF_TOKEN"),
        description="Optional Hugging Face token (higher rate limits). HF_TOKEN works too.",
    )
    http_timeout: float = Field(default=10.0, gt=0, description="Seconds per HTTP request.")
    poll_interval_minutes: int = Field(
        default=15, ge=1, description="How often to poll Hugging Face for new papers."
    )
    arxiv_categories: str | None = Field(
        default=None,
        description="arXiv categories to follow for watches, comma-separated (cs.CL,cs.LG). "
        "Unset: Hugging Face only.",
    )
    arxiv_feed_url: str = Field(
        default="https://rss.arxiv.org", description="Base URL of arXiv's RSS feeds."
    )
    remote_search: bool = Field(
        default=True,
        description="Also ask Hugging Face's search when the local store has too few results.",
    )
    remote_search_budget: float = Field(
        default=2.0, gt=0, description="Seconds a search may wait for the remote fallback."
    )

    # --- semantic search ---
    semantic_search: bool = Field(
        default=True,
        description="Embed papers and rank searches by meaning too (hybrid with the words), "
        "and answer /papers similar. Off: search by words alone.",
    )
    embedding_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        description="fastembed model that embeds papers and queries; downloaded once into "
        "the data directory's models/ folder.",
    )
    embedding_model_path: Path | None = Field(
        default=None,
        description="A folder holding the model's files (model.onnx, tokenizer.json, ...), "
        "for installs without network access; the model name then says which model it is.",
    )

    # --- digest defaults ---
    digest_top: int = Field(
        default=10,
        ge=1,
        le=MAX_DIGEST_TOP,
        description=f"Papers in a digest (1-{MAX_DIGEST_TOP}) when its subscription does "
        "not say (/papers subscribe ... top N, or top in PAPERBOY_DIGESTS).",
    )
    timezone: str = Field(default="UTC", description="Zone for 'today' and default digests.")
    digests: list[StaticDigest] = Field(
        default_factory=list,
        description='Digests from configuration, as JSON: [{"platform": "slack", "channel": '
        '"C0123", "at": "09:00", "timezone": "Europe/Berlin", "top": 10}] (fields as in '
        "/papers subscribe; workspace optional).",
    )
    digest_catch_up_hours: float = Field(
        default=6.0,
        ge=0,
        description="A digest missed while the bot was down still runs on start this late.",
    )

    # --- chat platforms ---
    adapters: str | None = Field(
        default=None,
        description="Comma-separated adapters to run (console, slack, discord); "
        "default: those with a token configured, else console.",
    )
    slack_bot_token: SecretStr | None = Field(default=None, description="Slack bot token xoxb-…")
    slack_app_token: SecretStr | None = Field(
        default=None, description="Slack app-level token xapp-… (Socket Mode)."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Slack signing secret (HTTP mode)."
    )
    slack_mode: Literal["socket", "http"] = Field(
        default="socket", description="socket (no public URL) or http (/slack/events)."
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL."
    )
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Slack incoming webhook for a posting-only digest."
    )
    discord_token: SecretStr | None = Field(default=None, description="Discord bot token.")
    discord_api_url: str = Field(
        default="https://discord.com/api/v10", description="Discord REST API base URL."
    )
    discord_webhook_url: SecretStr | None = Field(
        default=None, description="Discord webhook for a posting-only digest."
    )

    # --- HTTP server (health, Slack HTTP mode) ---
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the HTTP server.")

    # --- logging ---
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["text", "json"] = Field(default="text", description="text or json.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr | None) -> SecretStr | None:
        if not value or not value.get_secret_value():
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        supported = "use SQLite (sqlite+aiosqlite:///…) or PostgreSQL (postgresql+asyncpg://…)"
        try:
            backend, _, driver = make_url(value.get_secret_value()).drivername.partition("+")
        except ArgumentError:
            raise ValueError(f"not a database URL; {supported}") from None
        if backend not in DATABASE_DRIVERS:
            raise ValueError(f"{backend} databases are not supported; {supported}")
        if driver != DATABASE_DRIVERS[backend]:
            raise ValueError(
                f"{backend} needs the async driver: {backend}+{DATABASE_DRIVERS[backend]}://…"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}; use {LOG_LEVELS}")
        return level

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'paperboy.db'}"

    def create_database_dir(self) -> None:
        """Create the directory of the SQLite database file (the data directory by default).

        Raises ``ValueError`` naming the setting and the reason when it cannot be created.
        Nothing to do for PostgreSQL or an in-memory database.
        """
        directory = sqlite_directory(self.effective_database_url)
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            setting = "PAPERBOY_DATABASE_URL" if self.database_url else "PAPERBOY_DATA_DIR"
            if directory.is_file():
                raise ValueError(f"{setting}: {directory} is a file, not a directory.") from None
            reason = exc.strerror or str(exc)
            raise ValueError(
                f"{setting}: the directory {directory} cannot be created ({reason})."
            ) from None


def sqlite_directory(url: str) -> Path | None:
    """The directory of an SQLite database URL's file (None: PostgreSQL, in memory, or a
    ``file:`` URI, which SQLite resolves itself)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database).expanduser().parent


def config_problems(exc: Exception) -> list[str]:
    """A settings error as one line per problem, naming the variable. Never the value
    given: it may hold a password (PAPERBOY_DATABASE_URL) or a token."""
    if not isinstance(exc, ValidationError):
        return [str(exc)]
    problems = []
    for error in exc.errors():
        first, *rest = error["loc"] or ("",)
        name = str(first) if str(first).isupper() else f"PAPERBOY_{str(first).upper()}"
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest)
        problems.append(f"{name}{where}: {error['msg'].removeprefix('Value error, ')}")
    return problems


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``.env``, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]

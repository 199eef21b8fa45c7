"""Logging setup: readable lines by default, one JSON object per line when asked."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once; noisy libraries are kept at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    noisy_loggers = (
        "httpx",
        "httpcore",
        "aiosqlite",
        "asyncio",
        "slack_bolt",
        # At DEBUG, slack_sdk logs every request's URL: an incoming webhook's or a
        # response_url, both secrets.
        "slack_sdk",
        "discord",
        "alembic",
    )
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

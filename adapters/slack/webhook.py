"""Posting through an incoming webhook: a single channel, no app, no commands.

Incoming webhooks have no threads, no message ts and no metadata, so a digest is posted
as consecutive messages and a post's outcome cannot be reconciled later. Errors come
back as HTTP status + a plain-text code (``no_service``, ``channel_is_archived``, ...).
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.client import RateLimitRetryHandler, Sleep
from adapters.slack.errors import result_for_exception, result_for_http
from adapters.slack.render import Message
from bot.models import PostResult, PostStatus

WEBHOOK_CHANNEL = "webhook"  # the pacing key: a webhook posts to one fixed channel


class WebhookSender:
    """Sends rendered messages to an incoming webhook URL (rate limits waited out)."""

    supports_threads = False

    def __init__(self, url: str, *, timeout: float = 10.0, sleep: Sleep = asyncio.sleep):
        self.client = AsyncWebhookClient(
            url=url,
            timeout=max(1, round(timeout)),
            retry_handlers=[RateLimitRetryHandler(sleep=sleep)],
        )

    async def send(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None,
        metadata: dict[str, Any],
    ) -> tuple[PostResult, str | None]:
        try:
            response = await self.client.send(
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:  # transport failures: classified, never raised
            return result_for_exception(exc), None
        if response.status_code == 200:
            return PostResult(PostStatus.SENT), None
        retry_after = None
        for name, value in (response.headers or {}).items():
            if name.lower() == "retry-after":
                retry_after = value[0] if isinstance(value, list) else value
        error = (response.body or "").strip() or None
        return result_for_http(response.status_code, error, retry_after), None

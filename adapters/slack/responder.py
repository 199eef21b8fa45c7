"""Answers to slash commands and button presses, sent to their ``response_url``.

One shared aiohttp session (bolt's ``respond()`` opens a new one, and a new connection,
for every message). A ``response_url`` accepts up to 5 messages within 30 minutes.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.client import RateLimitRetryHandler, Sleep
from adapters.slack.render import Message

log = logging.getLogger(__name__)


class ResponseUrlResponder:
    """Posts rendered messages to response URLs; never raises for HTTP failures."""

    def __init__(self, *, timeout: float = 10.0, sleep: Sleep = asyncio.sleep) -> None:
        self.timeout = timeout
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    def _client(self, url: str) -> AsyncWebhookClient:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return AsyncWebhookClient(
            url=url,
            session=self._session,
            timeout=max(1, round(self.timeout)),
            retry_handlers=[RateLimitRetryHandler(sleep=self._sleep)],
        )

    async def send(
        self,
        response_url: str,
        messages: list[Message],
        *,
        ephemeral: bool,
        replace_first: bool = False,
    ) -> bool:
        """Send every message in order; True when Slack accepted them all."""
        client = self._client(response_url)
        for index, message in enumerate(messages):
            payload = {
                "text": message["text"],
                "blocks": message["blocks"],
                "response_type": "ephemeral" if ephemeral else "in_channel",
                "replace_original": replace_first and index == 0,
                "unfurl_links": False,
                "unfurl_media": False,
            }
            try:
                response = await client.send_dict(payload)
            except Exception as exc:  # network trouble: log, the user can ask again
                log.warning("slack response_url part %d failed: %s", index + 1, exc)
                return False
            if response.status_code != 200:
                log.warning(
                    "slack response_url part %d answered %s %s",
                    index + 1,
                    response.status_code,
                    (response.body or "")[:100],
                )
                return False
        return True

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

"""Posting through a Discord webhook URL: digests without a bot.

Webhooks have no nonce, so a post whose outcome is unknown (timeout) cannot be checked
and is reported as ``UNKNOWN``; webhooks not created by an application cannot carry
buttons, so buttons are left out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from adapters.discord.errors import status_for_http
from adapters.discord.progress import PartialPosts
from adapters.discord.render import render_reply
from bot.models import PostResult, PostStatus, Reply

log = logging.getLogger(__name__)

MAX_RATE_LIMIT_WAIT = 30.0  # longer waits go back to the delivery layer as RETRY
MAX_ATTEMPTS = 3


class WebhookPoster:
    """Executes a webhook (``POST {url}?wait=true``) for each message of a reply."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        sleep: Any = asyncio.sleep,
        max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_rate_limit_wait = max_rate_limit_wait
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._partial = PartialPosts()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "paperboy-bot/0.1"},
            )
        return self._session

    async def post(self, reply: Reply, *, key: str | None = None) -> PostResult:
        """Send every message of ``reply``; stop at the first failure.

        Posting ``key`` again after a failure that may be retried sends only the messages
        not sent yet, as they were rendered the first time.
        """
        sent, planned = self._partial.resume(key, render_reply(reply, in_channel=True))
        for message in planned[len(sent) :]:
            body = message.to_json()
            body["components"] = []
            result = await self._execute(body)
            if not result.ok:
                if result.status in (PostStatus.RETRY, PostStatus.UNKNOWN):
                    self._partial.keep(key, sent, planned)
                return PostResult(result.status, tuple(sent), result.error, result.retry_after)
            sent.extend(result.message_ids)
        return PostResult(PostStatus.SENT, tuple(sent))

    async def _execute(self, body: dict[str, Any]) -> PostResult:
        session = self._ensure_session()
        for _ in range(MAX_ATTEMPTS):
            try:
                async with session.post(self.url, params={"wait": "true"}, json=body) as response:
                    data = await _json_or_none(response)
                    if 200 <= response.status < 300:
                        return PostResult(PostStatus.SENT, (str((data or {}).get("id", "")),))
                    code = int((data or {}).get("code", 0) or 0)
                    error = f"{response.status} {(data or {}).get('message', response.reason)}"
                    if response.status != 429:
                        return PostResult(status_for_http(response.status, code), error=error)
                    retry_after = _retry_after(response, data)
                    if retry_after > self.max_rate_limit_wait:
                        return PostResult(PostStatus.RETRY, error=error, retry_after=retry_after)
                    log.info("Discord webhook rate limited; waiting %.2fs", retry_after)
                    await self._sleep(retry_after)
            except TimeoutError:
                return PostResult(PostStatus.UNKNOWN, error="timed out waiting for Discord")
            except aiohttp.ClientConnectorError as exc:
                return PostResult(PostStatus.RETRY, error=f"cannot reach Discord: {exc.os_error}")
            except aiohttp.ClientError as exc:
                return PostResult(
                    PostStatus.UNKNOWN, error=f"connection lost: {type(exc).__name__}"
                )
        return PostResult(PostStatus.RETRY, error="still rate limited")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _json_or_none(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    if response.content_type != "application/json":
        return None
    try:
        data = await response.json()
    except (aiohttp.ContentTypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _retry_after(response: aiohttp.ClientResponse, data: dict[str, Any] | None) -> float:
    value = (data or {}).get("retry_after") or response.headers.get("Retry-After") or 1.0
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0

"""``chat.postMessage`` over a pool of kept-alive connections (``http1.KeepAlivePool``).

The digest fan-out posts thousands of messages; slack_sdk spends about a millisecond of
Python on each (request building, stdlib JSON, retry bookkeeping, response objects) and
aiohttp's client alone about 0.3 ms. This sender does only what a post needs, on the same
wire format slack_sdk uses for a message with blocks: ``POST {api_url}chat.postMessage``
with a JSON body, ``Authorization: Bearer`` and ``Content-Type: application/json;
charset=utf-8``. Everything else (commands, history lookups, permissions, bolt) stays on
slack_sdk.

Semantics are those of ``client.build_web_client`` + ``posting.classify_api_error``:

- ``ok: false`` answers and HTTP error statuses are classified by ``errors.result_for_http``;
- HTTP 429 is waited out (``Retry-After`` seconds, 1 s when absent, through the injected
  ``sleep``) at most ``max_retries`` times and only when the wait is at most ``max_wait``;
  otherwise RETRY with ``retry_after``;
- nothing else is ever re-sent: a timeout or a dropped connection is UNKNOWN (the relay
  reconciles before posting again), a refused connection RETRY (``result_for_exception``);
- a 200 whose body is not a JSON object is UNKNOWN: the message may have been stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from slack_sdk.web.internal_utils import get_user_agent

from adapters.slack.client import Sleep
from adapters.slack.errors import parse_retry_after, result_for_exception, result_for_http
from adapters.slack.http1 import KeepAlivePool
from adapters.slack.render import Message
from bot.models import PostResult, PostStatus

MAX_CONNECTIONS = 250  # a fan-out's posts in flight at once (more only queue in the kernel)


class ChatPostSender:
    """Sends one rendered message with ``chat.postMessage``. Implements
    ``posting.MessageSender``. Owns its connection pool: ``close()`` it. ``proxy``: an
    ``http://`` proxy URL (the adapter passes slack_sdk's, read from ``HTTPS_PROXY`` & co.)."""

    supports_threads = True

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        timeout: float = 10.0,
        max_connections: int = MAX_CONNECTIONS,
        proxy: str | None = None,
        sleep: Sleep = asyncio.sleep,
        max_retries: int = 2,
        max_wait: float = 30.0,
    ) -> None:
        if not api_url.endswith("/"):
            api_url += "/"
        self.pool = KeepAlivePool(
            api_url, max_connections=max_connections, timeout=timeout, proxy=proxy
        )
        self._sleep = sleep
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": get_user_agent(),
        }

    async def send(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None,
        metadata: dict[str, Any],
    ) -> tuple[PostResult, str | None]:
        payload: dict[str, Any] = {
            "channel": channel,
            "text": message["text"],
            "blocks": message["blocks"],
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": metadata,
        }
        if thread_ts is not None:
            payload["thread_ts"] = thread_ts
        try:
            body = orjson.dumps(payload)
        except TypeError as exc:  # a rendering bug; nothing was sent
            return PostResult(PostStatus.FAILED, error=f"unserialisable: {exc}"), None
        return await self._post(body)

    async def _post(self, body: bytes) -> tuple[PostResult, str | None]:
        retries = 0
        while True:
            try:
                response = await self.pool.request(
                    "POST", "chat.postMessage", headers=self._headers, body=body
                )
            except Exception as exc:  # transport failures: classified, never re-sent
                return result_for_exception(exc), None
            status, raw = response.status, response.body
            retry_after = response.headers.get("retry-after")
            if status == 429 and retries < self.max_retries:
                wait = parse_retry_after(retry_after)
                wait = 1.0 if wait is None else wait
                if wait <= self.max_wait:
                    retries += 1
                    await self._sleep(wait)
                    continue
            return _result(status, raw, retry_after)

    async def close(self) -> None:
        await self.pool.close()


def _result(status: int, raw: bytes, retry_after: str | None) -> tuple[PostResult, str | None]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        if status == 200:
            return PostResult(PostStatus.UNKNOWN, error="malformed_response"), None
        return result_for_http(status, None, retry_after), None
    if status == 200 and data.get("ok"):
        ts = str(data.get("ts") or "")
        return PostResult(PostStatus.SENT, message_ids=(ts,)), ts
    error = data.get("error")
    return result_for_http(status, error if isinstance(error, str) else None, retry_after), None

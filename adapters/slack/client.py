"""The Slack Web API client paperboy uses: 429s waited out, nothing else retried.

slack_sdk's default retry handler re-sends on connection errors, which can post a message
twice (``chat.postMessage`` has no idempotency key). We replace it with a rate-limit-only
handler that honours ``Retry-After`` through an injectable ``sleep`` and gives up (letting
the caller report RETRY with the wait) when Slack asks for longer than ``max_wait``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import parse_retry_after

Sleep = Callable[[float], Awaitable[None]]


def retry_after_seconds(response: HttpResponse | None) -> float | None:
    """The ``Retry-After`` of a response in seconds, if it has a usable one."""
    if response is None:
        return None
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            return parse_retry_after(values[0])
    return None


class RateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retries HTTP 429 after ``Retry-After`` seconds (1 s when absent), at most
    ``max_retry_count`` times and only when the wait is at most ``max_wait`` seconds."""

    def __init__(self, *, max_retry_count: int = 2, max_wait: float = 30.0, sleep: Sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self._sleep = sleep

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response)
        return (wait if wait is not None else 1.0) <= self.max_wait

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = retry_after_seconds(response)
        state.next_attempt_requested = True
        await self._sleep(wait if wait is not None else 1.0)
        state.increment_current_attempt()


def build_web_client(
    *,
    token: str | None,
    base_url: str,
    timeout: float = 10.0,
    sleep: Sleep = asyncio.sleep,
    max_rate_limit_wait: float = 30.0,
) -> AsyncWebClient:
    """An ``AsyncWebClient`` with only the rate-limit retry handler installed."""
    if not base_url.endswith("/"):
        base_url += "/"
    handlers: list[AsyncRetryHandler] = [
        RateLimitRetryHandler(max_wait=max_rate_limit_wait, sleep=sleep)
    ]
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=max(1, round(timeout)),
        retry_handlers=handlers,
    )

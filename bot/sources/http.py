"""A small retrying JSON-over-HTTP client shared by the paper sources.

Retries transient failures (timeouts, connection errors, 5xx, 429) with exponential
backoff and full jitter, honours the server's ``Retry-After`` and ``RateLimit`` headers,
and turns every failure into one readable ``SourceError`` line. The ``sleep`` callable,
the random generator and the clock are injected so tests never really wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson

from bot import __version__
from bot.models import Paper
from bot.ports import SourceError

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/paperboy-bot/paperboy"
DEFAULT_USER_AGENT = f"paperboy/{__version__} (+{PROJECT_URL})"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


class RateLimited(SourceError):
    """The server asked us to wait longer than we are willing to wait inside one call."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(SourceError):
    """The service could not be reached, or kept failing (timeouts, 408, 5xx), through
    every retry: asking again right away would fail the same way."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before giving up.

    ``max_attempts`` counts every request, the first included. Backoff waits are drawn
    uniformly from ``[0, min(max_delay, base_delay * 2**retry)]`` (full jitter). A wait the
    server asks for (``Retry-After``/``RateLimit``) is honoured up to ``max_server_wait``
    seconds; a longer one ends the call at once with ``RateLimited``.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_server_wait: float = 120.0
    garbage_retries: int = 1  # a 200 with an HTML page or cut-off JSON is retried this often

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before retry number ``retry`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(retry, 62)))
        return rng.uniform(0.0, ceiling)


_RATELIMIT_T = re.compile(r"(?:^|;)\s*t\s*=\s*(\d+(?:\.\d+)?)")


def server_requested_wait(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` and ``RateLimit``.

    ``Retry-After`` is either seconds or an HTTP date. Hugging Face sends
    ``RateLimit: "api";r=0;t=55`` where ``t`` is the seconds until the window resets.
    When both are present the longer wait wins. ``None`` when neither is usable.
    ``headers`` is case-insensitive (``httpx.Headers``) or has lower-case keys.
    """
    waits: list[float] = []
    retry_after = headers.get("retry-after")
    if retry_after:
        value = retry_after.strip()
        try:
            waits.append(max(0.0, float(value)))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                waits.append(max(0.0, (when - now).total_seconds()))
    rate_limit = headers.get("ratelimit")
    if rate_limit:
        match = _RATELIMIT_T.search(rate_limit)
        if match:
            waits.append(float(match.group(1)))
    finite = [w for w in waits if w == w and w != float("inf")]
    return max(finite) if finite else None


def _error_detail(response: httpx.Response) -> str:
    """The server's own short explanation of an error, when it gave one in JSON."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
    return ""


def _describe_body(response: httpx.Response) -> str:
    content_type = response.headers.get("content-type", "")
    head = response.content[:200].lstrip().lower()
    if "html" in content_type or head.startswith((b"<!doctype", b"<html")):
        return "an HTML page instead of JSON"
    if not response.content.strip():
        return "an empty body instead of JSON"
    return "truncated or malformed JSON"


def describe_transport_error(exc: httpx.TransportError) -> str:
    """A transport failure in a few words, for one-line log and status messages."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was dropped"
    return "network error"


def dedupe(papers: Iterable[Paper], seen: set[str] | None = None) -> list[Paper]:
    """``papers`` without repeated ids, in order; ``seen`` carries ids across calls."""
    seen = set() if seen is None else seen
    unique: list[Paper] = []
    for paper in papers:
        if paper.id not in seen:
            seen.add(paper.id)
            unique.append(paper)
    return unique


@dataclass(frozen=True, slots=True)
class _Body:
    value: object


@dataclass(frozen=True, slots=True)
class _Transient:
    failure: str  # completes "Hugging Face ...": "timed out", "answered HTTP 503"
    server_wait: float | None = None
    status: int | None = None
    garbage: bool = False


class JsonHttpClient:
    """GETs JSON from one service, retrying what is worth retrying.

    ``service`` names the remote in error lines ("Hugging Face"). ``headers`` are sent
    with every request; pass secrets here, they are never logged. When ``client`` is given
    the caller owns it and ``close`` leaves it open.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._headers = dict(headers or {})
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"JsonHttpClient(service={self.service!r}, base_url={self.base_url!r})"

    async def get_json(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        none_on_404: bool = False,
    ) -> object | None:
        """The decoded JSON body of ``GET base_url + path``.

        Returns ``None`` for a 404 when ``none_on_404``. Raises ``SourceError`` (or its
        subclass ``RateLimited``) with one clear line when the service cannot be reached,
        rejects the request, or keeps answering garbage.
        """
        policy = self.policy
        garbage_left = policy.garbage_retries
        outcome = _Transient("was not asked")
        for attempt in range(1, policy.max_attempts + 1):
            result = await self._try_once(path, params, none_on_404, garbage_left > 0)
            if isinstance(result, _Body):
                return result.value
            outcome = result
            if outcome.garbage:
                garbage_left -= 1
            if attempt == policy.max_attempts:
                break
            if outcome.server_wait is not None:
                wait = min(outcome.server_wait, policy.max_server_wait)
            else:
                wait = policy.backoff(attempt - 1, self._rng)
            # Per-attempt detail stays at debug: the caller reports the final outcome in
            # one line, so an unreachable source does not flood the console.
            log.debug(
                "%s %s %s (attempt %d of %d); retrying in %.1f s",
                self.service,
                path,
                outcome.failure,
                attempt,
                policy.max_attempts,
                wait,
            )
            await self._sleep(wait)
        raise self._give_up(outcome, path)

    async def _try_once(
        self,
        path: str,
        params: Mapping[str, str | int] | None,
        none_on_404: bool,
        garbage_retry_left: bool,
    ) -> _Body | _Transient:
        """One request: a body, a transient failure worth retrying, or a raised SourceError."""
        try:
            response = await self._client.get(
                self.base_url + path, params=params, headers=self._headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            return _Transient(describe_transport_error(exc))
        status = response.status_code
        if 200 <= status < 300:
            try:
                return _Body(orjson.loads(response.content))
            except orjson.JSONDecodeError:
                what = _describe_body(response)
                if not garbage_retry_left:
                    raise SourceError(
                        f"{self.service} answered {what} (HTTP {status}, {path})"
                    ) from None
                return _Transient(f"answered {what} (HTTP {status})", garbage=True)
        if status == 404 and none_on_404:
            return _Body(None)
        if status == 429 or status == 408 or status >= 500:
            server_wait = server_requested_wait(response.headers, self._clock())
            if (
                status == 429
                and server_wait is not None
                and server_wait > self.policy.max_server_wait
            ):
                raise RateLimited(
                    f"{self.service} is rate limiting us (HTTP 429); "
                    f"it asks to wait {server_wait:.0f} s",
                    retry_after=server_wait,
                )
            return _Transient(f"answered HTTP {status}", server_wait=server_wait, status=status)
        detail = _error_detail(response)
        suffix = f": {detail}" if detail else ""
        raise SourceError(f"{self.service} rejected the request (HTTP {status}, {path}){suffix}")

    def _give_up(self, last: _Transient, path: str) -> SourceError:
        attempts = f"{self.policy.max_attempts} attempt" + (
            "s" if self.policy.max_attempts != 1 else ""
        )
        if last.status == 429:
            return RateLimited(
                f"{self.service} is rate limiting us (HTTP 429 after {attempts})",
                retry_after=last.server_wait
                if last.server_wait is not None
                else self.policy.max_delay,
            )
        if last.garbage:
            return SourceError(f"{self.service} {last.failure} after {attempts} ({path})")
        if last.status is not None:
            return SourceUnavailable(f"{self.service} {last.failure} after {attempts} ({path})")
        return SourceUnavailable(f"{self.service} is unreachable ({last.failure} after {attempts})")

    async def close(self) -> None:
        """Close the underlying HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

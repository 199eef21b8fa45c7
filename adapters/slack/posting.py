"""Posting replies to Slack channels, with idempotency keys in message metadata.

A reply becomes one or more messages (a digest: a parent plus thread replies). Each
message carries ``metadata = {"event_type": "paperboy_post", "event_payload": {"key",
"part", "parts"}}`` so a post whose outcome is unknown can be found again with
``conversations.history(include_all_metadata=True)`` (``find_posted``).

Partial progress (parts already posted under a key) is remembered, so posting the same
key again after a failure resumes with the missing parts instead of repeating the others,
as they were rendered the first time: a retried digest is rebuilt from the papers as they
are by then, and a changed summary can move the split points between messages.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import result_for_exception, result_for_http
from adapters.slack.pacing import ChannelPacer
from adapters.slack.render import Message, without_images
from bot.models import Destination, PostResult, PostStatus

log = logging.getLogger(__name__)

METADATA_EVENT_TYPE = "paperboy_post"
MAX_REMEMBERED_KEYS = 1000


class LookupFailed(Exception):
    """Searching the history failed transiently; ``result`` says how (RETRY/UNKNOWN)."""

    def __init__(self, result: PostResult) -> None:
        super().__init__(f"slack history lookup failed: {result.error}")
        self.result = result


class MessageSender(Protocol):
    """Sends one rendered message; answers the result and the message ts (if any)."""

    supports_threads: bool

    async def send(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None,
        metadata: dict[str, Any],
    ) -> tuple[PostResult, str | None]: ...


def metadata_for(key: str, part: int, parts: int) -> dict[str, Any]:
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"key": key, "part": part, "parts": parts},
    }


def classify_api_error(exc: SlackApiError) -> PostResult:
    """A ``SlackApiError`` (``ok: false`` or HTTP error) as a typed result."""
    response = exc.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 200
    error = _error_code(exc)
    headers = getattr(response, "headers", None) or {}
    retry_after = None
    for name, value in dict(headers).items():
        if name.lower() == "retry-after":
            retry_after = value[0] if isinstance(value, list) else value
    return result_for_http(int(status), error, retry_after)


class ReplyPoster:
    """Posts rendered message plans part by part, paced per channel, resumable by key."""

    def __init__(self, sender: MessageSender, pacer: ChannelPacer) -> None:
        self.sender = sender
        self.pacer = pacer
        self._progress: OrderedDict[str, dict[int, str]] = OrderedDict()
        self._plans: dict[str, tuple[Message, ...]] = {}  # the messages of those posts

    def remember(
        self, key: str, parts: dict[int, str], plan: tuple[Message, ...] | None = None
    ) -> None:
        """Record parts known to be posted under ``key`` (e.g. found by reconciliation),
        and the messages of the whole post when known (a plan already kept stays)."""
        self._progress[key] = dict(parts)
        self._progress.move_to_end(key)
        if plan is not None:
            self._plans[key] = plan
        while len(self._progress) > MAX_REMEMBERED_KEYS:
            self._forget(next(iter(self._progress)))

    def progress(self, key: str) -> dict[int, str]:
        return dict(self._progress.get(key, {}))

    def _forget(self, key: str) -> None:
        self._progress.pop(key, None)
        self._plans.pop(key, None)

    async def post(
        self, channel: str, messages: tuple[Message, ...], *, key: str, threaded: bool
    ) -> PostResult:
        """Post ``messages`` (the first is the parent when ``threaded``) under ``key``."""
        done = self.progress(key)
        if done:
            messages = self._plans.get(key, messages)
        total = len(messages)
        threaded = threaded and self.sender.supports_threads
        for index, message in enumerate(messages):
            if index in done:
                continue
            thread_ts = done.get(0) if threaded and index > 0 else None
            metadata = metadata_for(key, index, total)
            async with self.pacer.slot(channel):
                result, ts = await self.sender.send(
                    channel, message, thread_ts=thread_ts, metadata=metadata
                )
            plain = without_images(message) if result.error == "invalid_blocks" else None
            if plain is not None:
                # Most likely "downloading image failed": Slack fetches each thumbnail
                # itself and refuses the message when one is unreachable. Cards without
                # thumbnails beat no digest.
                log.warning("slack refused %s part %d with images; posting it without", key, index)
                async with self.pacer.slot(channel):
                    result, ts = await self.sender.send(
                        channel, plain, thread_ts=thread_ts, metadata=metadata
                    )
            if not result.ok:
                log.warning("slack post %s part %d/%d: %s", key, index + 1, total, result.error)
                if result.status in (PostStatus.RETRY, PostStatus.UNKNOWN) and done:
                    self.remember(key, done, messages)
                else:
                    self._forget(key)
                ids = tuple(done[i] for i in sorted(done))
                return PostResult(result.status, ids, result.error, result.retry_after)
            done[index] = ts or ""
        self._forget(key)
        return PostResult(PostStatus.SENT, message_ids=tuple(done[i] for i in range(total)))


async def find_posted(
    client: AsyncWebClient,
    dest: Destination,
    key: str,
    *,
    poster: ReplyPoster | None = None,
    lookback_seconds: float = 2 * 86400,
    max_pages: int = 5,
    wall_clock: Callable[[], float] = time.time,
) -> PostResult | None:
    """Look for messages posted under ``key`` in ``dest``'s recent history.

    - ``None``: the history was searched and nothing carries the key (safe to post);
    - ``PostResult(SENT, ts...)``: every part was found;
    - ``PostResult(RETRY, found ts...)``: only some parts were; ``poster`` remembers them,
      so posting the key again resumes with the missing parts;
    - ``PostResult(GONE | AUTH | FORBIDDEN | FAILED)``: the lookup was refused for good;
      posting will be refused the same way, which lets the caller pause the channel.

    A public channel the bot posts to without being a member is joined first: its
    history is for members only.

    Raises ``LookupFailed`` when the lookup failed transiently (rate limited, timeout,
    5xx): the caller cannot tell and must neither post nor mark the post sent yet.
    """
    failure: PostResult | None = None
    oldest = wall_clock() - lookback_seconds
    try:
        channel = await _history_channel(client, dest)
        try:
            parts, total = await _scan_history(
                client, channel, key, oldest=oldest, max_pages=max_pages
            )
        except SlackApiError as exc:
            if dest.is_dm or _error_code(exc) != "not_in_channel":
                raise
            # `chat:write.public` posts to public channels the bot never joined, but only
            # members may read their history: join (`channels:join`), then look.
            try:
                await client.conversations_join(channel=channel)
            except SlackApiError as refused:
                log.warning(
                    "cannot read %s's history to check whether %s was posted (%s): "
                    "posting again may repeat it (the app needs the channels:join scope)",
                    channel,
                    key,
                    _error_code(refused),
                )
                raise
            parts, total = await _scan_history(
                client, channel, key, oldest=oldest, max_pages=max_pages
            )
        if 0 in parts and len(parts) < total:
            await _scan_thread(client, channel, parts[0], key, parts)
    except SlackApiError as exc:
        failure = classify_api_error(exc)
    except Exception as exc:
        failure = result_for_exception(exc)
    if failure is not None:
        if failure.status in (PostStatus.RETRY, PostStatus.UNKNOWN):
            raise LookupFailed(failure)
        return failure
    if not parts:
        return None
    ids = tuple(parts[i] for i in sorted(parts))
    if len(parts) >= total:
        return PostResult(PostStatus.SENT, message_ids=ids)
    if poster is not None:
        poster.remember(key, parts)
    return PostResult(PostStatus.RETRY, ids, error=f"partially posted: {len(parts)}/{total}")


def _error_code(exc: SlackApiError) -> str | None:
    data = getattr(exc.response, "data", None)
    return data.get("error") if isinstance(data, dict) else None


async def _history_channel(client: AsyncWebClient, dest: Destination) -> str:
    if not dest.is_dm:
        return dest.channel
    # Posts to a user id land in the app's DM with them; history needs that DM's id.
    opened = await client.conversations_open(users=dest.channel)
    return str(opened["channel"]["id"])


def _key_part(message: dict[str, Any], key: str) -> tuple[int, int] | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload") or {}
    if payload.get("key") != key:
        return None
    try:
        return int(payload.get("part", 0)), int(payload.get("parts", 1))
    except (TypeError, ValueError):
        return None


async def _scan_history(
    client: AsyncWebClient, channel: str, key: str, *, oldest: float, max_pages: int
) -> tuple[dict[int, str], int]:
    parts: dict[int, str] = {}
    total = 1
    cursor: str | None = None
    for _ in range(max_pages):
        page = await client.conversations_history(
            channel=channel,
            include_all_metadata=True,
            limit=200,
            oldest=f"{oldest:.6f}",
            cursor=cursor,
        )
        for message in page.get("messages") or []:
            found = _key_part(message, key)
            if found is not None:
                parts[found[0]] = str(message.get("ts"))
                total = max(total, found[1])
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor or len(parts) >= total:
            break
    return parts, total


async def _scan_thread(
    client: AsyncWebClient, channel: str, parent_ts: str, key: str, parts: dict[int, str]
) -> None:
    cursor: str | None = None
    while True:
        page = await client.conversations_replies(
            channel=channel, ts=parent_ts, include_all_metadata=True, limit=200, cursor=cursor
        )
        for message in page.get("messages") or []:
            found = _key_part(message, key)
            if found is not None:
                parts.setdefault(found[0], str(message.get("ts")))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return

"""Discord failures -> typed ``PostResult``s the delivery layer can act on."""

from __future__ import annotations

import logging

import aiohttp
import discord

from bot.models import PostResult, PostStatus

log = logging.getLogger(__name__)

# JSON error codes, https://discord.com/developers/docs/topics/opcodes-and-status-codes
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_USER = 10013
UNKNOWN_WEBHOOK = 10015
MISSING_ACCESS = 50001
CANNOT_MESSAGE_USER = 50007
MISSING_PERMISSIONS = 50013
THREAD_ARCHIVED = 50083

_GONE_CODES = {UNKNOWN_CHANNEL, UNKNOWN_GUILD, UNKNOWN_USER, UNKNOWN_WEBHOOK, THREAD_ARCHIVED}
_FORBIDDEN_CODES = {MISSING_ACCESS, CANNOT_MESSAGE_USER, MISSING_PERMISSIONS}


def describe(exc: discord.HTTPException) -> str:
    """``403 Missing Access (50001)``: short, and never containing a token."""
    text = (exc.text or "").splitlines()[0] if exc.text else ""
    code = f" ({exc.code})" if exc.code else ""
    return f"{exc.status} {text or exc.response.reason or 'error'}{code}".strip()


def status_for_http(status: int, code: int) -> PostStatus:
    """The outcome of an HTTP error answer (``status``) with Discord's JSON error ``code``."""
    if code in _GONE_CODES:
        return PostStatus.GONE
    if code in _FORBIDDEN_CODES or status == 403:
        return PostStatus.FORBIDDEN
    if status == 401:
        return PostStatus.AUTH
    if status == 404:
        return PostStatus.GONE
    if status == 429 or status >= 500:
        return PostStatus.RETRY
    return PostStatus.FAILED


def result_for_exception(exc: BaseException, *, sent: tuple[str, ...] = ()) -> PostResult:
    """Map an exception raised while posting to a ``PostResult``; ``sent``: ids already posted.

    A timeout or a connection lost mid-request is ``UNKNOWN``: the message may exist (a retry
    with the same nonce is answered with it, so retrying soon is safe).
    """
    if isinstance(exc, discord.RateLimited):
        return PostResult(
            PostStatus.RETRY, sent, f"rate limited for {exc.retry_after:.1f}s", exc.retry_after
        )
    if isinstance(exc, discord.HTTPException):
        retry_after = None
        if exc.status == 429 and isinstance(getattr(exc, "response", None), aiohttp.ClientResponse):
            header = exc.response.headers.get("Retry-After")
            retry_after = float(header) if header and _is_number(header) else None
        return PostResult(status_for_http(exc.status, exc.code), sent, describe(exc), retry_after)
    if isinstance(exc, TimeoutError):
        return PostResult(PostStatus.UNKNOWN, sent, "timed out waiting for Discord")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # the connection was never made, so nothing was sent
        return PostResult(PostStatus.RETRY, sent, f"cannot reach Discord: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return PostResult(PostStatus.UNKNOWN, sent, f"connection lost: {type(exc).__name__}")
    log.error("unexpected error while posting to Discord", exc_info=exc)
    return PostResult(PostStatus.FAILED, sent, f"{type(exc).__name__}: {exc}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

"""Slack failures -> typed ``PostResult`` statuses the delivery layer can act on.

``post()`` never raises for platform errors: every ``SlackApiError`` (an ``ok: false``
answer or an HTTP error status) and every transport error is classified here.
"""

from __future__ import annotations

import asyncio

import aiohttp

from adapters.slack import http1
from bot.models import PostResult, PostStatus

# The channel (or DM user) is no longer reachable for the bot: pause the subscription.
GONE_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "channel_is_archived",
        "not_in_channel",
        "user_not_found",
        "user_disabled",
        "thread_not_found",
        # An incoming webhook that was disabled or removed (Discord's 10015 Unknown
        # Webhook is GONE too); a PAPERBOY_DIGESTS subscription is resumed on restart.
        "no_service",
    }
)
# The bot is there but may not post (workspace/channel policy, missing scope).
FORBIDDEN_ERRORS = frozenset(
    {
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
        "team_access_not_granted",
        "access_denied",
        "cannot_reply_to_message",
        "action_prohibited",
        "posting_to_general_channel_denied",
    }
)
# The token itself is dead: nothing will work until someone reinstalls the app.
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "org_login_required",
        "invalid_token",
    }
)
# Transient and certainly not posted: try again later.
RETRY_ERRORS = frozenset({"ratelimited", "rate_limited", "service_unavailable"})
# Slack failed internally: the message may or may not exist, reconcile before retrying.
UNKNOWN_ERRORS = frozenset({"internal_error", "fatal_error", "request_timeout"})


def status_for_error(error: str) -> PostStatus:
    """The status for a Slack error code (``{"ok": false, "error": ...}``)."""
    if error in GONE_ERRORS:
        return PostStatus.GONE
    if error in FORBIDDEN_ERRORS:
        return PostStatus.FORBIDDEN
    if error in AUTH_ERRORS:
        return PostStatus.AUTH
    if error in RETRY_ERRORS:
        return PostStatus.RETRY
    if error in UNKNOWN_ERRORS:
        return PostStatus.UNKNOWN
    # invalid_blocks, msg_too_long, invalid_arguments, ...: retrying cannot help.
    return PostStatus.FAILED


def result_for_http(status_code: int, error: str | None, retry_after: str | None) -> PostResult:
    """Classify a failed answer from its HTTP status, Slack error code and Retry-After."""
    wait = parse_retry_after(retry_after)
    if status_code == 429:
        return PostResult(PostStatus.RETRY, error=error or "ratelimited", retry_after=wait or 1.0)
    if status_code >= 500:
        # A 5xx on chat.postMessage does not prove the message was not stored.
        return PostResult(PostStatus.UNKNOWN, error=error or f"http_{status_code}")
    code = error or f"http_{status_code}"
    status = status_for_error(code)
    if status is PostStatus.FAILED and status_code in (401, 403):
        status = PostStatus.AUTH if status_code == 401 else PostStatus.FORBIDDEN
    if status is PostStatus.FAILED and status_code in (404, 410):
        status = PostStatus.GONE
    return PostResult(status, error=code, retry_after=wait if status is PostStatus.RETRY else None)


def result_for_exception(exc: BaseException) -> PostResult:
    """Transport failures: refused connections are safe to retry, anything after the request
    may have left (timeouts, dropped connections) is UNKNOWN."""
    if isinstance(exc, aiohttp.ClientConnectorError | http1.ConnectError):
        return PostResult(PostStatus.RETRY, error=f"connect: {exc}")
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | aiohttp.ServerTimeoutError):
        return PostResult(PostStatus.UNKNOWN, error="timeout")
    if isinstance(exc, aiohttp.ClientError | http1.HTTPClientError):
        return PostResult(PostStatus.UNKNOWN, error=f"connection: {type(exc).__name__}")
    return PostResult(PostStatus.UNKNOWN, error=f"{type(exc).__name__}: {exc}")


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (None when absent or not a number)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

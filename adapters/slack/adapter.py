"""The Slack connector: bolt ``AsyncApp`` in Socket Mode or HTTP mode, plus posting.

- Socket Mode (default): ``AsyncSocketModeHandler`` with the app-level token; no public
  URL, no signature check (Slack authenticates the WebSocket).
- HTTP mode: ``web_routes()`` gives ``POST /slack/events`` (slash commands and button
  presses), served by ``bot.web`` through bolt's ``AsyncSlackRequestHandler``, which
  verifies the request signature (401 otherwise); see ``http_mode`` for the early ack.
  Stateless: replicas can share a load balancer.
- Webhook only: with just an incoming webhook URL, ``post()`` works (one fixed channel)
  and there are no commands.

Commands are acknowledged at once (empty ack, well inside Slack's 3 s), then answered via
their ``response_url``: lookups ephemerally with "Share in channel" / "More" buttons.
Who may manage a channel (``CommandRequest.can_manage_channel``): see ``permissions``.
Posts (digests, alerts) go out through ``sender.ChatPostSender`` on its own kept-alive
connections; every other Web API call goes through slack_sdk (on one pooled session).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Literal, Self

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.routing import BaseRoute

from adapters.slack.client import Sleep, build_web_client
from adapters.slack.events import action_to_press, command_to_request, is_dm
from adapters.slack.pacing import ChannelPacer, Clock
from adapters.slack.permissions import ChannelPermissions
from adapters.slack.posting import ReplyPoster, find_posted
from adapters.slack.render import (
    ACTION_RUN_PREFIX,
    ACTION_SHARE_PREFIX,
    ACTION_SUFFIX,
    SLACK_LIMITS,
    Message,
    render_digest,
    render_reply,
    shared_reply_blocks,
)
from adapters.slack.responder import ResponseUrlResponder
from adapters.slack.sender import ChatPostSender
from adapters.slack.webhook import WEBHOOK_CHANNEL, WebhookSender
from bot.config import Settings
from bot.models import (
    CommandRequest,
    Destination,
    PostResult,
    PostStatus,
    Reply,
    ReplyKind,
)
from bot.ports import CommandHandler

log = logging.getLogger(__name__)

SLASH_COMMAND = "/papers"
# slack_sdk's pooled session (commands' lookups, history, permissions; posts have their own)
MAX_CONNECTIONS = 50
RENDER_CACHE_SIZE = 64  # distinct replies whose rendering is kept (a fan-out repeats one)
ERROR_TEXT = "Sorry, something went wrong while answering that. Please try again."
_OUR_ACTIONS = re.compile(f"^({ACTION_RUN_PREFIX}|{ACTION_SHARE_PREFIX}){ACTION_SUFFIX}$")


class SlackAdapter:
    """paperboy on Slack. Implements ``bot.ports.ChatAdapter``."""

    name = "slack"
    limits = SLACK_LIMITS

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        app_token: str | None = None,
        signing_secret: str | None = None,
        mode: Literal["socket", "http"] = "socket",
        api_url: str = "https://slack.com/api/",
        webhook_url: str | None = None,
        timeout: float = 10.0,
        concurrent_answers: int = 8,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not bot_token and not webhook_url:
            raise ValueError("Slack needs a bot token (xoxb-…) or an incoming webhook URL")
        if bot_token and mode == "http" and not signing_secret:
            raise ValueError("Slack HTTP mode needs PAPERBOY_SLACK_SIGNING_SECRET")
        if bot_token and mode == "socket" and not app_token:
            raise ValueError("Slack Socket Mode needs PAPERBOY_SLACK_APP_TOKEN (xapp-…)")
        self.mode = mode
        self._signing_secret = signing_secret or ""
        self._app_token = app_token
        self._handle: CommandHandler | None = None
        self._socket_handler: Any = None
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._work_slots = asyncio.Semaphore(concurrent_answers)
        self.responder = ResponseUrlResponder(timeout=timeout, sleep=sleep)
        pacer = ChannelPacer(
            1.0 / (SLACK_LIMITS.messages_per_second_per_channel or 1.0), clock=clock, sleep=sleep
        )
        self._rendered: OrderedDict[Reply, tuple[tuple[Message, ...], bool]] = OrderedDict()
        self.client: AsyncWebClient | None = None
        self._sender: ChatPostSender | None = None
        self.app: AsyncApp | None = None
        if bot_token:
            self.client = build_web_client(
                token=bot_token, base_url=api_url, timeout=timeout, sleep=sleep
            )
            self._sender = ChatPostSender(
                token=bot_token,
                api_url=api_url,
                timeout=timeout,
                sleep=sleep,
                proxy=self.client.proxy,  # slack_sdk's, from HTTPS_PROXY & co.
            )
            self.poster = ReplyPoster(self._sender, pacer)
            self.permissions = ChannelPermissions(self.client, clock=clock)
            self.app = self._build_app(signing_secret or "")
        else:
            assert webhook_url is not None
            self.poster = ReplyPoster(
                WebhookSender(webhook_url, timeout=timeout, sleep=sleep), pacer
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build from ``PAPERBOY_SLACK_*`` settings (see the module docstring for modes)."""

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            bot_token=secret(settings.slack_bot_token),
            app_token=secret(settings.slack_app_token),
            signing_secret=secret(settings.slack_signing_secret),
            mode=settings.slack_mode,
            api_url=settings.slack_api_url,
            webhook_url=secret(settings.slack_webhook_url),
            timeout=settings.http_timeout,
        )

    # --- bolt wiring ----------------------------------------------------------------

    def _build_app(self, signing_secret: str) -> AsyncApp:
        # process_before_response: bolt answers as soon as the listener returns, and our
        # listeners only ack() and schedule the work. (Otherwise bolt polls for the ack
        # every 10 ms; its lazy listeners deep-copy each request: both cost under load.)
        app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            # Socket Mode requests are authenticated by the WebSocket, not signed.
            request_verification_enabled=self.mode == "http",
            process_before_response=True,
        )
        app.command(SLASH_COMMAND)(self._on_command)
        app.action(_OUR_ACTIONS)(self._on_button)
        return app

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._answer_command(command))

    async def _on_button(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._answer_button(body))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._in_slot(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_slot(self, work: Coroutine[Any, Any, None]) -> None:
        # A burst of commands is worked off a few at a time, so the acks of the requests
        # still arriving are not queued behind all the others' searches and rendering.
        async with self._work_slots:
            await work

    async def _answer_command(self, command: dict[str, Any]) -> None:
        team = str(command.get("team_id", ""))
        channel = str(command.get("channel_id", ""))
        user = str(command.get("user_id", ""))
        allowed = await self._can_manage(team, channel, user, command.get("channel_name"))
        request = command_to_request(command, can_manage_channel=allowed)
        reply = await self._invoke(request)
        await self.responder.send(
            str(command.get("response_url", "")), render_reply(reply), ephemeral=reply.ephemeral
        )

    async def _answer_button(self, body: dict[str, Any]) -> None:
        user = body.get("user") or {}
        channel = body.get("channel") or {}
        team = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
        allowed = await self._can_manage(
            team, str(channel.get("id", "")), str(user.get("id", "")), channel.get("name")
        )
        press = action_to_press(body, can_manage_channel=allowed)
        response_url = str(body.get("response_url") or "")
        if press is None or not response_url:
            return
        reply = await self._invoke(press.request)
        if press.share:
            visible = replace(
                reply, ephemeral=False, buttons=tuple(b for b in reply.buttons if not b.share)
            )
            messages = shared_reply_blocks(render_reply(visible), press.request.user)
            await self.responder.send(response_url, messages, ephemeral=False)
        else:
            await self.responder.send(
                response_url,
                render_reply(reply),
                ephemeral=reply.ephemeral,
                replace_first=press.replaces_message and reply.ephemeral,
            )

    async def _can_manage(self, team: str, channel: str, user: str, channel_name: Any) -> bool:
        return await self.permissions.can_manage(
            team, channel, user, is_dm=is_dm(channel, channel_name)
        )

    async def _invoke(self, request: CommandRequest) -> Reply:
        if self._handle is None:
            return Reply(
                text="paperboy is starting up; try again in a moment.", kind=ReplyKind.ERROR
            )
        try:
            return await self._handle(request)
        except Exception:
            log.exception("command %r failed", request.subcommand)
            return Reply(text=ERROR_TEXT, kind=ReplyKind.ERROR)

    # --- ChatAdapter ----------------------------------------------------------------

    async def start(self, handle: CommandHandler) -> None:
        """Route ``/papers`` to ``handle``; in Socket Mode, connect (returns once connected)."""
        self._handle = handle
        if self.client is not None and self.client.session is None:
            # One pooled session for every Web API call: slack_sdk otherwise opens (and
            # tears down) a connection per call, which caps a large digest fan-out.
            # slack_sdk applies its timeout only to sessions it opens itself: set it here.
            self.client.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        if self.app is None or self.mode != "socket":
            return
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket_handler = AsyncSocketModeHandler(self.app, self._app_token)
        await self._socket_handler.connect_async()

    def web_routes(self) -> list[BaseRoute]:
        """HTTP mode: ``POST /slack/events`` for slash commands and interactivity."""
        if self.app is None or self.mode != "http":
            return []
        from adapters.slack.http_mode import events_route

        route = events_route(
            self.app,
            self._signing_secret,
            ready=lambda: self._handle is not None,
            spawn=self._spawn,
        )
        return [route]

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult:
        """Post ``reply`` visibly in ``dest``; a digest longer than a few papers becomes a
        header message with its cards in the thread. Returns the ts of every message."""
        try:
            messages, threaded = self.render(reply)
            channel = dest.channel if self.client is not None else WEBHOOK_CHANNEL
            return await self.poster.post(channel, messages, key=key, threaded=threaded)
        except Exception as exc:  # a rendering bug must not kill the delivery loop
            log.exception("slack post %s failed", key)
            return PostResult(PostStatus.FAILED, error=f"{type(exc).__name__}: {exc}")

    def render(self, reply: Reply) -> tuple[tuple[Message, ...], bool]:
        """``reply`` as messages (and whether the first is a thread parent), memoised: a
        digest fanned out to many channels is rendered once. The messages are shared
        between callers and must not be modified."""
        try:
            cached = self._rendered.get(reply)
        except TypeError:  # an unhashable field (a list where a tuple belongs): no cache
            return self._render(reply)
        if cached is not None:
            self._rendered.move_to_end(reply)
            return cached
        cached = self._rendered[reply] = self._render(reply)
        while len(self._rendered) > RENDER_CACHE_SIZE:
            self._rendered.popitem(last=False)
        return cached

    def _render(self, reply: Reply) -> tuple[tuple[Message, ...], bool]:
        if reply.kind is ReplyKind.DIGEST:
            return render_digest(reply, self.limits).messages, True
        return tuple(render_reply(reply, self.limits)), False

    async def find_posted(self, dest: Destination, key: str) -> PostResult | None:
        """Reconcile a post whose outcome was UNKNOWN; see ``posting.find_posted`` (None: not
        found; raises ``posting.LookupFailed`` when Slack could not be asked right now).

        With only a webhook there is no history to search: ``None``, as for adapters that
        cannot reconcile (a webhook post that timed out may then appear twice).
        """
        if self.client is None:
            return None
        return await find_posted(self.client, dest, key, poster=self.poster)

    async def close(self) -> None:
        if self._socket_handler is not None:
            try:
                await self._socket_handler.close_async()
            except Exception:
                log.warning("closing the Slack socket failed", exc_info=True)
            self._socket_handler = None
        if self._tasks:  # answers in flight get a moment to finish
            _done, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        await self.responder.close()
        if self.client is not None and self.client.session is not None:
            await self.client.session.close()
            self.client.session = None
        if self._sender is not None:
            await self._sender.close()
        self._handle = None

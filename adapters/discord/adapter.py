"""The Discord adapter: a discord.py client for ``/papers`` and REST posting with nonces.

Two modes:

* bot (``PAPERBOY_DISCORD_TOKEN``): logs in over REST, answers ``/papers`` through the
  gateway, posts with ``POST /channels/{id}/messages``. Each message of a post carries a
  nonce derived from the delivery key with ``enforce_nonce``: Discord answers a repeat
  with the message it already created, so a retried post never shows twice.
* webhook (``PAPERBOY_DISCORD_WEBHOOK_URL`` only): posting to one channel, no commands.

``PAPERBOY_DISCORD_API_URL`` replaces discord.py's REST base (``discord.http.Route.BASE``),
which also carries interaction responses.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from enum import StrEnum
from typing import Any, Self

import aiohttp
import discord
from discord import app_commands
from discord.http import Route

from adapters.discord.commands import WatchSuggester, build_papers_group, tree_payload
from adapters.discord.errors import result_for_exception
from adapters.discord.events import PaperboyButton
from adapters.discord.gateway import (
    Backoff,
    GatewayOutcome,
    IdentifyThrottle,
    Sleep,
    is_fatal,
    supervise,
)
from adapters.discord.progress import PartialPosts
from adapters.discord.render import LIMITS, render_reply
from adapters.discord.respond import DEFAULT_DEFER_AFTER, InteractionResponder
from adapters.discord.sync import command_differences
from adapters.discord.webhook import WebhookPoster
from bot.config import Settings
from bot.models import Destination, PostResult, PostStatus, Reply
from bot.ports import CommandHandler

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"
MAX_NONCE_CHARS = 25


def nonce_for(key: str, part: int) -> str:
    """The nonce of message ``part`` of the post identified by ``key`` (25 chars, stable)."""
    digest = hashlib.blake2b(f"{key}\x00{part}".encode(), digest_size=16).hexdigest()
    return digest[:MAX_NONCE_CHARS]


def use_api_base(url: str) -> None:
    """Point discord.py's REST (and interaction webhook) requests at ``url``."""
    Route.BASE = url.rstrip("/")


class AdapterState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    READY = "ready"  # logged in: posting works; commands once the gateway is up
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


class PaperboyClient(discord.Client):
    """discord.Client with the ``/papers`` tree, stateless buttons and IDENTIFY throttling."""

    def __init__(self, *, throttle: IdentifyThrottle, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # channel and guild objects on interactions; not privileged
        super().__init__(intents=intents, **options)
        self.tree: app_commands.CommandTree[PaperboyClient] = app_commands.CommandTree(self)
        self.paperboy_router: InteractionResponder | None = None
        self.throttle = throttle

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PaperboyButton)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self.throttle.wait()


async def _unconfigured_handler(request: Any) -> Reply:
    return Reply(text="paperboy is not answering commands in this process.")


class DiscordAdapter:
    """``ChatAdapter`` for Discord (see the module docstring for the two modes)."""

    name = "discord"
    limits = LIMITS

    def __init__(
        self,
        *,
        token: str | None = None,
        webhook_url: str | None = None,
        api_url: str = DEFAULT_API_URL,
        defer_after: float = DEFAULT_DEFER_AFTER,
        request_timeout: float = 45.0,
        max_ratelimit_wait: float = 30.0,
        throttle: IdentifyThrottle | None = None,
        sleep: Sleep = asyncio.sleep,
        connect_gateway: bool = True,
    ) -> None:
        if not token and not webhook_url:
            raise ValueError("Discord needs PAPERBOY_DISCORD_TOKEN or PAPERBOY_DISCORD_WEBHOOK_URL")
        self._token = token
        self.api_url = api_url
        self.defer_after = defer_after
        self.request_timeout = request_timeout
        self.max_ratelimit_wait = max_ratelimit_wait
        self._throttle = throttle or IdentifyThrottle(sleep=sleep)
        self._sleep = sleep
        self.state = AdapterState.NEW
        self.watch_suggester: WatchSuggester | None = None
        self.webhook = (
            WebhookPoster(webhook_url, timeout=request_timeout, sleep=sleep)
            if webhook_url and not token
            else None
        )
        self._client: PaperboyClient | None = None
        self._gateway_task: asyncio.Task[GatewayOutcome] | None = None
        self._dm_channels: dict[str, str] = {}
        # Parts already posted under a key whose post then failed: the retry resumes after
        # them, with the messages planned the first time. Nonces alone would not do:
        # Discord forgets them after a few minutes, and a backed-off retry comes later.
        self._partial = PartialPosts()
        self._closing = False
        self._login_lock = asyncio.Lock()
        self.connect_gateway = connect_gateway  # False: REST only (tests, CLI)
        self.responder = InteractionResponder(_unconfigured_handler, defer_after=defer_after)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Bot mode when a token is set, else webhook mode."""
        token = settings.discord_token.get_secret_value() if settings.discord_token else None
        webhook = settings.discord_webhook_url
        return cls(
            token=token,
            webhook_url=webhook.get_secret_value() if webhook else None,
            api_url=settings.discord_api_url,
            request_timeout=max(settings.http_timeout * 3, 30.0),
        )

    @property
    def client(self) -> PaperboyClient:
        """The discord.py client, with the ``/papers`` tree (created on first use)."""
        if self._client is None:
            use_api_base(self.api_url)
            client = PaperboyClient(
                throttle=self._throttle, max_ratelimit_timeout=self.max_ratelimit_wait
            )
            client.paperboy_router = self.responder
            client.tree.add_command(
                build_papers_group(self.responder, watch_suggester=lambda: self.watch_suggester)
            )
            self._client = client
        return self._client

    async def login(self) -> PaperboyClient:
        """Log in over REST (``GET /users/@me``); no gateway. Raises ``discord.LoginFailure``."""
        async with self._login_lock:
            client = self.client
            if client.user is None:
                if self._token is None:
                    raise discord.LoginFailure("no bot token configured")
                try:
                    await client.login(self._token)
                except BaseException:
                    # discord.py cannot log a client in twice once its HTTP session was
                    # closed; the next attempt gets a fresh client instead of leaking this one
                    await self._discard_client()
                    raise
                self.state = AdapterState.READY
        return client

    async def _discard_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def start(self, handle: CommandHandler) -> None:
        """Log in, warn about stale registered commands, connect to the gateway in the background.

        A rejected token is logged once and disables the adapter (posts answer ``AUTH``)
        instead of retrying; Discord being unreachable is retried in the background.
        """
        if self.webhook is not None:
            log.info("Discord webhook mode: posting digests only, no /papers commands")
            self.state = AdapterState.READY
            return
        self.responder.handle = handle
        self.state = AdapterState.CONNECTING
        try:
            await asyncio.wait_for(self.login(), self.request_timeout)
        except discord.LoginFailure:
            self._auth_failed()
            return
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot reach Discord (%s); retrying in the background", exc)
        else:
            await self.warn_if_commands_differ()
        if self.connect_gateway:
            self._gateway_task = asyncio.create_task(self._run_gateway(), name="discord-gateway")

    def _auth_failed(self) -> None:
        self.state = AdapterState.AUTH_FAILED
        log.error(
            "Discord rejected the bot token (401). Check PAPERBOY_DISCORD_TOKEN; "
            "Discord stays off until paperboy restarts."
        )

    async def warn_if_commands_differ(self) -> list[str]:
        """Compare registered global commands with the code; log a warning when they differ."""
        client = self.client
        try:
            registered = await client.http.get_global_commands(client.application_id)  # type: ignore[arg-type]
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not fetch the registered Discord commands: %s", exc)
            return []
        problems = command_differences(tree_payload(client.tree), [dict(c) for c in registered])
        if problems:
            log.warning(
                "Discord commands registered differ from the code; run `paperboy discord sync`: %s",
                "; ".join(problems),
            )
        return problems

    async def _run_gateway(self) -> GatewayOutcome:
        backoff = Backoff()
        while self.client.user is None and not self._closing:
            delay = backoff.next_delay()
            log.info("logging in to Discord in %.0fs", delay)
            await self._sleep(delay)
            try:
                await self.login()
                await self.warn_if_commands_differ()
            except Exception as exc:
                if is_fatal(exc):
                    self._auth_failed()
                    return GatewayOutcome.FATAL
                log.warning("Discord login failed, will retry: %s", exc)
        outcome = await supervise(
            lambda: self.client.connect(reconnect=True),
            self._reopen,
            closing=lambda: self._closing,
            sleep=self._sleep,
        )
        if outcome is GatewayOutcome.FATAL:
            self.state = AdapterState.STOPPED
        return outcome

    async def _reopen(self) -> None:
        # a client that discord.py closed cannot be reused: log in with a fresh one
        await self._discard_client()
        await self.login()

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult:
        """Post ``reply`` visibly in ``dest`` (split into several messages when needed)."""
        if self.webhook is not None:
            return await self.webhook.post(reply, key=key)
        if self.state is AdapterState.AUTH_FAILED:
            return PostResult(PostStatus.AUTH, error="Discord rejected the bot token")
        try:
            client = await asyncio.wait_for(self.login(), self.request_timeout)
        except discord.LoginFailure:
            self._auth_failed()
            return PostResult(PostStatus.AUTH, error="Discord rejected the bot token")
        except Exception as exc:
            return _not_sent(result_for_exception(exc))
        sent, planned = self._partial.resume(key, render_reply(reply, in_channel=True))
        try:
            channel_id = await self._channel_for(client, dest)
            for part, message in enumerate(planned):
                if part < len(sent):
                    continue
                route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
                body = message.to_json(nonce=nonce_for(key, part))
                data = await asyncio.wait_for(
                    client.http.request(route, json=body), self.request_timeout
                )
                sent.append(str(data["id"]))
        except Exception as exc:
            result = result_for_exception(exc, sent=tuple(sent))
            log.warning("Discord post to %s failed: %s %s", dest.key, result.status, result.error)
            if result.status in (PostStatus.RETRY, PostStatus.UNKNOWN):
                self._partial.keep(key, sent, planned)
            return result
        return PostResult(PostStatus.SENT, tuple(sent))

    async def _channel_for(self, client: PaperboyClient, dest: Destination) -> int:
        if not dest.is_dm:
            return int(dest.channel)
        channel = self._dm_channels.get(dest.channel)
        if channel is None:
            data = await asyncio.wait_for(
                client.http.start_private_message(int(dest.channel)), self.request_timeout
            )
            channel = self._dm_channels[dest.channel] = str(data["id"])
        return int(channel)

    async def close(self) -> None:
        """Disconnect from the gateway and close HTTP sessions."""
        self._closing = True
        if self._client is not None:
            await self._client.close()
        if self._gateway_task is not None:
            self._gateway_task.cancel()
            await asyncio.gather(self._gateway_task, return_exceptions=True)
        if self.webhook is not None:
            await self.webhook.close()
        if self.state is not AdapterState.AUTH_FAILED:
            self.state = AdapterState.STOPPED


def _not_sent(result: PostResult) -> PostResult:
    # login never sends a message: a timeout there is a plain retry, not an unknown outcome
    if result.status is PostStatus.UNKNOWN:
        return PostResult(PostStatus.RETRY, error=result.error)
    return result

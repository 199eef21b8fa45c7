"""A fake Discord REST API: a real HTTP server on 127.0.0.1 speaking Discord's wire format.

Point discord.py at it with ``discord.http.Route.BASE = fake.api_url`` (the adapter does
this from ``api_url``). It serves what paperboy uses::

    GET  /users/@me, /oauth2/applications/@me           login (401 on a wrong token)
    POST /channels/{id}/messages                          nonce + enforce_nonce honoured
    POST /users/@me/channels                              open a DM channel
    GET|PUT /applications/{app}/commands (+ guild scope)  command registration
    POST /interactions/{id}/{token}/callback              interaction responses
    POST|PATCH|DELETE /webhooks/{app}/{token}[/messages/@original]   follow-ups and edits
    POST /webhooks/{id}/{token}?wait=true                  plain webhooks

and validates messages against Discord's limits (400 code 50035, as Discord would), so
a test fails when paperboy sends something Discord would reject. Failures are scripted::

    fake.fail_next("POST", "/channels/1/messages", status=403, code=50001)
    fake.fail_next("POST", "/channels/1/messages", status=403, code=50013, after=1)  # 2nd
    fake.rate_limit_next("POST", "/channels/1/messages", retry_after=0.01)
    fake.hang_next("POST", "/channels/1/messages")      # never answers
    fake.requests                                         # every request, in order
    await fake.wait_for(lambda r: r.path.endswith("/callback"))

It also serves a minimal gateway websocket at ``fake.gateway_url`` (point
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` at it): HELLO, READY after IDENTIFY,
RESUMED after RESUME, heartbeat ACKs, then per connection a scripted plan from
``fake.gateway_plans``: ``("dispatch", "INTERACTION_CREATE", data)``, ``("close", 4000)``,
``("invalid_session", False)``. IDENTIFY and RESUME are recorded as requests with method
``"WS"`` and path ``"identify"`` / ``"resume"``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

TOKEN = "fake-bot-token"
APPLICATION_ID = 900000000000000001
BOT_USER_ID = 900000000000000001
API_PREFIX = "/api/v10"

LIMITS = {"content": 2000, "embeds": 10, "embed_total": 6000, "title": 256, "description": 4096}
LIMITS |= {"fields": 25, "field_name": 256, "field_value": 1024, "footer": 2048, "author": 256}
ERROR_MESSAGES = {
    401: "401: Unauthorized",
    403: "Missing Access",
    404: "Unknown Channel",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
CODE_MESSAGES = {50001: "Missing Access", 50013: "Missing Permissions", 10003: "Unknown Channel"}


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON the way Discord sends it: exactly ``Content-Type: application/json``."""
    # discord.py compares the header with "application/json" exactly; aiohttp's
    # json_response would add "; charset=utf-8" and be read as text.
    response = web.Response(body=json.dumps(body).encode(), status=status, headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass
class ScriptedAnswer:
    method: str
    path: str
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    after: int = 0  # let this many matching requests through first


def bot_user() -> dict[str, Any]:
    return {
        "id": str(BOT_USER_ID),
        "username": "paperboy",
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": True,
        "flags": 0,
    }


def application() -> dict[str, Any]:
    return {
        "id": str(APPLICATION_ID),
        "name": "paperboy",
        "icon": None,
        "description": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": {"id": "1", "username": "owner", "discriminator": "0", "avatar": None},
        "verify_key": "0" * 64,
        "flags": 0,
    }


def embed_total(embed: dict[str, Any]) -> int:
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", "")) + len(
        embed.get("author", {}).get("name", "")
    )
    return total + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def message_problems(body: dict[str, Any]) -> list[str]:
    """What Discord would reject in a message body (empty: it would accept it)."""
    problems = []
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if len(content) > LIMITS["content"]:
        problems.append("content: Must be 2000 or fewer in length.")
    if not content and not embeds and not body.get("components"):
        problems.append("Cannot send an empty message")
    if len(embeds) > LIMITS["embeds"]:
        problems.append("embeds: Must be 10 or fewer in length.")
    if sum(embed_total(e) for e in embeds) > LIMITS["embed_total"]:
        problems.append("embeds: Embed size exceeds maximum size of 6000")
    for embed in embeds:
        for key, limit in (("title", "title"), ("description", "description")):
            if len(embed.get(key, "")) > LIMITS[limit]:
                problems.append(f"embeds.{key}: too long")
        if len(embed.get("footer", {}).get("text", "")) > LIMITS["footer"]:
            problems.append("embeds.footer.text: too long")
        if len(embed.get("author", {}).get("name", "")) > LIMITS["author"]:
            problems.append("embeds.author.name: too long")
        fields = embed.get("fields", [])
        if len(fields) > LIMITS["fields"]:
            problems.append("embeds.fields: too many")
        for item in fields:
            if not item["name"] or len(item["name"]) > LIMITS["field_name"]:
                problems.append("embeds.fields.name: bad length")
            if not item["value"] or len(item["value"]) > LIMITS["field_value"]:
                problems.append("embeds.fields.value: bad length")
        for key in ("url",):
            if key in embed and not re.match(r"^https?://\S+$", embed[key]):
                problems.append(f"embeds.{key}: Not a well formed URL.")
        if "thumbnail" in embed and not re.match(r"^https?://\S+$", embed["thumbnail"]["url"]):
            problems.append("embeds.thumbnail.url: Not a well formed URL.")
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        problems.append("nonce: Must be 25 or fewer in length.")
    for row in body.get("components") or []:
        if len(row["components"]) > 5:
            problems.append("components: too many in a row")
        for button in row["components"]:
            if len(button.get("custom_id", "")) > 100 or len(button.get("label", "")) > 80:
                problems.append("components.custom_id or label: too long")
    return problems


class FakeDiscord:
    """The server; use as ``async with FakeDiscord() as fake`` or the ``fake_discord`` fixture."""

    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[RecordedRequest] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self._nonces: dict[tuple[str, str], dict[str, Any]] = {}
        self._script: deque[ScriptedAnswer] = deque()
        self._ids = itertools.count(1_000_000_000_000_000_000)
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.gateway_plans: deque[list[tuple[Any, ...]]] = deque()
        self._sockets: set[web.WebSocketResponse] = set()

    # --- scripting -------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int,
        code: int = 0,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        text = message or CODE_MESSAGES.get(code) or ERROR_MESSAGES.get(status, "error")
        body = {"message": text, "code": code}
        self._script.append(ScriptedAnswer(method, path, status, body, headers or {}, after=after))

    def rate_limit_next(
        self,
        method: str,
        path: str,
        *,
        retry_after: float,
        via: bool = True,
        is_global: bool = False,
    ) -> None:
        headers = {"Retry-After": str(retry_after), "X-RateLimit-Scope": "user"}
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        self._script.append(ScriptedAnswer(method, path, 429, body, headers))

    def expire_nonces(self) -> None:
        """Forget the nonces seen so far: Discord only remembers them for a few minutes."""
        self._nonces.clear()

    def hang_next(self, method: str, path: str) -> None:
        self._script.append(ScriptedAnswer(method, path, hang=True))

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway/"

    def calls(self, method: str, pattern: str) -> list[RecordedRequest]:
        """Recorded requests whose path matches the regex ``pattern`` (full match)."""
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    async def wait_for(
        self, predicate: Callable[[RecordedRequest], bool], *, count: int = 1, within: float = 10
    ) -> list[RecordedRequest]:
        """Wait until ``count`` recorded requests satisfy ``predicate`` (no polling)."""

        async def until() -> list[RecordedRequest]:
            async with self._changed:
                while True:
                    hits = [r for r in self.requests if predicate(r)]
                    if len(hits) >= count:
                        return hits
                    await self._changed.wait()

        return await asyncio.wait_for(until(), within)

    # --- server ---------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def new_id(self) -> str:
        return str(next(self._ids))

    def message(self, channel_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.new_id(),
            "channel_id": channel_id,
            "type": 0,
            "content": body.get("content") or "",
            "author": bot_user(),
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": "2026-11-21T09:00:00.000000+00:00",
            "edited_timestamp": None,
            "flags": body.get("flags") or 0,
            "nonce": body.get("nonce"),
            **extra,
        }

    async def _record(self, recorded: RecordedRequest) -> None:
        async with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        plan = self.gateway_plans.popleft() if self.gateway_plans else []
        sequence = 0

        async def dispatch(event: str, data: Any) -> None:
            nonlocal sequence
            sequence += 1
            await ws.send_json({"op": 0, "t": event, "s": sequence, "d": data})

        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                break
            payload = json.loads(frame.data)
            if payload["op"] == 1:  # heartbeat
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
                continue
            if payload["op"] not in (2, 6):
                continue
            kind = "identify" if payload["op"] == 2 else "resume"
            await self._record(RecordedRequest("WS", kind, {}, payload, {}))
            if kind == "identify":
                ready = {
                    "v": 10,
                    "user": bot_user(),
                    "guilds": [],
                    "session_id": f"session-{self.new_id()}",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(APPLICATION_ID), "flags": 0},
                }
                await dispatch("READY", ready)
            else:
                await dispatch("RESUMED", {})
            for action in plan:
                if action[0] == "dispatch":
                    await dispatch(action[1], action[2])
                elif action[0] == "invalid_session":
                    await ws.send_json({"op": 9, "d": action[1], "s": None, "t": None})
                elif action[0] == "close":
                    await ws.close(code=action[1])
                    return ws
            plan = []
        return ws

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/gateway/":
            return await self._gateway(request)
        path = request.path.removeprefix(API_PREFIX)
        body = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = await request.text()
        recorded = RecordedRequest(
            request.method, path, dict(request.query), body, dict(request.headers)
        )
        await self._record(recorded)
        for answer in list(self._script):
            if answer.method == request.method and answer.path == path:
                if answer.after > 0:
                    answer.after -= 1
                    break
                self._script.remove(answer)
                if answer.hang:
                    await self._release.wait()
                    raise web.HTTPServiceUnavailable()
                return json_response(answer.body, status=answer.status, headers=answer.headers)
        needs_token = not path.startswith(("/webhooks/", "/interactions/"))
        if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return await self._answer(request.method, path, request.query, body)

    async def _answer(self, method: str, path: str, query: Any, body: Any) -> web.StreamResponse:
        app = str(APPLICATION_ID)
        if method == "GET" and path == "/users/@me":
            return json_response(bot_user())
        if method == "GET" and path == "/oauth2/applications/@me":
            return json_response(application())
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            return self._create_message(m[1], body)
        if method == "POST" and path == "/users/@me/channels":
            channel = {"id": f"7{body['recipient_id']}", "type": 1, "recipients": []}
            return json_response(channel)
        if m := re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", path):
            return self._commands(method, m[1], body)
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            return self._interaction_callback(m[1], body)
        if re.fullmatch(rf"/webhooks/{app}/[^/]+/messages/@original", path):
            if method == "DELETE":
                return web.Response(status=204)
            return json_response(self.message("1", body or {}))
        if re.fullmatch(r"/webhooks/\d+/[^/]+", path) and method == "POST":
            problems = message_problems(body or {})
            if problems:
                return self._invalid_form(problems)
            return json_response(self.message("1", body or {}, webhook_id="1"))
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    @staticmethod
    def _invalid_form(problems: list[str]) -> web.Response:
        body = {"message": "Invalid Form Body", "code": 50035, "errors": problems}
        return json_response(body, status=400)

    def _create_message(self, channel_id: str, body: dict[str, Any]) -> web.Response:
        problems = message_problems(body)
        if problems:
            return self._invalid_form(problems)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            existing = self._nonces.get((channel_id, str(nonce)))
            if existing is not None:
                return json_response(existing)
        message = self.message(channel_id, body)
        self.messages.setdefault(channel_id, []).append(message)
        if nonce is not None:
            self._nonces[(channel_id, str(nonce))] = message
        return json_response(message)

    def _commands(self, method: str, guild: str | None, body: Any) -> web.Response:
        if method == "PUT":
            stored = [
                {
                    **command,
                    "id": self.new_id(),
                    "application_id": str(APPLICATION_ID),
                    "version": self.new_id(),
                    **({"guild_id": guild} if guild else {}),
                }
                for command in body
            ]
            if guild:
                self.guild_commands[guild] = stored
            else:
                self.global_commands = stored
        commands = self.guild_commands.get(guild, []) if guild else self.global_commands
        return json_response(commands)

    def _interaction_callback(self, interaction_id: str, body: dict[str, Any]) -> web.Response:
        kind = body["type"]
        data = body.get("data") or {}
        if kind in (4, 7):
            problems = message_problems(data)
            if problems:
                return self._invalid_form(problems)
        flags = data.get("flags") or 0
        message = self.message("1", data)
        answer: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_id": message["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & 64),
            },
            "resource": {"type": kind, "message": message} if kind in (4, 5, 7) else None,
        }
        if answer["resource"] is None:
            del answer["resource"]
        return json_response(answer)


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@contextmanager
def fake_discord_in_thread() -> Iterator[FakeDiscord]:
    """The fake on its own event loop in a thread, for code that calls ``asyncio.run`` (CLI)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    fake = FakeDiscord()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.__aenter__())
        started.set()
        loop.run_forever()
        loop.run_until_complete(fake.__aexit__(None, None, None))
        loop.close()

    thread = threading.Thread(target=serve, name="fake-discord", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the fake Discord server did not start")
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

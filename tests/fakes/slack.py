"""A fake Slack Web API (plus response_url and incoming-webhook endpoints) on 127.0.0.1.

Speaks the real wire format: ``POST/GET /api/<method>`` with form, query or JSON
arguments, answers ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``, HTTP 429 with
``Retry-After``, 5xx, or drops the connection. Every call is recorded.

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
        fake.fail_next("chat.postMessage", status=429, retry_after=3)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from tests.fakes import lean_http

BOT_USER = "UBOT"
TEAM = "T1"


def _arguments(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """A Web API call's arguments: the query string, then a JSON or form body."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if content_type == "application/json":
        args.update(orjson.loads(body or b"{}"))
    elif body:
        args.update(parse_qsl(body.decode(), keep_blank_values=True))
    return args


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Like ``web.json_response``, encoded with orjson (the benchmark posts thousands)."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


@dataclass
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    body: str | None = None
    drop_connection: bool = False
    hang: bool = False

    def response(self) -> tuple[int, dict[str, str], str, bytes]:
        """(status, headers, content type, body) of an answering failure."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after))
        if self.body is not None:
            return self.status, headers, "text/html", self.body.encode()
        error = self.error or ("ratelimited" if self.status == 429 else "internal_error")
        body = orjson.dumps({"ok": False, "error": error})
        return self.status, headers, "application/json", body


@dataclass
class FakeSlack:
    """The fake server; ``api_url`` is the Web API base URL to give slack_sdk."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    # time.perf_counter() when each response_url body arrived (benchmarks)
    response_arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    history_page_size: int = 200
    # Scopes the app was installed without (e.g. {"channels:join"}): methods needing them
    # answer missing_scope.
    missing_scopes: set[str] = field(default_factory=set)
    # When set, chat.postMessage enforces Slack's per-channel pace: a post sooner than this
    # many seconds after the channel's previous one gets 429 with Retry-After.
    channel_post_interval: float | None = None
    rate_limited: int = 0
    # "lean": serve the Web API and /__state only, through lean_http (the benchmark's
    # fake, which must not take the CPU the bot is measured on); "aiohttp": everything.
    server: Literal["aiohttp", "lean"] = "aiohttp"

    def __post_init__(self) -> None:
        self._failures: dict[str, list[Failure]] = defaultdict(list)
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._lean_server: lean_http.LeanHTTPServer | None = None
        self._release = asyncio.Event()
        self.port = 0
        self.response_arrived = asyncio.Condition()
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connected = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._acked = asyncio.Condition()
        self._last_post: dict[str, float] = {}

    # --- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        if self.server == "lean":
            self._lean_server = await lean_http.LeanHTTPServer(self._lean).start()
            self.port = self._lean_server.port
            return self
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{token}", self._response_url)
        app.router.add_post("/webhook/{token}", self._webhook)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/__state", self._state)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=lean_http.BACKLOG)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release.set()
        for socket in self._sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._lean_server is not None:
            await self._lean_server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, token: str = "r1") -> str:
        return f"{self.base}/response/{token}"

    def webhook_url(self, token: str = "w1") -> str:
        return f"{self.base}/webhook/{token}"

    # --- scripting ------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        drop_connection: bool = False,
        hang: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail as described.

        ``status=429`` answers ratelimited with ``Retry-After``; ``error=...`` with status
        200 is an ``ok: false`` answer; ``drop_connection`` closes the socket without an
        answer; ``hang`` never answers (until the fake shuts down).
        """
        failure = Failure(status, error, retry_after, body, drop_connection, hang)
        self._failures[method].extend([failure] * times)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_responses(self, token: str, count: int) -> None:
        """Wait (at most 5 s, a hang guard) until ``count`` bodies reached ``response_url``."""
        async with asyncio.timeout(5.0), self.response_arrived:
            await self.response_arrived.wait_for(lambda: len(self.responses[token]) >= count)

    async def send_envelope(self, envelope_type: str, envelope_id: str, payload: dict) -> None:
        """Push a Socket Mode envelope to the connected app and wait for its ack."""
        await asyncio.wait_for(self.socket_connected.wait(), 5)
        message = {
            "type": envelope_type,
            "envelope_id": envelope_id,
            "payload": payload,
            "accepts_response_payload": envelope_type == "slash_commands",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(message))
        async with asyncio.timeout(5.0), self._acked:
            await self._acked.wait_for(
                lambda: any(a.get("envelope_id") == envelope_id for a in self.socket_acks)
            )

    # --- handlers -------------------------------------------------------------------

    async def _args(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read() if request.method == "POST" and request.can_read_body else b""
        return _arguments(request.query_string, request.content_type, raw)

    def answer(
        self, method: str, args: dict[str, Any], headers: Mapping[str, str]
    ) -> Failure | tuple[int, dict[str, str], dict[str, Any]]:
        """A Web API call's answer, whichever server received it: a scripted failure,
        or ``(status, headers, JSON body)``."""
        self.calls.append(Call(method, args, dict(headers)))
        failures = self._failures.get(method)
        if failures:
            return failures.pop(0)
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 200, {}, {"ok": False, "error": "not_authed"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        if method == "chat.postMessage" and self.channel_post_interval:
            channel, now = str(args.get("channel", "")), time.monotonic()
            wait = self._last_post.get(channel, -1e9) + self.channel_post_interval - now
            if wait > 0:
                self.rate_limited += 1
                retry_after = str(max(1, math.ceil(wait)))
                return 429, {"Retry-After": retry_after}, {"ok": False, "error": "ratelimited"}
            self._last_post[channel] = now
        return 200, {}, handler(args)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        args = await self._args(request)
        outcome = self.answer(request.match_info["method"], args, request.headers)
        if isinstance(outcome, Failure):
            return await self._fail(request, outcome)
        status, headers, data = outcome
        return _json(data, status=status, headers=headers)

    async def _fail(self, request: web.Request, failure: Failure) -> web.StreamResponse:
        if failure.hang:
            await self._release.wait()
        if failure.drop_connection or failure.hang:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        status, headers, content_type, body = failure.response()
        return web.Response(status=status, body=body, headers=headers, content_type=content_type)

    def _lean(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Any:
        """The lean server's handler: the Web API and ``/__state``."""
        path, _, query = target.partition("?")
        if path == "/__state":
            return 200, {"Content-Type": "application/json"}, orjson.dumps(self.state())
        if not path.startswith("/api/"):
            return 404, {"Content-Type": "text/plain"}, b"not found"
        content_type = headers.get("Content-Type", "").partition(";")[0].strip()
        args = _arguments(query, content_type, body)
        outcome = self.answer(path.removeprefix("/api/"), args, headers)
        if isinstance(outcome, Failure):
            if outcome.hang:
                return lean_http.HANG
            if outcome.drop_connection:
                return lean_http.DROP
            status, extra, content_type, raw = outcome.response()
            return status, {**extra, "Content-Type": content_type}, raw
        status, extra, data = outcome
        return status, {**extra, "Content-Type": "application/json"}, orjson.dumps(data)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self.socket_connected.set()
        async for message in socket:
            if message.type == web.WSMsgType.TEXT:
                async with self._acked:
                    self.socket_acks.append(json.loads(message.data))
                    self._acked.notify_all()
        return socket

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        arrived = time.perf_counter()
        async with self.response_arrived:
            self.responses[request.match_info["token"]].append(body)
            self.response_arrivals[request.match_info["token"]].append(arrived)
            self.response_arrived.notify_all()
        return web.Response(text="ok")

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(Call("webhook", body, dict(request.headers)))
        failures = self._failures.get("webhook")
        if failures:
            failure = failures.pop(0)
            if failure.drop_connection:
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(int(failure.retry_after))
            return web.Response(
                status=failure.status, text=failure.error or "error", headers=headers
            )
        self.webhook_posts.append(body)
        return web.Response(text="ok")

    # --- methods --------------------------------------------------------------------

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "paperboy",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": "BBOT",
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel in self.channels and self.channels[channel].get("is_archived"):
            return {"ok": False, "error": "is_archived"}
        if channel.startswith("U"):
            channel = "D" + channel[1:]  # posting to a user id lands in the app's DM
        elif channel not in self.channels and self.channels:
            return {"ok": False, "error": "channel_not_found"}
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {
            "type": "message",
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": blocks or [],
            "user": BOT_USER,
        }
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        if metadata:
            message["metadata"] = metadata
        self.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + user[1:]}}

    def _m_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        info = self.channels.get(channel)
        if info is None:
            return {"ok": False, "error": "channel_not_found"}
        if "channels:join" in self.missing_scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:join"}
        if info.get("is_private"):
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        if info.get("is_archived"):
            return {"ok": False, "error": "is_archived"}
        info["is_member"] = True
        return {"ok": True, "channel": {"id": channel, "is_member": True}}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if self.channels and channel not in self.channels and not channel.startswith("D"):
            return {"ok": False, "error": "channel_not_found"}
        if self.channels.get(channel, {}).get("is_member") is False:
            # Public channels take chat:write.public posts from non-members, but only
            # members may read them.
            return {"ok": False, "error": "not_in_channel"}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        top = [m for m in self.messages.get(channel, []) if "thread_ts" not in m]
        top = list(reversed(top))  # newest first, like Slack
        start = int(args.get("cursor") or 0)
        page = top[start : start + min(int(args.get("limit", 100)), self.history_page_size)]
        nxt = start + len(page)
        return {
            "ok": True,
            "messages": [self._strip(m, with_metadata) for m in page],
            "has_more": nxt < len(top),
            "response_metadata": {"next_cursor": str(nxt) if nxt < len(top) else ""},
        }

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        parent = str(args.get("ts", ""))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        thread = [
            m
            for m in self.messages.get(channel, [])
            if m["ts"] == parent or m.get("thread_ts") == parent
        ]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return {
            "ok": True,
            "messages": [self._strip(m, with_metadata) for m in thread],
            "has_more": False,
            "response_metadata": {"next_cursor": ""},
        }

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": channel}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _state(self, request: web.Request) -> web.Response:
        return _json(self.state())

    def state(self) -> dict[str, Any]:
        """What the fake holds, for a test or benchmark running it in another process
        (``GET /__state``; ``cpu_seconds``: this process's CPU time so far)."""
        return {
            "messages": self.messages,
            "rate_limited": self.rate_limited,
            "calls": len(self.calls),
            "cpu_seconds": time.process_time(),
        }

    @staticmethod
    def _strip(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        if with_metadata:
            return dict(message)
        return {k: v for k, v in message.items() if k != "metadata"}


async def _serve_forever(
    port_file: str, channel_post_interval: float | None, server: Literal["aiohttp", "lean"]
) -> None:
    async with FakeSlack(channel_post_interval=channel_post_interval, server=server) as fake:
        with open(port_file, "w") as out:  # noqa: ASYNC230 (once, at start-up)
            out.write(str(fake.port))
        await asyncio.Event().wait()


if __name__ == "__main__":  # python -m tests.fakes.slack PORT_FILE [INTERVAL [lean]]
    import sys

    interval = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    server = "lean" if sys.argv[3:4] == ["lean"] else "aiohttp"
    asyncio.run(_serve_forever(sys.argv[1], interval, server))

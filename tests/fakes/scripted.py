"""What the loopback fakes of paper sources share: an aiohttp server on 127.0.0.1 whose
answers can be scripted per path (errors, hangs, dropped connections) before it falls
back to its normal answer."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web


@dataclass
class ScriptedResponse:
    """A queued answer. ``body=None`` means the answer the fake would give normally."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    truncate: bool = False
    hang: bool = False
    drop: bool = False


class ScriptedServer:
    """Subclasses implement ``_handle`` and may widen ``_script_keys`` (wildcards)."""

    def __init__(self) -> None:
        self._scripts: dict[str, deque[ScriptedResponse]] = defaultdict(deque)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle ---
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        self._release.set()  # let hanging handlers finish
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    # --- scripting ---
    def queue(self, path: str, response: ScriptedResponse, *, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with ``response``."""
        for _ in range(times):
            self._scripts[path].append(response)

    def hang_next(self, path: str, *, times: int = 1) -> None:
        """Never answer (until the fake closes): the client must time out."""
        self.queue(path, ScriptedResponse(hang=True), times=times)

    def drop_next(self, path: str, *, times: int = 1) -> None:
        """Close the connection without answering."""
        self.queue(path, ScriptedResponse(drop=True), times=times)

    def _script_keys(self, path: str) -> list[str]:
        return [path, "*"]

    def _next_script(self, path: str) -> ScriptedResponse | None:
        for key in self._script_keys(path):
            if self._scripts.get(key):
                return self._scripts[key].popleft()
        return None

    async def _play(
        self, request: web.Request, script: ScriptedResponse | None
    ) -> web.StreamResponse | None:
        """The scripted answer when ``script`` hangs, drops or gives a body; else None
        (answer normally, then apply ``truncate``/``status``/``headers`` as needed)."""
        if script is None:
            return None
        if script.hang:
            await self._release.wait()
            return web.Response(status=503)
        if script.drop:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if script.body is not None:
            return web.Response(
                status=script.status,
                body=script.body,
                headers=script.headers,
                content_type=script.content_type,
            )
        return None

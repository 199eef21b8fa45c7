"""paperboy's ASGI server: ``/healthz`` plus whatever routes adapters contribute.

Kept free of any chat-platform import: adapters hand over Starlette routes (for example
Slack's ``/slack/events``) and this module mounts them. ``WebServer`` runs uvicorn inside
the already running asyncio loop (next to the scheduler and chat clients) and stops it
cleanly; it leaves signal handling to the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def create_app(routes: Sequence[BaseRoute] = (), *, health: HealthCheck | None = None) -> Starlette:
    """A Starlette app with ``GET /healthz`` and the given extra ``routes``.

    ``health`` may add details to the health answer; if it raises, ``/healthz`` answers 503.
    """

    async def healthz(request: Request) -> JSONResponse:
        body: dict[str, Any] = {"status": "ok"}
        if health is not None:
            try:
                body.update(await health())
            except Exception as exc:
                log.warning("health check failed: %s", exc)
                return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse(body)

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), *routes])


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal capture: the host application owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """Runs an ASGI app with uvicorn as a task of the running loop.

    ``await start()`` returns once the socket listens (``port`` then tells the bound port,
    useful with port 0); ``await stop()`` finishes in-flight requests and closes.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level.lower(),
            access_log=access_log,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port actually bound (after ``start``)."""
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    @property
    def url(self) -> str:
        return f"http://{self._server.config.host}:{self.port}"

    async def start(self) -> None:
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._serve(), name="paperboy-web")
        while not self._server.started:
            if self._task.done():
                # Bind failure and the like: surface uvicorn's error (or a clear one).
                self._task.result()
                raise RuntimeError(
                    f"HTTP server could not listen on "
                    f"{self._server.config.host}:{self._server.config.port}"
                )
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            raise OSError(
                f"HTTP server could not listen on "
                f"{self._server.config.host}:{self._server.config.port}"
            ) from exc

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        finally:
            self._task = None

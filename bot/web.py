"""paperboy's ASGI server: ``/healthz``, ``/readyz``, ``/metrics`` plus adapter routes.

Kept free of any chat-platform import: adapters hand over Starlette routes (for example
Slack's ``/slack/events``) and this module mounts them. ``WebServer`` runs uvicorn inside
the already running asyncio loop (next to the scheduler and chat clients) and stops it
cleanly; it leaves signal handling to the application.

* ``/healthz``: the process is alive (liveness probe; restart when it fails).
* ``/readyz``: the process can do its work (readiness probe; take it out of the load balancer
  when it fails). :func:`readiness` builds the ``ready`` callable from named checks.
* ``/metrics``: Prometheus text exposition of a :class:`bot.metrics.Metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.models import utcnow

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
# A named readiness check: returns None/True when fine, False or a message string when not,
# or raises (the exception text becomes the detail).
Check = Callable[[], Awaitable[bool | str | None]]


def create_app(
    routes: Sequence[BaseRoute] = (),
    *,
    health: HealthCheck | None = None,
    ready: ReadyCheck | None = None,
    metrics: Metrics | None = None,
) -> Starlette:
    """A Starlette app with ``GET /healthz``, ``/readyz``, ``/metrics`` and ``routes``.

    ``health`` may add details to the health answer; if it raises, ``/healthz`` answers 503.
    ``ready`` returns ``(ok, details)``: 200 when ok, else 503, the details as JSON (no
    ``ready``: ready whenever alive). ``/metrics`` exists only when ``metrics`` is given.
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

    async def readyz(request: Request) -> JSONResponse:
        if ready is None:
            return JSONResponse({"status": "ready"})
        try:
            ok, details = await ready()
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "not ready", "error": str(exc)}, status_code=503)
        body = {"status": "ready" if ok else "not ready", **details}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        assert metrics is not None
        await metrics.refresh()
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    own: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if metrics is not None:
        own.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return Starlette(routes=[*own, *routes])


def readiness(checks: Mapping[str, Check], *, timeout: float = 3.0) -> ReadyCheck:
    """Combine named checks into a ``ready`` callable for :func:`create_app`.

    The checks run concurrently, each bounded by ``timeout`` seconds; ready when all pass.
    The details map each name to ``{"ok": bool}`` plus ``"error"`` for a failing check.
    """

    async def run_one(check: Check) -> dict[str, Any]:
        try:
            outcome = await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return {"ok": False, "error": f"timed out after {timeout:g}s"}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if outcome is None or outcome is True:
            return {"ok": True}
        return {"ok": False, "error": outcome if isinstance(outcome, str) else "failed"}

    async def ready() -> tuple[bool, dict[str, Any]]:
        names = list(checks)
        results = await asyncio.gather(*(run_one(checks[name]) for name in names))
        details = dict(zip(names, results, strict=True))
        return all(r["ok"] for r in results), {"checks": details}

    return ready


def database_check(engine: Any) -> Check:
    """A check that runs ``SELECT 1`` on an SQLAlchemy ``AsyncEngine``."""
    from sqlalchemy import text

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def adapters_check(adapters: Sequence[Any]) -> Check:
    """A check that every chat adapter is connected.

    Reads an optional ``connected`` attribute (a bool, or a callable returning one); an
    adapter without it (console, webhook-only posting) counts as connected.
    """

    async def check() -> bool | str:
        down = []
        for adapter in adapters:
            state = getattr(adapter, "connected", True)
            if callable(state):
                state = state()
            if not state:
                down.append(str(getattr(adapter, "name", type(adapter).__name__)))
        return f"not connected: {', '.join(down)}" if down else True

    return check


def recent_poll_check(
    last_success: Callable[[], datetime | None],
    max_age: timedelta,
    *,
    now: Callable[[], datetime] = utcnow,
) -> Check:
    """A check that the last successful poll is at most ``max_age`` old.

    Before the first success the check fails; choose ``max_age`` of a few poll intervals so
    one failed poll (Hugging Face hiccup) does not take every replica out of rotation.
    """

    async def check() -> bool | str:
        last = last_success()
        if last is None:
            return "no successful poll yet"
        age = now() - last
        if age > max_age:
            return f"last successful poll {int(age.total_seconds())}s ago"
        return True

    return check


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

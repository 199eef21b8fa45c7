"""bot.web: /healthz, /readyz and /metrics through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.metrics import Metrics
from bot.web import adapters_check, create_app, database_check, readiness, recent_poll_check

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://paperboy") as http:
        return await http.get(path)


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'paperboy.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
async def unreachable_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    # SQLite cannot create a file in a directory that does not exist: a real connect error.
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'paperboy.db'}")
    yield engine
    await engine.dispose()


async def test_healthz_is_alive_without_any_checks() -> None:
    response = await get(create_app(), "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_without_checks_is_ready() -> None:
    response = await get(create_app(), "/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_readyz_is_ready_when_every_check_passes(sqlite_engine: AsyncEngine) -> None:
    ready = readiness(
        {
            "database": database_check(sqlite_engine),
            "poll": recent_poll_check(
                lambda: NOW - timedelta(minutes=5), timedelta(minutes=45), now=lambda: NOW
            ),
        }
    )
    response = await get(create_app(ready=ready), "/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": {"ok": True}, "poll": {"ok": True}},
    }


async def test_readyz_fails_with_details_when_the_database_is_down(
    sqlite_engine: AsyncEngine, unreachable_engine: AsyncEngine
) -> None:
    ready = readiness(
        {
            "database": database_check(unreachable_engine),
            "other": database_check(sqlite_engine),
        }
    )
    app = create_app(ready=ready)
    response = await get(app, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is False
    assert "unable to open database file" in body["checks"]["database"]["error"]
    assert body["checks"]["other"] == {"ok": True}
    # Liveness is independent of readiness: the process itself is fine.
    assert (await get(app, "/healthz")).status_code == 200


@pytest.mark.skipif(
    not os.environ.get("PAPERBOY_TEST_DATABASE_URL"), reason="PAPERBOY_TEST_DATABASE_URL unset"
)
async def test_readyz_against_postgresql_up_and_down() -> None:
    up = create_async_engine(os.environ["PAPERBOY_TEST_DATABASE_URL"])
    # Port 1 on loopback: nothing listens, the connection is refused.
    down = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    try:
        ok = await get(create_app(ready=readiness({"database": database_check(up)})), "/readyz")
        assert ok.status_code == 200
        app = create_app(ready=readiness({"database": database_check(down)}, timeout=5))
        failing = await get(app, "/readyz")
        assert failing.status_code == 503
        assert failing.json()["checks"]["database"]["ok"] is False
    finally:
        await up.dispose()
        await down.dispose()


async def test_readyz_fails_when_the_last_poll_is_stale_or_missing() -> None:
    last: dict[str, datetime | None] = {"at": None}
    check = recent_poll_check(lambda: last["at"], timedelta(minutes=45), now=lambda: NOW)
    app = create_app(ready=readiness({"poll": check}))

    missing = await get(app, "/readyz")
    assert missing.status_code == 503
    assert missing.json()["checks"]["poll"]["error"] == "no successful poll yet"

    last["at"] = NOW - timedelta(hours=2)
    stale = await get(app, "/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["poll"]["error"] == "last successful poll 7200s ago"

    last["at"] = NOW - timedelta(minutes=44)
    assert (await get(app, "/readyz")).status_code == 200


async def test_readyz_bounds_a_hanging_check_and_reports_false_checks() -> None:
    never = asyncio.Event()

    async def hangs() -> None:
        await never.wait()

    async def disconnected() -> bool:
        return False

    async def fine() -> bool:
        return True

    ready = readiness({"slow": hangs, "slack": disconnected, "db": fine}, timeout=0.05)
    response = await get(create_app(ready=ready), "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["slow"] == {"ok": False, "error": "timed out after 0.05s"}
    assert checks["slack"] == {"ok": False, "error": "failed"}
    assert checks["db"] == {"ok": True}


async def test_readyz_answers_503_when_the_ready_callable_itself_raises() -> None:
    async def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("store not opened")

    response = await get(create_app(ready=broken), "/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "error": "store not opened"}


async def test_metrics_endpoint_serves_prometheus_text_refreshed_per_scrape() -> None:
    metrics = Metrics()
    scrapes = {"n": 0}

    async def count_outbox(m: Metrics) -> None:
        scrapes["n"] += 1
        m.set_outbox({"pending": 10 * scrapes["n"], "unknown": 1})

    metrics.on_scrape(count_outbox)
    metrics.count_post("discord", "sent")
    metrics.observe_command("search", 0.12)
    app = create_app(metrics=metrics)

    response = await get(app, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'paperboy_posts_total{outcome="sent",platform="discord"} 1.0' in text
    assert 'paperboy_command_duration_seconds_count{subcommand="search"} 1.0' in text
    assert 'paperboy_deliveries{state="pending"} 10.0' in text
    assert 'paperboy_deliveries{state="unknown"} 1.0' in text
    assert "paperboy_scheduler_leader 0.0" in text

    again = await get(app, "/metrics")
    assert 'paperboy_deliveries{state="pending"} 20.0' in again.text


async def test_metrics_is_absent_without_a_metrics_object_and_extra_routes_stay_mounted() -> None:
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    app = create_app([Route("/ping", echo, methods=["GET"])])
    assert (await get(app, "/metrics")).status_code == 404
    assert (await get(app, "/ping")).text == "pong"


class FakeAdapter:
    def __init__(self, name: str, connected: object = None) -> None:
        self.name = name
        if connected is not None:
            self.connected = connected


async def test_readyz_reports_disconnected_adapters_by_name() -> None:
    slack = FakeAdapter("slack", connected=True)
    discord = FakeAdapter("discord", connected=lambda: False)
    console = FakeAdapter("console")  # no `connected`: always fine
    app = create_app(ready=readiness({"adapters": adapters_check([slack, discord, console])}))
    response = await get(app, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["adapters"]["error"] == "not connected: discord"
    discord.connected = lambda: True
    assert (await get(app, "/readyz")).status_code == 200


def test_a_replica_that_just_became_leader_gets_a_poll_interval_of_grace() -> None:
    from types import SimpleNamespace

    from bot.app import Paperboy

    became = NOW - timedelta(seconds=5)
    replica = SimpleNamespace(
        scheduler=SimpleNamespace(is_leader=True, led_since=became),
        poller=SimpleNamespace(last_success=None),
        _started_at=NOW - timedelta(hours=1),  # up as a follower for an hour
    )
    assert Paperboy._poll_reference(replica) == became  # type: ignore[arg-type]
    replica.poller.last_success = NOW - timedelta(hours=3)  # polled in an earlier leadership
    assert Paperboy._poll_reference(replica) == became  # type: ignore[arg-type]
    replica.poller.last_success = NOW - timedelta(seconds=1)
    assert Paperboy._poll_reference(replica) == NOW - timedelta(seconds=1)  # type: ignore[arg-type]

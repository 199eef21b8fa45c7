"""bot.web: /healthz, mounted adapter routes, uvicorn inside the running loop."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.web import WebServer, create_app


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await request.body())


async def test_server_serves_health_and_adapter_routes_then_stops() -> None:
    async def details() -> dict[str, object]:
        return {"adapters": ["slack"]}

    web = WebServer(create_app([Route("/x", echo, methods=["POST"])], health=details), port=0)
    await web.start()
    try:
        assert web.port > 0
        async with httpx.AsyncClient(base_url=web.url) as http:
            health = await http.get("/healthz")
            assert health.json() == {"status": "ok", "adapters": ["slack"]}
            assert (await http.post("/x", content=b"ping")).text == "ping"
            assert (await http.get("/nope")).status_code == 404
    finally:
        await web.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{web.port}/healthz")


async def test_failing_health_check_answers_503() -> None:
    async def broken() -> dict[str, object]:
        raise RuntimeError("database unreachable")

    transport = httpx.ASGITransport(app=create_app(health=broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "error": "database unreachable"}


async def test_port_in_use_is_an_error_not_an_exit() -> None:
    first = WebServer(create_app(), port=0)
    await first.start()
    try:
        second = WebServer(create_app(), port=first.port)
        with pytest.raises(OSError):
            await second.start()
    finally:
        await first.stop()

"""HTTP mode: real signed requests through bot.web (uvicorn on 127.0.0.1) into bolt."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from slack_sdk.signature import Clock

from adapters.slack import SlackAdapter
from adapters.slack.adapter import ERROR_TEXT
from adapters.slack.http_mode import acks_empty, events_route
from bot.models import CommandRequest, Destination, Reply
from bot.web import WebServer, create_app
from tests.adapters.slack.blockkit import assert_valid_message, card_links, reply_buttons
from tests.adapters.slack.conftest import CARDS, RecordingHandler
from tests.adapters.slack.signing import (
    SECRET,
    action_body,
    button_payload,
    command_body,
    command_payload,
    signed,
)
from tests.fakes.slack import FakeSlack


@pytest.fixture
async def server(fake_slack: FakeSlack, handler: RecordingHandler) -> AsyncIterator[WebServer]:
    fake_slack.users["U1"] = {"id": "U1", "is_admin": False}
    fake_slack.users["UADMIN"] = {"id": "UADMIN", "is_admin": True}
    fake_slack.channels["C1"] = {"id": "C1", "creator": "UCREATOR"}
    adapter = SlackAdapter(
        bot_token="xoxb-test", signing_secret=SECRET, mode="http", api_url=fake_slack.api_url
    )
    await adapter.start(handler)
    web = WebServer(create_app(adapter.web_routes()), host="127.0.0.1", port=0)
    await web.start()
    yield web
    await web.stop()
    await adapter.close()


@pytest.fixture
async def http(server: WebServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def send_command(http: httpx.AsyncClient, text: str, response_url: str, **fields: str):
    body = command_body(command_payload(text, response_url, **fields))
    return await http.post("/slack/events", content=body, headers=signed(body))


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_signed_command_is_acked_then_answered_ephemerally(http, fake_slack, handler):
    response = await send_command(http, "Search diffusion models", fake_slack.response_url("r1"))
    assert response.status_code == 200
    await fake_slack.wait_for_responses("r1", 1)
    assert handler.requests == [
        CommandRequest(
            subcommand="search",
            args="diffusion models",
            user="U1",
            destination=Destination("slack", "T1", "C1"),
            can_manage_channel=False,
            user_name="ada",
        )
    ]
    [answer] = fake_slack.responses["r1"]
    assert answer["response_type"] == "ephemeral"
    assert answer["replace_original"] is False
    assert answer["unfurl_links"] is False
    assert_valid_message(answer)
    assert card_links(answer) == [c.url for c in CARDS[:3]]
    assert [e["value"] for e in reply_buttons(answer)] == [
        "search diffusion models --page 2",
        "search diffusion models",
    ]


@pytest.mark.parametrize(
    ("fields", "can_manage", "destination"),
    [
        ({"user_id": "UADMIN"}, True, Destination("slack", "T1", "C1")),
        ({"user_id": "UCREATOR"}, True, Destination("slack", "T1", "C1")),
        (
            {"channel_id": "D5", "channel_name": "directmessage"},
            True,
            Destination("slack", "T1", "U1", is_dm=True),
        ),
    ],
)
async def test_who_may_manage_the_channel(
    http, fake_slack, handler, fields, can_manage, destination
):
    await send_command(http, "subscribe", fake_slack.response_url("r1"), **fields)
    await fake_slack.wait_for_responses("r1", 1)
    [request] = handler.requests
    assert (request.can_manage_channel, request.destination) == (can_manage, destination)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: signed(body, secret="forged"), id="forged-signature"),
        pytest.param(lambda body: signed(body, timestamp=time.time() - 301), id="stale-timestamp"),
        pytest.param(lambda body: {"Content-Type": "application/x-www-form-urlencoded"}, id="none"),
        pytest.param(
            lambda body: {k: v for k, v in signed(body).items() if k != "X-Slack-Signature"},
            id="no-signature",
        ),
    ],
)
async def test_unverified_requests_get_401_and_run_nothing(http, fake_slack, handler, headers):
    body = command_body(command_payload("search evil", fake_slack.response_url("bad")))
    response = await http.post("/slack/events", content=body, headers=headers(body))
    assert response.status_code == 401
    # A valid request afterwards is the only one that reaches the handler.
    await send_command(http, "today", fake_slack.response_url("good"))
    await fake_slack.wait_for_responses("good", 1)
    assert [r.subcommand for r in handler.requests] == ["today"]
    assert fake_slack.responses["bad"] == []


async def test_share_button_reposts_visibly_with_who_shared(http, fake_slack, handler):
    body = action_body(
        button_payload("papers_share_1", "search diffusion", fake_slack.response_url("r2"))
    )
    response = await http.post("/slack/events", content=body, headers=signed(body))
    assert response.status_code == 200
    await fake_slack.wait_for_responses("r2", 1)
    [request] = handler.requests
    assert (request.subcommand, request.args, request.user) == ("search", "diffusion", "U1")
    [shared] = fake_slack.responses["r2"]
    assert shared["response_type"] == "in_channel"
    assert_valid_message(shared)
    assert shared["blocks"][-1]["elements"][0]["text"] == "Shared by <@U1>"
    values = [e["value"] for e in reply_buttons(shared)]
    assert values == ["search diffusion --page 2"]  # no share button on a shared message


async def test_more_button_replaces_the_ephemeral_page(http, fake_slack, handler):
    payload = button_payload(
        "papers_run_0", "search diffusion --page 2", fake_slack.response_url("r3")
    )
    body = action_body(payload)
    assert (await http.post("/slack/events", content=body, headers=signed(body))).status_code == 200
    await fake_slack.wait_for_responses("r3", 1)
    assert handler.requests[0].args == "diffusion --page 2"
    [page] = fake_slack.responses["r3"]
    assert (page["response_type"], page["replace_original"]) == ("ephemeral", True)


async def test_a_card_s_similar_button_answers_beside_the_list(http, fake_slack, handler):
    payload = button_payload(
        "papers_run_card1_0", "similar 2401.00002", fake_slack.response_url("r5")
    )
    body = action_body(payload)
    assert (await http.post("/slack/events", content=body, headers=signed(body))).status_code == 200
    await fake_slack.wait_for_responses("r5", 1)
    assert (handler.requests[0].subcommand, handler.requests[0].args) == ("similar", "2401.00002")
    [answer] = fake_slack.responses["r5"]
    assert (answer["response_type"], answer["replace_original"]) == ("ephemeral", False)


async def test_a_failing_handler_answers_a_short_apology(fake_slack):
    async def broken(request: CommandRequest) -> Reply:
        raise RuntimeError("boom")

    adapter = SlackAdapter(
        bot_token="xoxb-test", signing_secret=SECRET, mode="http", api_url=fake_slack.api_url
    )
    await adapter.start(broken)
    transport = httpx.ASGITransport(app=create_app(adapter.web_routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await send_command(http, "search x", fake_slack.response_url("r4"))
        assert response.status_code == 200
        await fake_slack.wait_for_responses("r4", 1)
    [answer] = fake_slack.responses["r4"]
    assert ERROR_TEXT in answer["blocks"][0]["text"]["text"]


async def test_requests_before_start_are_refused(fake_slack) -> None:
    adapter = SlackAdapter(
        bot_token="xoxb-test", signing_secret=SECRET, mode="http", api_url=fake_slack.api_url
    )
    transport = httpx.ASGITransport(app=create_app(adapter.web_routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await send_command(http, "today", fake_slack.response_url("r5"))
    assert response.status_code == 503


def test_only_commands_and_button_presses_are_acked_early() -> None:
    assert acks_empty(command_body(command_payload("today", "u")).encode())
    assert acks_empty(action_body(button_payload("papers_run_0", "today", "u")).encode())
    view = action_body({"type": "view_submission", "view": {}})
    assert not acks_empty(view.encode())
    assert not acks_empty(b"ssl_check=1&token=x")
    assert not acks_empty(b"payload=not-json")
    assert not acks_empty(b'{"type": "url_verification"}')
    assert not acks_empty(b"\xff\xfe")


async def test_other_slack_requests_are_left_to_bolt(http, handler) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    headers = signed(challenge) | {"Content-Type": "application/json"}
    response = await http.post("/slack/events", content=challenge, headers=headers)
    assert (response.status_code, response.json()) == (200, {"challenge": "c-123"})
    ssl_check = "ssl_check=1&token=t"
    response = await http.post("/slack/events", content=ssl_check, headers=signed(ssl_check))
    assert response.status_code == 200
    assert handler.requests == []


async def test_the_ack_does_not_wait_for_the_answer(fake_slack) -> None:
    release = asyncio.Event()
    seen: list[CommandRequest] = []

    async def slow(request: CommandRequest) -> Reply:
        seen.append(request)
        await release.wait()
        return Reply(text="done")

    adapter = SlackAdapter(
        bot_token="xoxb-test", signing_secret=SECRET, mode="http", api_url=fake_slack.api_url
    )
    await adapter.start(slow)
    transport = httpx.ASGITransport(app=create_app(adapter.web_routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        async with asyncio.timeout(5):  # a hang here means the ack waited for the command
            response = await send_command(client, "search slow", fake_slack.response_url("r6"))
        assert response.status_code == 200  # acked while the command is still running
        assert fake_slack.responses["r6"] == []
        release.set()
        await fake_slack.wait_for_responses("r6", 1)
    await adapter.close()
    assert [r.args for r in seen] == ["slow"]


async def test_a_command_acked_early_is_answered_even_after_waiting_5_minutes(
    fake_slack, handler, monkeypatch
) -> None:
    # Slack signatures are good for 5 minutes, and bolt checks again when the command
    # finally runs: one that waited longer for a free slot must still be answered.
    adapter = SlackAdapter(
        bot_token="xoxb-test", signing_secret=SECRET, mode="http", api_url=fake_slack.api_url
    )
    await adapter.start(handler)
    later: list = []  # dispatches held back, as behind a queue of slow commands
    route = events_route(adapter.app, SECRET, ready=lambda: True, spawn=later.append)
    transport = httpx.ASGITransport(app=create_app([route]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await send_command(client, "search late", fake_slack.response_url("r9"))
    assert response.status_code == 200 and len(later) == 1  # acked, not yet dispatched

    arrived = time.time()
    monkeypatch.setattr(Clock, "now", lambda self: arrived + 400)  # 6 min 40 s later
    await later[0]
    await fake_slack.wait_for_responses("r9", 1)
    await adapter.close()
    assert [r.args for r in handler.requests] == ["late"]

"""Socket Mode at the dispatch level: envelopes in, acks and respond() out."""

from __future__ import annotations

import logging

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from adapters.slack import SlackAdapter
from bot.models import Destination
from tests.adapters.slack.blockkit import assert_valid_message
from tests.adapters.slack.conftest import RecordingHandler
from tests.adapters.slack.signing import button_payload, command_payload
from tests.fakes.slack import FakeSlack


class RecordingSocketClient:
    """What bolt's Socket Mode handler needs from the WebSocket client: acks go here."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("test.socket")
        self.sent: list[SocketModeResponse] = []

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.sent.append(response)


@pytest.fixture
async def adapter(fake_slack: FakeSlack, handler: RecordingHandler, monkeypatch):
    connects: list[str] = []

    async def fake_connect(self: AsyncSocketModeHandler) -> None:
        connects.append(self.app_token)

    monkeypatch.setattr(AsyncSocketModeHandler, "connect_async", fake_connect)
    fake_slack.users["U1"] = {"id": "U1", "is_owner": True}
    adapter = SlackAdapter(bot_token="xoxb-test", app_token="xapp-1", api_url=fake_slack.api_url)
    await adapter.start(handler)
    assert connects == ["xapp-1"]
    yield adapter
    await adapter.close()


async def test_slash_command_envelope_is_acked_and_answered(adapter, fake_slack, handler):
    client = RecordingSocketClient()
    envelope = SocketModeRequest(
        type="slash_commands",
        envelope_id="env-1",
        payload=command_payload("top week", fake_slack.response_url("s1")),
    )
    await adapter._socket_handler.handle(client, envelope)
    assert [r.envelope_id for r in client.sent] == ["env-1"]
    assert client.sent[0].payload is None  # empty ack: the answer comes via respond()
    await fake_slack.wait_for_responses("s1", 1)
    [request] = handler.requests
    assert (request.subcommand, request.args) == ("top", "week")
    assert request.destination == Destination("slack", "T1", "C1")
    assert request.can_manage_channel is True  # workspace owner
    [answer] = fake_slack.responses["s1"]
    assert answer["response_type"] == "ephemeral"
    assert_valid_message(answer)


async def test_button_envelope_runs_the_command_line(adapter, fake_slack, handler):
    client = RecordingSocketClient()
    envelope = SocketModeRequest(
        type="interactive",
        envelope_id="env-2",
        payload=button_payload("papers_run_0", "paper 2401.01234", fake_slack.response_url("s2")),
    )
    await adapter._socket_handler.handle(client, envelope)
    assert [r.envelope_id for r in client.sent] == ["env-2"]
    await fake_slack.wait_for_responses("s2", 1)
    assert [(r.subcommand, r.args) for r in handler.requests] == [("paper", "2401.01234")]


def test_configuration_errors_are_explicit() -> None:
    with pytest.raises(ValueError, match="APP_TOKEN"):
        SlackAdapter(bot_token="xoxb-1", mode="socket")
    with pytest.raises(ValueError, match="SIGNING_SECRET"):
        SlackAdapter(bot_token="xoxb-1", mode="http")
    with pytest.raises(ValueError, match="bot token"):
        SlackAdapter()


async def test_start_connects_over_a_real_websocket_and_acks_envelopes(fake_slack, handler):
    adapter = SlackAdapter(bot_token="xoxb-test", app_token="xapp-9", api_url=fake_slack.api_url)
    await adapter.start(handler)
    try:
        [opened] = fake_slack.calls_of("apps.connections.open")
        assert opened.headers["Authorization"] == "Bearer xapp-9"
        payload = command_payload("search mamba", fake_slack.response_url("ws1"))
        await fake_slack.send_envelope("slash_commands", "env-ws", payload)
        await fake_slack.wait_for_responses("ws1", 1)
    finally:
        await adapter.close()
    assert [a["envelope_id"] for a in fake_slack.socket_acks] == ["env-ws"]
    assert [(r.subcommand, r.args) for r in handler.requests] == [("search", "mamba")]

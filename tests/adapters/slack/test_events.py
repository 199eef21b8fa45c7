"""Payload translation and the channel-management policy."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import action_to_press, command_to_request
from adapters.slack.permissions import ChannelPermissions
from bot.models import Destination
from tests.adapters.slack.conftest import FakeClock
from tests.adapters.slack.signing import button_payload, command_payload
from tests.fakes.slack import FakeSlack


def test_bare_command_is_the_empty_subcommand() -> None:
    request = command_to_request(command_payload("", "u"), can_manage_channel=False)
    assert (request.subcommand, request.args) == ("", "")


def test_arguments_are_kept_untouched() -> None:
    text = 'SEARCH "state space" -survey --since 7d'
    request = command_to_request(command_payload(text, "u"), can_manage_channel=True)
    assert request.subcommand == "search"
    assert request.args == '"state space" -survey --since 7d'
    assert request.can_manage_channel is True


def test_direct_messages_target_the_user() -> None:
    payload = command_payload("today", "u", channel_id="D42", channel_name="directmessage")
    request = command_to_request(payload, can_manage_channel=True)
    assert request.destination == Destination("slack", "T1", "U1", is_dm=True)
    group_dm = command_payload("today", "u", channel_id="G9", channel_name="mpdm-a--b-1")
    assert command_to_request(group_dm, can_manage_channel=False).destination == Destination(
        "slack", "T1", "G9"
    )


def test_button_press_translation() -> None:
    press = action_to_press(
        button_payload("papers_share_3", "top week", "u", ephemeral=False),
        can_manage_channel=False,
    )
    assert press is not None
    assert (press.share, press.replaces_message) == (True, False)
    assert (press.request.subcommand, press.request.args) == ("top", "week")
    assert press.request.destination == Destination("slack", "T1", "C1")
    assert action_to_press({"actions": []}, can_manage_channel=False) is None


async def test_permissions_policy_and_cache(fake_slack: FakeSlack) -> None:
    fake_slack.users.update(
        {
            "UADMIN": {"id": "UADMIN", "is_admin": True},
            "UOWNER": {"id": "UOWNER", "is_primary_owner": True},
            "UMEMBER": {"id": "UMEMBER"},
        }
    )
    fake_slack.channels["C1"] = {"id": "C1", "creator": "UMEMBER"}
    fake_slack.channels["C2"] = {"id": "C2", "creator": "USOMEONE"}
    clock = FakeClock()
    client = AsyncWebClient(token="xoxb-t", base_url=fake_slack.api_url)
    permissions = ChannelPermissions(client, ttl=60, clock=clock)

    assert await permissions.can_manage("T1", "C2", "UADMIN", is_dm=False)
    assert await permissions.can_manage("T1", "C2", "UOWNER", is_dm=False)
    assert await permissions.can_manage("T1", "C1", "UMEMBER", is_dm=False)  # creator
    assert not await permissions.can_manage("T1", "C2", "UMEMBER", is_dm=False)
    assert await permissions.can_manage("T1", "D1", "UNOBODY", is_dm=True)
    calls = len(fake_slack.calls)

    assert not await permissions.can_manage("T1", "C2", "UMEMBER", is_dm=False)
    assert len(fake_slack.calls) == calls  # cached
    await clock.sleep(61)
    fake_slack.users["UMEMBER"]["is_admin"] = True  # promoted meanwhile
    assert await permissions.can_manage("T1", "C2", "UMEMBER", is_dm=False)


async def test_permissions_fail_closed_and_do_not_cache_failures(fake_slack: FakeSlack) -> None:
    fake_slack.users["UADMIN"] = {"id": "UADMIN", "is_admin": True}
    fake_slack.channels["C1"] = {"id": "C1", "creator": "UX"}
    client = AsyncWebClient(token="xoxb-t", base_url=fake_slack.api_url)
    permissions = ChannelPermissions(client, clock=FakeClock())
    fake_slack.fail_next("users.info", status=500)
    assert not await permissions.can_manage("T1", "C1", "UADMIN", is_dm=False)
    assert await permissions.can_manage("T1", "C1", "UADMIN", is_dm=False)

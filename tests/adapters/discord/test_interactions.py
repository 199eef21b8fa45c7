"""Slash commands and buttons, driven through discord.py's real interaction dispatch.

Interactions are fed to the client as the gateway would (``parse_interaction_create``);
discord.py's answers go over HTTP to the fake, where the tests read them.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.buttons import ButtonAction, decode_custom_id
from bot.models import Button, CommandRequest, Destination, Reply, ReplyKind
from tests.adapters.discord.conftest import StubCore, digest
from tests.adapters.discord.payloads import EPHEMERAL, autocomplete, press, slash
from tests.fakes.discord import APPLICATION_ID, FakeDiscord, RecordedRequest


async def dispatch(
    adapter: DiscordAdapter, fake: FakeDiscord, payload: dict[str, Any]
) -> RecordedRequest:
    """Feed the interaction to discord.py and return its first response (the callback)."""
    adapter.client._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    [callback] = await fake.wait_for(lambda r: r.path == path)
    return callback


@pytest.fixture
async def core(adapter: DiscordAdapter) -> StubCore:
    stub = StubCore()
    await adapter.start(stub.handle)  # logs in over REST; no gateway in tests
    return stub


async def test_search_builds_the_request_and_answers_ephemerally(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    options = {"query": "diffusion video", "since": "7d", "min_upvotes": 5}
    callback = await dispatch(adapter, fake_discord, slash("search", options))

    assert core.requests == [
        CommandRequest(
            subcommand="search",
            args="diffusion video --since 7d --min-upvotes 5",
            user="31337",
            destination=Destination("discord", "100", "555"),
            can_manage_channel=False,
            user_name="Ada",
        )
    ]
    assert callback.json["type"] == 4  # CHANNEL_MESSAGE_WITH_SOURCE, no defer needed
    data = callback.json["data"]
    assert data["flags"] & EPHEMERAL
    assert len(data["embeds"]) == 3
    assert data["allowed_mentions"]["parse"] == []
    buttons = [b for row in data["components"] for b in row["components"]]
    decoded = [decode_custom_id(b["custom_id"]) for b in buttons]
    assert [(d.action, d.command) for d in decoded if d] == [
        *((ButtonAction.RUN, f"similar {card.paper_id}") for card in core.reply.cards),
        (ButtonAction.SHARE, "search diffusion --page 1"),
        (ButtonAction.RUN, "search diffusion --page 2"),
    ]
    assert buttons[0]["label"].startswith("Similar: ")


MANAGE_CHANNELS = 1 << 4
ADMINISTRATOR = 1 << 3


@pytest.mark.parametrize(
    ("perms", "allowed"),
    [(0, False), (1 << 11, False), (MANAGE_CHANNELS, True), (ADMINISTRATOR, True)],
)
async def test_subscribe_carries_the_manage_channels_permission(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore, perms: int, allowed: bool
) -> None:
    options = {"at": "08:30", "timezone": "Europe/Berlin", "top": 5, "topic": "diffusion -survey"}
    await dispatch(adapter, fake_discord, slash("subscribe", options, perms=perms))

    [request] = core.requests
    assert request.subcommand == "subscribe"
    assert request.args == "at 08:30 tz Europe/Berlin top 5 topic diffusion -survey"
    assert request.can_manage_channel is allowed


async def test_direct_messages_address_the_user(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    await dispatch(adapter, fake_discord, slash("watch", {"query": "mamba"}, dm=True))

    [request] = core.requests
    assert request.destination == Destination("discord", "", "31337", is_dm=True)
    assert request.can_manage_channel is True  # a user manages their own DMs
    assert request.args == "mamba"


async def test_a_slow_answer_is_deferred_then_delivered(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    core.reply = Reply(title="Today", cards=digest(14).cards)  # needs two messages
    core.gate.clear()
    adapter.responder.defer_after = 0.0
    payload = slash("today")

    callback = await dispatch(adapter, fake_discord, payload)

    assert callback.json["type"] == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: "thinking…"
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert not fake_discord.calls("PATCH", r"/webhooks/.*")  # nothing before the core answers
    core.gate.set()
    token = payload["token"]
    [edit] = await fake_discord.wait_for(
        lambda r: (
            r.method == "PATCH"
            and r.path == f"/webhooks/{APPLICATION_ID}/{token}/messages/@original"
        )
    )
    followups = await fake_discord.wait_for(
        lambda r: r.method == "POST" and r.path == f"/webhooks/{APPLICATION_ID}/{token}"
    )
    embeds = len(edit.json["embeds"]) + sum(len(f.json["embeds"]) for f in followups)
    assert embeds == 14
    assert all(f.json["flags"] & EPHEMERAL for f in followups)


async def test_a_failing_core_gets_a_short_apology(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    async def broken(request: CommandRequest) -> Reply:
        raise RuntimeError("database is on fire")

    adapter.responder.handle = broken
    callback = await dispatch(adapter, fake_discord, slash("today"))

    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "something went wrong" in callback.json["data"]["content"]
    assert "fire" not in callback.json["data"]["content"]


async def test_share_button_reruns_the_command_for_everyone(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    callback = await dispatch(
        adapter, fake_discord, press(Button("Share in channel", "paper 2401.01234", share=True))
    )

    [request] = core.requests
    assert (request.subcommand, request.args, request.user) == ("paper", "2401.01234", "31337")
    assert callback.json["type"] == 4
    assert not (callback.json["data"].get("flags", 0) & EPHEMERAL)  # visible in the channel
    labels = [b["label"] for row in callback.json["data"]["components"] for b in row["components"]]
    assert labels[-1] == "More" and "Share in channel" not in labels  # shared already
    assert all(label.startswith("Similar: ") for label in labels[:-1])


async def test_more_button_replaces_the_ephemeral_page(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    callback = await dispatch(
        adapter, fake_discord, press(Button("More", "search diffusion --page 2"))
    )

    [request] = core.requests
    assert (request.subcommand, request.args) == ("search", "diffusion --page 2")
    assert callback.json["type"] == 7  # UPDATE_MESSAGE: page 2 replaces page 1
    assert len(callback.json["data"]["embeds"]) == 3


async def test_more_button_on_a_public_digest_answers_privately(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    callback = await dispatch(
        adapter, fake_discord, press(Button("More", "today --page 2"), on_ephemeral=False)
    )

    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] & EPHEMERAL


async def test_copy_button_reposts_the_message_without_rerunning(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    long_command = "search " + " ".join(f"w{i * 7919 % 10007}" for i in range(60))
    embed = {"title": "A paper", "url": "https://huggingface.co/papers/1", "type": "rich"}
    button = Button("Share in channel", long_command, share=True)

    callback = await dispatch(adapter, fake_discord, press(button, embeds=[embed]))

    assert core.requests == []
    assert callback.json["type"] == 4
    assert not (callback.json["data"].get("flags", 0) & EPHEMERAL)
    assert callback.json["data"]["embeds"][0]["title"] == "A paper"


async def test_public_reply_after_a_private_defer_is_posted_for_everyone(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    core.reply = Reply(text="This channel now gets the digest at 08:30.", ephemeral=False)
    core.gate.clear()
    adapter.responder.defer_after = 0.0
    payload = slash("subscribe", {"at": "08:30"}, perms=MANAGE_CHANNELS)

    await dispatch(adapter, fake_discord, payload)
    core.gate.set()
    [followup] = await fake_discord.wait_for(
        lambda r: r.method == "POST" and r.path.startswith(f"/webhooks/{APPLICATION_ID}/")
    )

    assert not (followup.json.get("flags", 0) & EPHEMERAL)
    assert "08:30" in followup.json["content"]


async def test_timezone_autocomplete(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    callback = await dispatch(adapter, fake_discord, autocomplete("subscribe", "timezone", "berl"))

    assert callback.json["type"] == 8
    choices = [c["value"] for c in callback.json["data"]["choices"]]
    assert choices[0] == "Europe/Berlin" and len(choices) <= 25


async def test_unwatch_autocomplete_asks_the_core(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    asked: list[CommandRequest] = []

    async def suggest(request: CommandRequest) -> list[tuple[str, str]]:
        asked.append(request)
        return [("#3 mamba OR ssm", "3"), ("#7 diffusion", "7")]

    adapter.watch_suggester = suggest
    callback = await dispatch(adapter, fake_discord, autocomplete("unwatch", "watch", "mam"))

    assert [(r.subcommand, r.args, r.user) for r in asked] == [("watches", "mam", "31337")]
    assert callback.json["data"]["choices"] == [
        {"name": "#3 mamba OR ssm", "value": "3"},
        {"name": "#7 diffusion", "value": "7"},
    ]


@pytest.mark.parametrize(
    ("sub", "options", "args"),
    [
        ("help", {}, ""),
        ("today", {}, ""),
        ("top", {}, "day"),
        ("top", {"period": "week"}, "week"),
        ("search", {"query": "x", "page": 2}, "x --page 2"),
        ("paper", {"paper": "https://arxiv.org/abs/2401.01234v2"}, "https://arxiv.org/abs/2401.01234v2"),
        ("subscribe", {"days": "daily", "format": "compact", "min_upvotes": 3, "empty": "post"},
         "daily min-upvotes 3 format compact empty post"),
        ("subscription", {}, ""),
        ("unsubscribe", {}, ""),
        ("watch", {"query": '"state space" OR mamba', "here": True}, '"state space" OR mamba here'),
        ("watches", {}, ""),
        ("unwatch", {"watch": "3"}, "3"),
    ],
)  # fmt: skip
async def test_every_subcommand_becomes_the_core_command_line(
    adapter: DiscordAdapter,
    fake_discord: FakeDiscord,
    core: StubCore,
    sub: str,
    options: dict[str, Any],
    args: str,
) -> None:
    await dispatch(adapter, fake_discord, slash(sub, options))

    assert [(r.subcommand, r.args) for r in core.requests] == [(sub, args)]


async def test_a_slow_share_that_fails_answers_only_the_presser(
    adapter: DiscordAdapter, fake_discord: FakeDiscord, core: StubCore
) -> None:
    core.reply = Reply(text="No paper 2401.99999 here.", kind=ReplyKind.ERROR)
    core.gate.clear()
    adapter.responder.defer_after = 0.0
    payload = press(Button("Share in channel", "paper 2401.99999", share=True))

    callback = await dispatch(adapter, fake_discord, payload)
    core.gate.set()
    token = payload["token"]
    [followup] = await fake_discord.wait_for(
        lambda r: r.method == "POST" and r.path == f"/webhooks/{APPLICATION_ID}/{token}"
    )

    assert callback.json["type"] == 5 and not callback.json.get("data", {}).get("flags", 0)
    assert fake_discord.calls("DELETE", rf"/webhooks/{APPLICATION_ID}/{token}/messages/@original")
    assert followup.json["flags"] & EPHEMERAL
    assert "2401.99999" in followup.json["content"]

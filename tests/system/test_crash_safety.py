"""Crash safety of the digest fan-out: SIGKILL the real process at random points.

The bot runs as a subprocess (``paperboy run``) against the fake Slack and Discord
servers of this test process; every channel's digest time has just passed, so the bot
catches it up on start. The fakes kill it at a random message: either before they record
it (the message is lost) or after (the message exists, but the bot never hears so). Each
restart must carry on with the same digests, and in the end every channel holds each
selected paper exactly once: no loss, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.models import Author, Destination, DigestDays, DigestFormat, Paper, Subscription
from bot.store import Database, PaperStore
from bot.store.subscriptions import SubscriptionStore
from tests.fakes.discord import TOKEN as DISCORD_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack

SLACK_CHANNELS = [f"C{i:04d}" for i in range(12)]
DISCORD_CHANNELS = [str(200000000000000000 + i) for i in range(6)]
GUILD = "100000000000000000"
TRIALS = 8
PAPER_URL = re.compile(r"huggingface\.co/papers/(\d{4}\.\d{5})")


def _papers(now: datetime) -> list[Paper]:
    return [
        Paper(
            id=f"2611.{40000 + i:05d}",
            title=f"Crash-safe Paper {i}",
            abstract=f"Abstract {i}.",
            authors=(Author("Ada Lovelace"),),
            submitted_at=now - timedelta(hours=3, minutes=i),
            published_at=now - timedelta(days=1),
            upvotes=100 - i,
            sources=("huggingface",),
        )
        for i in range(8)
    ]


async def _prepare(data_dir: Path) -> dict[Destination, list[str]]:
    """Papers and subscriptions in the bot's SQLite database; returns what each gets."""
    now = datetime.now(UTC)
    db = await Database.connect(f"sqlite+aiosqlite:///{data_dir / 'paperboy.db'}")
    await db.upgrade()
    papers = _papers(now)
    await PaperStore(db).upsert(papers)
    subs = SubscriptionStore(db, clock=lambda: now - timedelta(days=1))  # subscribed yesterday
    expected = {}
    destinations = [Destination("slack", "T1", c) for c in SLACK_CHANNELS] + [
        Destination("discord", GUILD, c) for c in DISCORD_CHANNELS
    ]
    just_passed = (now - timedelta(minutes=10)).strftime("%H:%M")
    for n, dest in enumerate(destinations):
        top = 5 if n % 4 == 0 else 3  # some digests are threads/several messages
        await subs.save(
            Subscription(
                destination=dest,
                at=just_passed,
                days=DigestDays.DAILY,
                top=top,
                format=DigestFormat.COMPACT,
            )
        )
        expected[dest] = [p.id for p in papers[:top]]
    await db.close()
    return expected


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(data_dir: Path, slack: FakeSlack, discord: FakeDiscord, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATA_DIR=str(data_dir),
        PAPERBOY_ADAPTERS="slack,discord",
        PAPERBOY_SLACK_BOT_TOKEN="xoxb-test",
        PAPERBOY_SLACK_MODE="http",
        PAPERBOY_SLACK_SIGNING_SECRET="test-secret",
        PAPERBOY_SLACK_API_URL=slack.api_url,
        PAPERBOY_DISCORD_TOKEN=DISCORD_TOKEN,
        PAPERBOY_DISCORD_API_URL=discord.api_url,
        PAPERBOY_HF_API_URL="http://127.0.0.1:9",
        PAPERBOY_REMOTE_SEARCH="false",
        PAPERBOY_SEMANTIC_SEARCH="false",
        PAPERBOY_LOG_LEVEL=os.environ.get("CRASH_LOG", "WARNING"),
        PAPERBOY_HTTP_PORT=str(port),
    )
    return env


class KillSwitch:
    """Signals the bot at the n-th message it posts, before or after the fake records it."""

    def __init__(self, sig: signal.Signals) -> None:
        self.sig = sig
        self.process: asyncio.subprocess.Process | None = None
        self.countdown: int | None = None
        self.after_recording = False
        self.kills = 0

    def arm(self, process: asyncio.subprocess.Process, at: int, after_recording: bool) -> None:
        self.process, self.countdown, self.after_recording = process, at, after_recording

    def wrap(self, post):
        def guarded(*args, **kwargs):
            if self.countdown is not None:
                self.countdown -= 1
                if self.countdown <= 0:
                    self.countdown = None
                    result = post(*args, **kwargs) if self.after_recording else None
                    assert self.process is not None
                    os.kill(self.process.pid, self.sig)
                    self.kills += 1
                    if result is not None:
                        return result
            return post(*args, **kwargs)

        return guarded


async def _run_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


def _slack_papers(fake: FakeSlack, channel: str) -> tuple[Counter, Counter, int]:
    """Papers in top-level messages, papers in thread replies, number of digest headers."""
    top, threads, headers = Counter(), Counter(), 0
    for message in fake.messages.get(channel, []):
        ids = set(PAPER_URL.findall(json.dumps(message.get("blocks", []))))
        if "thread_ts" in message:
            threads.update(ids)
        else:
            top.update(ids)
            key = (message.get("metadata") or {}).get("event_payload", {}).get("key", "")
            headers += str(key).startswith("digest:")
    return top, threads, headers


def _debug(fake: FakeSlack, channel: str) -> list:
    return [
        (m["ts"], m.get("thread_ts"), (m.get("metadata") or {}).get("event_payload"))
        for m in fake.messages.get(channel, [])
    ]


def _discord_papers(fake: FakeDiscord, channel: str) -> Counter:
    found: Counter = Counter()
    for message in fake.messages.get(channel, []):
        for embed in message.get("embeds", []):
            found.update(PAPER_URL.findall(embed.get("url", "")))
    return found


def _delivered(expected, slack: FakeSlack, discord: FakeDiscord) -> bool:
    for dest, papers in expected.items():
        if dest.platform == "slack":
            top, threads, _ = _slack_papers(slack, dest.channel)
            if set(top) != set(papers) or (len(papers) > 3 and set(threads) != set(papers)):
                return False
        elif set(_discord_papers(discord, dest.channel)) != set(papers):
            return False
    return True


async def _until_healthy(port: int) -> None:
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)


async def _until(condition) -> None:
    """Wait for a condition observed from outside the bot (its process or the fakes)."""
    while not condition():  # noqa: ASYNC110 (the bot is another process: nothing to await)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_stopping_during_fan_out_never_loses_or_duplicates(tmp_path, sig):
    """SIGKILL: a crash. SIGTERM: a rolling restart (graceful stop, then a new process)."""
    rng = random.Random(int(os.environ.get("PAPERBOY_CRASH_SEED", "20261121")))
    expected = await _prepare(tmp_path)
    switch = KillSwitch(sig)
    runs = []
    async with FakeSlack() as slack, FakeDiscord() as discord:
        slack._m_chat_postMessage = switch.wrap(slack._m_chat_postMessage)
        discord._create_message = switch.wrap(discord._create_message)
        port = _free_port()
        env = _env(tmp_path, slack, discord, port)
        for trial in range(TRIALS + 1):
            kills_before = switch.kills
            process = await _run_bot(env, tmp_path)
            if trial < TRIALS:  # the last run is left alone to finish the job
                switch.arm(process, at=rng.randint(1, 6), after_recording=rng.random() < 0.5)
            else:
                switch.countdown = None
            await asyncio.wait_for(
                _until(
                    lambda p=process: (
                        p.returncode is not None or _delivered(expected, slack, discord)
                    )
                ),
                timeout=90,
            )
            if process.returncode is None and switch.kills == kills_before:
                # Everything arrived: once the bot is up (it had nothing left to do), stop it.
                await asyncio.wait_for(_until_healthy(port), timeout=60)
                process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
            runs.append(process.returncode)
            if process.returncode not in (0, -signal.SIGKILL):
                pytest.fail(f"bot failed ({process.returncode}): {stderr.decode()[-3000:]}")
            if switch.kills == kills_before:  # not stopped by us: everything was delivered
                break

    # The stops really happened (a graceful stop drains what is in flight, so fewer are needed).
    assert switch.kills >= (3 if sig == signal.SIGKILL else 1), runs
    assert runs[-1] == 0, runs
    if sig == signal.SIGTERM:
        assert all(code == 0 for code in runs), runs  # every graceful stop exits cleanly
    for dest, papers in expected.items():
        if dest.platform == "slack":
            top, threads, headers = _slack_papers(slack, dest.channel)
            assert headers == 1, json.dumps(_debug(slack, dest.channel))
            assert dict(top) == dict.fromkeys(papers, 1), dest
            if threads:
                assert dict(threads) == dict.fromkeys(papers, 1), dest
        else:
            assert dict(_discord_papers(discord, dest.channel)) == dict.fromkeys(papers, 1), dest
    print(f"{sig.name}: {len(runs)} runs, {switch.kills} stops, exit codes {runs}")

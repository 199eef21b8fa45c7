"""Digest fan-out: one digest to 1,000 Slack channels in 20 workspaces.

The fake Slack runs in its own process (Slack's servers are not on our CPU), enforces
Slack's pace of one message per second per channel and answers 429 (with Retry-After)
when a post comes sooner. Reports the wall time against the least
those limits allow (every channel in parallel: (messages per channel - 1) seconds, plus
one round trip), the 429s received, and duplicates (must be 0).

The fake shares this machine's two cores with the bot, so it is served by a lean HTTP
server (``BENCH_FANOUT_FAKE=aiohttp``: the one the tests use, for comparison).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from adapters.slack import SlackAdapter
from bot.app import long_lived_frozen
from bot.config import Settings
from bot.delivery import Relay
from bot.digest import DigestPlanner
from bot.models import Author, Destination, Paper, PostResult, Reply, Subscription
from bot.store import Database, PaperStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore

# The fake's HTTP server: "lean" (tests/fakes/lean_http.py, httptools) or "aiohttp" (the
# tests' server, about twice the fake's CPU per request on the cores the bot is measured on)
FAKE_SERVER = os.environ.get("BENCH_FANOUT_FAKE", "lean")


@contextlib.asynccontextmanager
async def fake_slack_process(tmp: Path) -> AsyncIterator[str]:
    """The fake Slack in a process of its own; yields its Web API base URL."""
    port_file = tmp / "fake-slack.port"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.slack", str(port_file), "1.0", FAKE_SERVER
    )
    try:
        while not port_file.exists() or not port_file.read_text():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}/api/"
    finally:
        process.terminate()
        await process.wait()


WORKSPACES = 20
CHANNELS_PER_WORKSPACE = 50
TOP = int(os.environ.get("BENCH_FANOUT_TOP", "10"))
PAPER_URL = re.compile(r"huggingface\.co/papers/(\d{4}\.\d{5})")


def _papers(now: datetime) -> list[Paper]:
    return [
        Paper(
            id=f"2611.{50000 + i:05d}",
            title=f"Fan-out Paper {i}: scaling digests to many channels",
            abstract="We post one digest to a thousand channels. " * 5,
            authors=(Author("Ada Lovelace"), Author("Alan Turing")),
            submitted_at=now - timedelta(hours=2),
            upvotes=50 - i,
            sources=("huggingface",),
        )
        for i in range(TOP)
    ]


class CountingAdapter:
    """The Slack adapter, counting finished posts; ``all_posted`` is set at ``expected``."""

    def __init__(self, inner: SlackAdapter, *, expected: int) -> None:
        self.inner = inner
        self.expected = expected
        self.finished = 0
        self.sent = 0
        self.all_posted = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def post(self, dest: Destination, reply: Reply, *, key: str) -> PostResult:
        result = await self.inner.post(dest, reply, key=key)
        self.finished += 1
        self.sent += result.ok
        if self.finished >= self.expected:
            self.all_posted.set()
        return result


async def _no_commands(_request: object) -> Reply:
    return Reply(text="")


async def run() -> dict:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.connect(f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}")
        await db.upgrade()
        store, subs, outbox = PaperStore(db), SubscriptionStore(db), Outbox(db)
        await store.upsert(_papers(now))
        async with fake_slack_process(Path(tmp)) as api_url:
            settings = Settings(
                _env_file=None,
                slack_bot_token=SecretStr("xoxb-bench"),
                slack_signing_secret=SecretStr("bench"),
                slack_mode="http",
                slack_api_url=api_url,
            )
            adapter = SlackAdapter.from_settings(settings)
            await adapter.start(_no_commands)
            planner = DigestPlanner(store, outbox)
            slot = now - timedelta(minutes=1)
            for w in range(WORKSPACES):
                for c in range(CHANNELS_PER_WORKSPACE):
                    dest = Destination("slack", f"T{w:02d}", f"C{w:02d}{c:04d}")
                    sub = await subs.save(Subscription(destination=dest, top=TOP))
                    await planner.plan(sub, slot)
            counting = CountingAdapter(adapter, expected=WORKSPACES * CHANNELS_PER_WORKSPACE)
            # The relay as `paperboy run` runs it: default batch size and concurrency,
            # batches claimed while earlier ones wait on Slack's pacing.
            relay = Relay(outbox, store, subs, {"slack": counting})
            state_url = api_url.replace("/api/", "/__state")
            async with httpx.AsyncClient() as client:
                fake_cpu_before = (await client.get(state_url)).json()["cpu_seconds"]
            with long_lived_frozen():  # as `paperboy run` serves
                cpu_before = time.process_time()
                started = time.perf_counter()
                running = asyncio.create_task(relay.run_forever())
                await counting.all_posted.wait()
                await relay.stop()  # returns once the posts in flight are recorded
                await running
                wall = time.perf_counter() - started
                relay_cpu = time.process_time() - cpu_before
            await adapter.close()

            async with httpx.AsyncClient() as client:
                state = (await client.get(state_url)).json()
            per_channel = Counter({c: len(m) for c, m in state["messages"].items()})
            duplicates = 0
            for messages in state["messages"].values():
                top = Counter()
                threads = Counter()
                for message in messages:
                    ids = set(PAPER_URL.findall(json.dumps(message.get("blocks", []))))
                    (threads if "thread_ts" in message else top).update(ids)
                duplicates += sum(n - 1 for n in top.values() if n > 1)
                duplicates += sum(n - 1 for n in threads.values() if n > 1)
            messages_per_channel = max(per_channel.values())
            minimum = messages_per_channel - 1.0
        await db.close()
    return {
        "fake_server": FAKE_SERVER,
        "channels": WORKSPACES * CHANNELS_PER_WORKSPACE,
        "workspaces": WORKSPACES,
        "papers_per_digest": TOP,
        "messages_per_channel": messages_per_channel,
        "messages_total": sum(per_channel.values()),
        "posts_sent": counting.sent,
        "wall_seconds": round(wall, 2),
        "theoretical_minimum_seconds": minimum,
        "ratio_to_minimum": round(wall / minimum, 3) if minimum else None,
        "target_ratio": 1.2,
        "rate_limited_429": state["rate_limited"],
        # CPU seconds spent during the fan-out by our process and by the fake Slack's
        "relay_cpu_seconds": round(relay_cpu, 2),
        "fake_slack_cpu_seconds": round(state["cpu_seconds"] - fake_cpu_before, 2),
        "duplicates": duplicates,
    }

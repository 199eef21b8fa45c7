"""The outbox's share of a fan-out: claiming posts and recording their outcomes.

A digest to 1,000 channels is planned on SQLite; then, twice, a claim of 500 posts and
500 concurrent ``mark_sent`` calls (group-committed). Reports CPU and wall milliseconds
per operation and CPU microseconds per post. Size: ``BENCH_OUTBOX_CHANNELS`` (default
1,000, claimed in halves).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_fanout import TOP, _papers
from bot.digest import DigestPlanner
from bot.models import Destination, Subscription
from bot.store import Database, PaperStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore


async def _timed(work) -> tuple[object, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = await work
    return result, 1000 * (time.process_time() - cpu), 1000 * (time.perf_counter() - wall)


async def run(channels: int | None = None) -> dict:
    channels = channels or int(os.environ.get("BENCH_OUTBOX_CHANNELS", "1000"))
    batch = max(1, channels // 2)
    now = datetime.now(UTC)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.connect(f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}")
        try:
            await db.upgrade()
            store, subs, outbox = PaperStore(db), SubscriptionStore(db), Outbox(db)
            await store.upsert(_papers(now))
            planner = DigestPlanner(store, outbox)
            for c in range(channels):
                dest = Destination("slack", "T1", f"C{c:05d}")
                await planner.plan(await subs.save(Subscription(destination=dest, top=TOP)), now)
            while True:
                claimed, claim_cpu, claim_wall = await _timed(
                    outbox.claim(worker="bench", limit=batch)
                )
                if not claimed:
                    break
                marks = asyncio.gather(
                    *(outbox.mark_sent(p.id, "bench", ["1.1", "1.2"]) for p in claimed)
                )
                recorded, mark_cpu, mark_wall = await _timed(marks)
                assert all(recorded), "an outcome was refused"
                rounds.append(
                    {
                        "posts": len(claimed),
                        "claim_cpu_ms": round(claim_cpu, 1),
                        "claim_wall_ms": round(claim_wall, 1),
                        "record_cpu_ms": round(mark_cpu, 1),
                        "record_wall_ms": round(mark_wall, 1),
                    }
                )
            counts = await outbox.counts()
        finally:
            await db.close()
    posts = sum(r["posts"] for r in rounds)
    return {
        "channels": channels,
        "rounds": rounds,
        "sent": counts.get("sent", 0),
        "claim_cpu_us_per_post": round(1000 * sum(r["claim_cpu_ms"] for r in rounds) / posts, 1),
        "record_cpu_us_per_post": round(1000 * sum(r["record_cpu_ms"] for r in rounds) / posts, 1),
    }

"""Slack HTTP-mode command latency: concurrent signed ``/papers search`` over loopback.

uvicorn (``bot.web``) serves ``/slack/events`` through bolt with the real command core
(``bot.commands.Commands``) over a SQLite store of ``BENCH_SLACK_PAPERS`` (default
100,000) synthetic papers (``bench.corpus``). A fake Slack on 127.0.0.1 answers the Web
API and receives ``respond()`` at its response URLs. Each round fires
``BENCH_SLACK_CONCURRENCY`` (default 100) signed requests at once and measures, per
request, the time to the HTTP 200 ack and the time until the answer reached the fake.

The server (paperboy: store, commands, adapter, uvicorn) runs in its own process; this
process is the load generator and the fake Slack. ``perf_counter`` is system-wide
monotonic on Linux, so answer arrival times compare with send times.

Run: ``python -m bench slack`` (or ``python -m bench.bench_slack``); writes
``bench/results/slack.json``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from adapters.slack import SlackAdapter
from bench.corpus import CorpusGenerator
from bot.commands import Commands
from bot.store import Database, PaperStore
from bot.web import WebServer, create_app
from tests.fakes.slack import FakeSlack

DATA_DIR = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "slack.json"
SECRET = "bench-signing-secret"
QUERIES = [
    "diffusion",
    "language model",
    '"video generation"',
    "reinforcement learning reasoning",
    "mamba OR ssm",
    "diffusion -video",
    "title:transformer",
    "multimodal benchmark",
    "robot manipulation policy",
    "speech recognition",
]


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def _summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": _percentile(samples_ms, 50),
        "p90_ms": _percentile(samples_ms, 90),
        "p99_ms": _percentile(samples_ms, 99),
        "max_ms": round(max(samples_ms), 2),
    }


async def _open_store(count: int) -> tuple[Database, PaperStore, dict[str, Any]]:
    """A SQLite store with ``count`` synthetic papers, built once and reused."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"slack-{count}.db"
    db = await Database.connect(f"sqlite+aiosqlite:///{path}")
    await db.upgrade()
    store = PaperStore(db)
    info: dict[str, Any] = {"papers": count, "path": path.name}
    if await store.count() != count:
        started = time.perf_counter()
        await store.upsert(CorpusGenerator().papers(count))
        info["import_seconds"] = round(time.perf_counter() - started, 1)
    info["papers_in_store"] = await store.count()
    return db, store, info


def _signed_command(text: str, response_url: str, user: str) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "team_id": "T1",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/papers",
            "text": text,
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
    }
    return body, headers


async def _one(
    http: aiohttp.ClientSession, url: str, fake: FakeSlack, token: str, query: str, user: str
) -> tuple[float, float]:
    body, headers = _signed_command(f"search {query}", fake.response_url(token), user)
    started = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        status = response.status
    acked = time.perf_counter()
    if status != 200:
        raise RuntimeError(f"ack failed: HTTP {status}")
    await fake.wait_for_responses(token, 1)
    answered = fake.response_arrivals[token][0]  # perf_counter is system-wide monotonic
    return (acked - started) * 1000, (answered - started) * 1000


def _server_process(count: int, api_url: str, conn: Connection) -> None:
    """The paperboy side, in its own process: store, command core, adapter, uvicorn."""
    asyncio.run(_serve(count, api_url, conn))


async def _serve(count: int, api_url: str, conn: Connection) -> None:
    db, store, store_info = await _open_store(count)
    adapter = SlackAdapter(
        bot_token="xoxb-bench", signing_secret=SECRET, mode="http", api_url=api_url
    )
    await adapter.start(Commands(store, lookup=None).handle)
    web = WebServer(create_app(adapter.web_routes()), port=0)
    await web.start()
    conn.send({"port": web.port, "store": store_info})
    try:
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    finally:
        await web.stop()
        await adapter.close()
        await db.close()


async def _fire(
    http: aiohttp.ClientSession,
    url: str,
    fake: FakeSlack,
    prefix: str,
    concurrency: int,
    shift: int,
) -> list[tuple[float, float]]:
    return await asyncio.gather(
        *(
            _one(http, url, fake, f"{prefix}{i}", QUERIES[(i + shift) % len(QUERIES)], f"U{i}")
            for i in range(concurrency)
        )
    )


async def run() -> dict[str, Any]:
    count = int(os.environ.get("BENCH_SLACK_PAPERS", "100000"))
    concurrency = int(os.environ.get("BENCH_SLACK_CONCURRENCY", "100"))
    rounds = int(os.environ.get("BENCH_SLACK_ROUNDS", "5"))
    acks: list[float] = []
    answers: list[float] = []
    per_round: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    async with FakeSlack() as fake:
        for index in range(concurrency):
            fake.users[f"U{index}"] = {"id": f"U{index}"}
        fake.channels["C1"] = {"id": "C1", "creator": "U0"}
        parent, child = context.Pipe()
        server = context.Process(target=_server_process, args=(count, fake.api_url, child))
        server.start()
        try:
            ready = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
            url = f"http://127.0.0.1:{ready['port']}/slack/events"
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as http:
                # Warm-up: bolt's auth.test, the permission cache, SQLite pages, connections.
                await _fire(http, url, fake, "warm", concurrency, 0)
                for round_index in range(rounds):
                    results = await _fire(
                        http, url, fake, f"r{round_index}-", concurrency, round_index
                    )
                    round_acks = [a for a, _ in results]
                    round_answers = [b for _, b in results]
                    acks += round_acks
                    answers += round_answers
                    per_round.append(
                        {"ack": _summary(round_acks), "respond": _summary(round_answers)}
                    )
        finally:
            parent.send("stop")
            server.join(timeout=30)
            if server.is_alive():
                server.kill()
    ack = _summary(acks)
    round_p99s = sorted(r["ack"]["p99_ms"] for r in per_round)
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # The benchmark machine may be shared: load shows how noisy the figures are.
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "store": ready["store"],
        "concurrency": concurrency,
        "rounds": rounds,
        "requests": len(acks),
        "queries": QUERIES,
        "ack_http_200": ack,
        "respond_reached_fake": _summary(answers),
        "per_round": per_round,
        "ack_p99_median_of_rounds_ms": round_p99s[len(round_p99s) // 2],
        "targets": {"ack_p99_ms": 50, "slack_ack_deadline_ms": 3000},
        "ack_p99_within_target": ack["p99_ms"] < 50,
    }


if __name__ == "__main__":
    result = asyncio.run(run())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))

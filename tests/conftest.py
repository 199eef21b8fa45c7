"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and the corpus.

``PAPERBOY_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``)
enables the PostgreSQL variant of every test using ``database``/``store``: each test gets
a throw-away database ``paperboy_t_<uuid>`` created from that URL, migrated, and dropped
afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.models import Author, Paper
from bot.search import SearchEngine
from bot.store import Database, PaperStore

PG_URL = os.environ.get("PAPERBOY_TEST_DATABASE_URL")
# No test may reach a model hub: semantic search is off unless a test sets it up with
# the tiny model of tests/fakes/tiny_model.py.
os.environ["PAPERBOY_SEMANTIC_SEARCH"] = "false"
SEED_CORPUS = Path(__file__).parent / "fixtures" / "hf_daily_papers_seed.json"

DATABASE_PARAMS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="PAPERBOY_TEST_DATABASE_URL not set"),
    ),
]


async def create_database(
    kind: str, tmp_path: Path, *, upgrade: bool = True
) -> tuple[Database, object]:
    """A migrated (unless not ``upgrade``), empty database of ``kind``; returns it and a
    token for drop_database."""
    if kind == "sqlite":
        db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'paperboy.db'}")
        try:
            if upgrade:
                await db.upgrade()
        except BaseException:
            await db.close()
            raise
        return db, None
    assert PG_URL
    admin, name, url = await create_postgres_database(PG_URL)
    try:  # from here on a failure must not leave the database (or the engine) behind
        db = await Database.connect(url)
        try:
            if upgrade:
                await db.upgrade()
        except BaseException:
            await db.close()
            raise
    except BaseException:
        await drop_postgres_database(admin, name)
        raise
    return db, (admin, name)


async def create_postgres_database(base_url: str) -> tuple[AsyncEngine, str, str]:
    """A new, empty, uniquely named database on ``base_url``'s server: the admin engine
    (for :func:`drop_postgres_database`), its name and its URL."""
    name = f"paperboy_t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except BaseException:
        await admin.dispose()
        raise
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    return admin, name, url


async def drop_postgres_database(admin: AsyncEngine, name: str) -> None:
    """Drop the throw-away database ``name``, then dispose of the ``admin`` engine."""
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


async def drop_database(db: Database, token: object) -> None:
    try:
        await db.close()
    finally:
        if token is not None:
            admin, name = token  # type: ignore[misc]
            await drop_postgres_database(admin, name)


@asynccontextmanager
async def migrated_database(
    kind: str, tmp_path: Path, *, upgrade: bool = True
) -> AsyncIterator[Database]:
    """An empty, migrated (unless not ``upgrade``) database of ``kind``, dropped on exit.
    PostgreSQL skips the test when ``PAPERBOY_TEST_DATABASE_URL`` is not set."""
    if kind == "postgresql" and not PG_URL:
        pytest.skip("PAPERBOY_TEST_DATABASE_URL not set")
    db, token = await create_database(kind, tmp_path, upgrade=upgrade)
    try:
        yield db
    finally:
        await drop_database(db, token)


@pytest.fixture(params=DATABASE_PARAMS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, migrated database: SQLite, and PostgreSQL when configured."""
    async with migrated_database(request.param, tmp_path) as db:
        yield db


class SteppingClock:
    """A clock for tests: returns ``now`` and moves on by ``step`` seconds per call."""

    def __init__(self, start: datetime | None = None, step: float = 1.0) -> None:
        self.now = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        from datetime import timedelta

        current = self.now
        self.now = current + timedelta(seconds=self.step)
        return current


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
async def store(database: Database, clock: SteppingClock) -> PaperStore:
    """A PaperStore on ``database`` with a deterministic clock."""
    return PaperStore(database, clock=clock)


@pytest.fixture
async def engine(store: PaperStore, tmp_path: Path) -> AsyncIterator[SearchEngine]:
    """The search engine over ``store``, its index in ``tmp_path``."""
    engine = await SearchEngine(store, tmp_path / "search").open()
    try:
        yield engine
    finally:
        await engine.close()


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def paper_from_hf_item(item: dict) -> Paper:
    """A Paper from one item of ``/api/daily_papers`` (minimal parser for tests)."""
    raw = item.get("paper", item)
    return Paper(
        id=raw["id"],
        title=" ".join((raw.get("title") or item.get("title") or "").split()),
        abstract=raw.get("summary") or item.get("summary") or "",
        authors=tuple(Author(a["name"]) for a in raw.get("authors", []) if a.get("name")),
        published_at=_when(raw.get("publishedAt")),
        submitted_at=_when(raw.get("submittedOnDailyAt") or item.get("publishedAt")),
        upvotes=raw.get("upvotes"),
        comments=item.get("numComments"),
        ai_summary=raw.get("ai_summary"),
        ai_keywords=tuple(raw.get("ai_keywords") or ()),
        github_repo=raw.get("githubRepo"),
        github_stars=raw.get("githubStars"),
        project_page=raw.get("projectPage"),
        thumbnail=item.get("thumbnail"),
        organization=(item.get("organization") or {}).get("fullname")
        if isinstance(item.get("organization"), dict)
        else None,
        sources=("huggingface",),
    )


def load_seed_papers() -> list[Paper]:
    """The 503 papers of tests/fixtures/hf_daily_papers_seed.json."""
    return [paper_from_hf_item(item) for item in json.loads(SEED_CORPUS.read_text())]


@pytest.fixture(scope="session")
def seed_papers() -> list[Paper]:
    return load_seed_papers()


# The fake Hugging Face server, for any test that asks for ``fake_hf``.
from tests.fakes.huggingface import fake_hf  # noqa: E402, F401

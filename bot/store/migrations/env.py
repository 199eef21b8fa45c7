"""Alembic environment: runs on the connection Database.upgrade() hands over.

From the alembic CLI (``alembic -c bot/store/migrations/alembic.ini revision ...``) it
connects with ``sqlalchemy.url`` or ``PAPERBOY_DATABASE_URL``, through the same async
drivers as paperboy (aiosqlite, asyncpg): no other driver is installed.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.schema import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:

    async def _run_from_cli(url: str) -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as async_connection:
                await async_connection.run_sync(_run)
                await async_connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(
        _run_from_cli(
            config.get_main_option("sqlalchemy.url") or os.environ["PAPERBOY_DATABASE_URL"]
        )
    )

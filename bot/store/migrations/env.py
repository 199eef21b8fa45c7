"""Alembic environment: runs on the connection Database.upgrade() hands over.

From the alembic CLI it connects with ``sqlalchemy.url`` (or ``PAPERBOY_DATABASE_URL``)
using a synchronous driver.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

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
    url = config.get_main_option("sqlalchemy.url") or os.environ["PAPERBOY_DATABASE_URL"]
    url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(url).connect() as sync_connection:
        _run(sync_connection)

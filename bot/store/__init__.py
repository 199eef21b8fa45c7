"""The paper store: SQLite (embedded) or PostgreSQL.

``Database`` owns the engine and migrations; ``PaperStore`` keeps papers and the feed
of their changes that the search indexes (:mod:`bot.search`) follow.
"""

from bot.store.database import Database, DatabaseUnavailable
from bot.store.papers import Change, PaperStore
from bot.store.writer import UpsertResult

__all__ = ["Change", "Database", "DatabaseUnavailable", "PaperStore", "UpsertResult"]

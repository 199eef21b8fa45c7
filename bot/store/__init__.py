"""The paper store: SQLite (embedded) or PostgreSQL, with full-text search.

``Database`` owns the engine and migrations; ``PaperStore`` keeps and finds papers.
"""

from bot.store.database import Database, DatabaseUnavailable
from bot.store.fulltext import reindex
from bot.store.papers import PaperStore
from bot.store.search import SearchResult
from bot.store.writer import UpsertResult

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "PaperStore",
    "SearchResult",
    "UpsertResult",
    "reindex",
]

"""Search: derived indexes over the stored papers, and the ranking that orders them.

The database stays the truth; every index here is rebuilt or caught up from it
(:mod:`bot.search.sync`). :class:`SearchEngine` is what the rest of the bot asks.
"""

from bot.search.engine import SearchEngine, SearchResult

__all__ = ["SearchEngine", "SearchResult"]

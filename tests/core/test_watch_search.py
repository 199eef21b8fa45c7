"""Issue property: a watch fires on a new paper exactly when a search with the same query
over those papers returns it, on SQLite and PostgreSQL."""

from hypothesis import given

from bot.models import Destination, Watch
from bot.watches import WatchMatcher
from tests.store.test_properties import (
    DB_SETTINGS,
    papers_strategy,
    query_strategy,
    stored_example,
)

DM = Destination("slack", "T1", "U1", is_dm=True)


@DB_SETTINGS
@given(specs=papers_strategy, source=query_strategy)
async def test_watch_fires_exactly_when_search_returns_the_paper(database, specs, source):
    query, papers, store = await stored_example(database, specs, source)
    result = await store.search(query, limit=100)
    searched = set() if result.partial else {p.id for p in result.papers}
    fired = {
        p.id for m in WatchMatcher([Watch("U1", DM, source, id=1)]).match(papers) for p in m.papers
    }
    assert fired == searched
    assert await store.count_matching(query) == len(fired)

"""Issue property: a watch fires on a new paper exactly when a search with the same query
over those papers finds it with every group of the query, on SQLite and PostgreSQL."""

from hypothesis import given

from bot.models import Destination, Watch
from bot.watches import WatchMatcher
from tests.search.test_properties import (
    DB_SETTINGS,
    papers_strategy,
    query_strategy,
    stored_example,
)

DM = Destination("slack", "T1", "U1", is_dm=True)


@DB_SETTINGS
@given(specs=papers_strategy, source=query_strategy)
async def test_watch_fires_exactly_when_search_finds_the_paper_with_all_its_words(
    database, engine, specs, source
):
    query, papers = await stored_example(database, engine, specs, source)
    searched = {p.id for p in await engine.full_matches(query, limit=100)}
    fired = {
        p.id for m in WatchMatcher([Watch("U1", DM, source, id=1)]).match(papers) for p in m.papers
    }
    assert fired == searched
    assert await engine.count_matching(query) == len(fired)

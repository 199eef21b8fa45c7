"""Properties: any input is safe, and search agrees with a brute-force evaluation.

The brute-force side uses ``bot.query.matches`` (what keyword watches evaluate) over
every paper: a search returns exactly the papers a watch with the same query would fire
on, in the order ``rank_key`` defines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.models import Author, Paper
from bot.query import Query, QueryError, index_fields, matches, parse, to_fts5, to_tsquery
from bot.store import Database, PaperStore
from bot.store.fulltext import fts5_match, tsquery_text
from bot.store.ranking import rank_key
from bot.store.writer import FTS_TABLES

DB_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WORDS = ["diffusion", "video", "models", "language", "mamba", "state", "space", "graph",
         "agents", "robot", "the", "of", "Learning", "learned"]  # fmt: skip
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)

text = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)
papers_strategy = st.lists(
    st.builds(
        lambda title, abstract, keywords, authors, upvotes, day: (
            title,
            abstract,
            keywords,
            authors,
            upvotes,
            day,
        ),
        text,
        text,
        st.lists(text, max_size=2),
        st.lists(st.sampled_from(NAMES), max_size=2),
        st.one_of(st.none(), st.integers(0, 5)),
        st.integers(0, 4),
    ),
    min_size=2,
    max_size=16,
)


def _token() -> st.SearchStrategy[str]:
    word = st.sampled_from(WORDS + ["quantum"])
    name = st.sampled_from(["lovelace", "turing", "hopper", '"alan turing"', "ada"])
    return st.one_of(
        word,
        st.tuples(word, word).map(lambda ws: f'"{ws[0]} {ws[1]}"'),
        word.map(lambda w: f"-{w}"),
        name.map(lambda n: f"author:{n}"),
        word.map(lambda w: f"title:{w}"),
        st.just("OR"),
    )


query_strategy = st.lists(_token(), min_size=1, max_size=6).map(" ".join)


def build_papers(specs: list[tuple]) -> list[Paper]:
    return [
        Paper(
            id=f"2501.{i:05d}",
            title=title,
            abstract=abstract,
            ai_keywords=tuple(keywords),
            authors=tuple(Author(a) for a in authors),
            upvotes=upvotes,
            submitted_at=T0 + timedelta(days=day),
        )
        for i, (title, abstract, keywords, authors, upvotes, day) in enumerate(specs)
    ]


async def reset(db: Database) -> None:
    async with db.write() as conn:
        await conn.exec_driver_sql("DELETE FROM papers")
        await conn.exec_driver_sql("DELETE FROM paper_day_floors")
        if db.dialect == "sqlite":
            for table in FTS_TABLES:
                await conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")


def brute_force(query, papers: list[Paper], keep=lambda paper: True) -> tuple[list[str], bool]:
    keyed, full_ids, watch_ids = [], set(), set()
    for row_id, paper in enumerate(papers, start=1):
        if not keep(paper):
            continue
        fields = {c: v.split() for c, v in index_fields(paper).items()}
        if matches(query, fields):
            watch_ids.add(paper.id)
        key = rank_key(query, fields, paper, row_id)
        if key is not None:
            keyed.append((key, paper.id))
            if -key[0] == len(query.groups):
                full_ids.add(paper.id)
    assert full_ids == watch_ids  # the ranking's notion of a full match is the watch's
    if full_ids:
        return [i for k, i in sorted(keyed) if i in full_ids], False
    return [i for _, i in sorted(keyed)], bool(keyed)


async def stored_example(
    database: Database, specs: list[tuple], source: str
) -> tuple[Query, list[Paper], PaperStore]:
    """The example's query (examples that do not parse are rejected) and its papers,
    stored in a freshly emptied ``database``."""
    try:
        query = parse(source)
    except QueryError:
        assume(False)
    await reset(database)
    papers = build_papers(specs)
    store = PaperStore(database)
    await store.upsert(papers)
    return query, papers, store


@DB_SETTINGS
@given(specs=papers_strategy, source=query_strategy)
async def test_search_equals_brute_force(database: Database, specs, source) -> None:
    query, papers, store = await stored_example(database, specs, source)
    expected, expected_partial = brute_force(query, papers)
    result = await store.search(query, limit=100)
    assert [p.id for p in result.papers] == expected
    assert result.partial == expected_partial


@DB_SETTINGS
@given(
    specs=papers_strategy,
    source=query_strategy,
    min_upvotes=st.one_of(st.none(), st.integers(0, 7)),
    since_day=st.one_of(st.none(), st.integers(0, 5)),
)
async def test_filtered_search_equals_brute_force(
    database: Database, specs, source, min_upvotes, since_day
) -> None:
    query, papers, store = await stored_example(database, specs, source)
    since = None if since_day is None else T0 + timedelta(days=since_day)

    def keep(paper: Paper) -> bool:
        votes_ok = not min_upvotes or (paper.upvotes or 0) >= min_upvotes
        return votes_ok and (since is None or paper.submitted_at >= since)

    expected, expected_partial = brute_force(query, papers, keep)
    result = await store.search(query, limit=100, min_upvotes=min_upvotes, since=since)
    assert [p.id for p in result.papers] == expected
    assert result.partial == expected_partial


@DB_SETTINGS
@given(source=st.text(max_size=400) | query_strategy)
async def test_any_input_parses_or_explains_and_runs(database: Database, source) -> None:
    store = PaperStore(database)
    if await store.count() == 0:
        await store.upsert(build_papers([("Mamba state space", "video diffusion", [], [], 1, 0)]))
    try:
        query = parse(source)
    except QueryError as exc:
        assert str(exc)
        return
    result = await store.search(query, limit=5, offset=1, min_upvotes=1, since=T0)
    assert len(result.papers) <= 5


@settings(max_examples=200, deadline=None)
@given(source=st.text(max_size=200) | query_strategy)
def test_tier_compilers_default_to_the_query_modules(source) -> None:
    try:
        query = parse(source)
    except QueryError:
        return
    assert fts5_match(query) == to_fts5(query)
    assert tsquery_text(query) == to_tsquery(query)

"""The search index follows the database by itself, and survives what a process may
suffer: a crash between writes, a deleted or damaged folder, another database, a second
process on the same folder."""

from __future__ import annotations

from pathlib import Path

from bot.models import Author, Paper
from bot.query import parse
from bot.search import SearchEngine
from bot.search.state import read_state
from bot.store import Database, PaperStore
from bot.store.schema import paper_vectors


def paper(n: int, title: str, upvotes: int = 0) -> Paper:
    return Paper(id=f"2507.{n:05d}", title=title, authors=(Author("Ada"),), upvotes=upvotes)


async def found(engine: SearchEngine, text: str) -> list[str]:
    return [p.id for p in (await engine.search(parse(text), limit=50)).papers]


async def test_new_changed_and_deleted_papers_reach_the_index(store, engine, database) -> None:
    await store.upsert([paper(1, "Sparse experts"), paper(2, "Dense experts", upvotes=1)])
    assert sorted(await found(engine, "experts")) == ["2507.00001", "2507.00002"]
    await store.upsert([paper(1, "Sparse experts", upvotes=99)])  # counters change the order
    assert (await found(engine, "experts"))[0] == "2507.00001"
    await store.upsert([paper(2, "Dense retrievers")])  # text changes
    assert await found(engine, "experts") == ["2507.00001"]
    assert await found(engine, "retrievers") == ["2507.00002"]
    async with database.write() as conn:  # a deletion by hand, outside paperboy
        await conn.exec_driver_sql("DELETE FROM papers WHERE paper_id = '2507.00001'")
    await engine.catch_up()
    assert await found(engine, "experts") == []
    assert engine.lexical.index.size == 1


async def test_a_paper_seen_again_unchanged_costs_the_index_nothing(store, engine) -> None:
    await store.upsert([paper(1, "Sparse experts")])
    await engine.catch_up()
    revision = await store.latest_revision()
    await store.upsert([paper(1, "Sparse experts")])
    assert await store.latest_revision() == revision
    assert await engine.catch_up() == 0


async def test_changes_made_by_another_process_are_followed(database, tmp_path) -> None:
    engine = await SearchEngine(PaperStore(database), tmp_path / "search").open()
    try:
        other = PaperStore(database)  # another replica: no in-process notification
        await other.upsert([paper(1, "Mixture of experts routing")])
        assert await engine.follow_once() == 1  # what follow() does every few seconds
        assert await found(engine, "routing") == ["2507.00001"]
        assert await engine.follow_once() == 0
    finally:
        await engine.close()


async def test_a_crash_before_the_commit_is_caught_up_on_restart(store, tmp_path) -> None:
    directory = tmp_path / "search"
    engine = await SearchEngine(store, directory).open()
    await store.upsert([paper(1, "Sparse experts")])
    await engine.catch_up()
    await store.upsert([paper(2, "Dense experts")])
    # The process dies after giving tantivy the change, before committing it.
    changes = await store.changes_after(engine.lexical.revision)
    engine.lexical.index.apply([(c.row_id, c.paper) for c in changes])
    await engine.close()  # uncommitted work is dropped, as in a crash
    assert read_state(directory / "lexical.json").revision < await store.latest_revision()

    restarted = await SearchEngine(store, directory).open()
    try:
        assert sorted(await found(restarted, "experts")) == ["2507.00001", "2507.00002"]
    finally:
        await restarted.close()


async def test_a_deleted_or_damaged_index_folder_is_rebuilt(store, tmp_path) -> None:
    directory = tmp_path / "search"
    await store.upsert([paper(1, "Sparse experts"), paper(2, "Dense experts")])
    engine = await SearchEngine(store, directory).open()
    await engine.catch_up()
    await engine.close()

    for damage in (_delete_folder, _garble_meta):
        damage(directory / "lexical")
        engine = await SearchEngine(store, directory).open()
        try:
            assert sorted(await found(engine, "experts")) == ["2507.00001", "2507.00002"]
        finally:
            await engine.close()


def _delete_folder(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


def _garble_meta(folder: Path) -> None:
    (folder / "meta.json").write_text("{ not json")


async def test_an_index_built_from_another_database_is_not_trusted(tmp_path) -> None:
    directory = tmp_path / "search"
    first = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    second = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'two.db'}")
    try:
        for db, title in ((first, "Sparse experts"), (second, "Dense retrievers")):
            await db.upgrade()
            store = PaperStore(db)
            await store.upsert([paper(1, title)])
            engine = await SearchEngine(store, directory).open()
            try:
                assert await found(engine, "experts") == (["2507.00001"] if db is first else [])
            finally:
                await engine.close()
    finally:
        await first.close()
        await second.close()


async def test_a_second_process_searches_what_the_writer_committed(store, tmp_path) -> None:
    directory = tmp_path / "search"
    writer = await SearchEngine(store, directory).open()
    reader = await SearchEngine(PaperStore(store.db), directory).open()
    try:
        assert writer.owner and not reader.owner
        await store.upsert([paper(1, "Sparse experts")])
        await writer.catch_up()
        await reader.catch_up()  # only reloads: the writer keeps the index
        assert await found(reader, "experts") == ["2507.00001"]
    finally:
        await reader.close()
        await writer.close()


async def test_rebuild_reports_progress_and_keeps_every_paper(store, engine, seed_papers):
    await store.upsert(seed_papers)
    before = await found(engine, "diffusion video")
    reports: list[tuple[int, int]] = []
    assert await engine.rebuild(lambda done, total: reports.append((done, total))) == 503
    assert reports[-1] == (503, 503)
    assert await found(engine, "diffusion video") == before
    assert engine.lexical.revision == await store.latest_revision()


async def test_editing_embedded_text_drops_the_stored_vectors(store, database) -> None:
    await store.upsert([paper(1, "Sparse experts")])
    row_id = await store.row_id("2507.00001")
    async with database.write() as conn:
        await conn.execute(
            paper_vectors.insert().values(row_id=row_id, model="m", vectors=b"\0", revision=1)
        )

    async def vectors() -> int:
        async with database.read() as conn:
            rows = await conn.exec_driver_sql("SELECT count(*) FROM paper_vectors")
            return int(rows.scalar_one())

    await store.upsert([paper(1, "Sparse experts", upvotes=5)])  # counters only
    assert await vectors() == 1
    await store.upsert([paper(1, "Sparse experts, revisited")])
    assert await vectors() == 0

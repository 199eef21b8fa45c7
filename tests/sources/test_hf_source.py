"""HuggingFaceSource against the fake server over real HTTP: happy paths and data shape."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
from pydantic import SecretStr

from bot.ports import PaperLookup, PaperSource, SourceError
from bot.sources.huggingface import HuggingFaceSource
from tests.fakes.huggingface import FakeHuggingFace, make_item
from tests.sources.conftest import SleepRecorder, load_real_shape_items

MakeSource = Callable[..., HuggingFaceSource]
DAY = date(2025, 9, 8)
TOKEN = "hf_SuperSecretToken123"


def _items_on(day: date, count: int, *, prefix: int = 2509) -> list[dict]:
    return [
        make_item(f"{prefix}.{n:05d}", f"Paper number {n}", day=day, upvotes=n)
        for n in range(count)
    ]


async def test_source_implements_the_ports(make_source: MakeSource) -> None:
    source = make_source("http://127.0.0.1:9")
    assert isinstance(source, PaperSource)
    assert isinstance(source, PaperLookup)
    assert source.name == "huggingface"


async def test_daily_asks_for_one_day_trending(make_source: MakeSource) -> None:
    items = [*load_real_shape_items(), *_items_on(date(2025, 9, 7), 3)]
    async with FakeHuggingFace(items) as hf:
        papers = await make_source(hf).daily(day=DAY)
    assert [p.id for p in papers] == ["2509.02547", "2509.04664", "2509.06160"]  # by upvotes
    (request,) = hf.requests
    assert request.path == "/api/daily_papers"
    assert request.query == {"date": "2025-09-08", "sort": "trending", "p": "0", "limit": "50"}


async def test_daily_week_month_and_paging_parameters(make_source: MakeSource) -> None:
    async with FakeHuggingFace(_items_on(DAY, 5)) as hf:
        source = make_source(hf)
        assert len(await source.daily(week="2025-W37", sort="publishedAt", limit=2, page=1)) == 2
        assert len(await source.daily(month="2025-09")) == 5
        assert await source.daily(month="2025-09", page=3, limit=2) == []
    assert hf.requests[0].query == {
        "week": "2025-W37",
        "sort": "publishedAt",
        "p": "1",
        "limit": "2",
    }
    assert hf.requests[1].query["month"] == "2025-09"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"day": DAY, "week": "2025-W37"},
        {"sort": "hot"},
        {"page": -1},
        {"limit": 0},
        {"limit": 101},
    ],
)
async def test_daily_rejects_bad_arguments_without_a_request(
    make_source: MakeSource, kwargs: dict
) -> None:
    async with FakeHuggingFace([]) as hf:
        with pytest.raises(ValueError):
            await make_source(hf).daily(**kwargs)
    assert hf.requests == []


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (99, 1), (100, 2), (250, 3)])
async def test_fetch_day_reads_every_page(
    make_source: MakeSource, count: int, requests: int
) -> None:
    other_day = _items_on(date(2025, 9, 9), 7, prefix=2510)
    async with FakeHuggingFace([*_items_on(DAY, count), *other_day]) as hf:
        papers = await make_source(hf).fetch_day(DAY)
    assert len(papers) == count
    assert len({p.id for p in papers}) == count
    assert all(p.submitted_at is not None and p.submitted_at.date() == DAY for p in papers)
    assert [r.query["p"] for r in hf.requests] == [str(p) for p in range(requests)]
    assert {r.query["limit"] for r in hf.requests} == {"100"}
    assert {r.query["sort"] for r in hf.requests} == {"publishedAt"}


async def test_fetch_day_deduplicates_a_list_that_shifts_while_paging(
    make_source: MakeSource,
) -> None:
    async with FakeHuggingFace(_items_on(DAY, 150)) as hf:
        source = make_source(hf)
        original = hf._daily

        def shifting(query: dict[str, str]) -> list:
            if query.get("p") == "1":  # three newer papers arrived: page 2 repeats three
                newer = _items_on(DAY, 3, prefix=2511)
                for item in newer:
                    item["publishedAt"] = f"{DAY.isoformat()}T23:00:00.000Z"
                hf.add_items(newer)
            return original(query)

        hf._daily = shifting  # type: ignore[method-assign]
        papers = await source.fetch_day(DAY)
    assert len(papers) == len({p.id for p in papers}) == 150
    assert {p.id for p in papers} == {f"2509.{n:05d}" for n in range(150)}


async def test_fetch_day_stops_when_the_server_ignores_the_page(
    make_source: MakeSource,
) -> None:
    async with FakeHuggingFace(_items_on(DAY, 100)) as hf:
        hf.add_items(_items_on(DAY, 100, prefix=2512))
        page = hf._daily({"date": DAY.isoformat(), "limit": "100"})
        for _ in range(5):
            hf.fail_next("/api/daily_papers", status=200, json_body=page)
        papers = await make_source(hf).fetch_day(DAY)
    assert len(papers) == 100
    assert len(hf.requests) == 2  # the second page brought nothing new


async def test_an_empty_day_is_an_empty_list(make_source: MakeSource) -> None:
    async with FakeHuggingFace(_items_on(DAY, 3)) as hf:
        assert await make_source(hf).fetch_day(date(2025, 9, 13)) == []
    assert len(hf.requests) == 1


async def test_fetch_recent_walks_back_from_today_utc(make_source: MakeSource) -> None:
    shared = make_item("2509.00042", "Listed on two days", day=date(2025, 9, 7))
    again = make_item("2509.00042", "Listed on two days", day=DAY)
    items = [*_items_on(DAY, 2), again, shared, *_items_on(date(2025, 9, 6), 1, prefix=2508)]
    clock = lambda: datetime(2025, 9, 8, 23, 30, tzinfo=UTC)  # noqa: E731
    async with FakeHuggingFace(items) as hf:
        papers = await make_source(hf, clock=clock).fetch_recent(days=3)
    assert [r.query["date"] for r in hf.requests] == ["2025-09-08", "2025-09-07", "2025-09-06"]
    assert len(papers) == 4
    assert len({p.id for p in papers}) == 4
    with pytest.raises(ValueError):
        await make_source(hf).fetch_recent(days=0)


async def test_fetch_recent_takes_today_in_utc_not_local_time(make_source: MakeSource) -> None:
    east = timezone(timedelta(hours=5))
    clock = lambda: datetime(2025, 9, 8, 1, 0, tzinfo=east)  # noqa: E731  (UTC: 7 Sep, 20:00)
    async with FakeHuggingFace(_items_on(date(2025, 9, 7), 2)) as hf:
        papers = await make_source(hf, clock=clock).fetch_recent()
    assert [r.query["date"] for r in hf.requests] == ["2025-09-07"]
    assert len(papers) == 2


async def test_fetch_paper_by_versioned_id_or_url(make_source: MakeSource) -> None:
    async with FakeHuggingFace(load_real_shape_items()) as hf:
        source = make_source(hf)
        by_version = await source.fetch_paper("2509.04664v3")
        by_url = await source.fetch_paper("https://arxiv.org/abs/2509.02547v2")
        missing = await source.fetch_paper("2501.00000")
        withdrawn = await source.fetch_paper("2509.01111")
        blank = await source.fetch_paper("  ")
    assert by_version is not None and by_version.title == "Why Language Models Hallucinate"
    assert by_url is not None and by_url.id == "2509.02547"
    assert missing is None
    assert withdrawn is None
    assert blank is None
    assert [r.path for r in hf.requests] == [
        "/api/papers/2509.04664",
        "/api/papers/2509.02547",
        "/api/papers/2501.00000",
        "/api/papers/2509.01111",
    ]


async def test_fetch_paper_with_a_malformed_body_raises(make_source: MakeSource) -> None:
    async with FakeHuggingFace([]) as hf:
        hf.fail_next("/api/papers/*", status=200, json_body={"id": "2509.1", "upvotes": "x"})
        with pytest.raises(SourceError, match="malformed"):
            await make_source(hf).fetch_paper("2509.00001")


async def test_search_passes_the_query_and_limits_results(make_source: MakeSource) -> None:
    async with FakeHuggingFace() as hf:
        source = make_source(hf)
        papers = await source.search("  diffusion   video ", limit=3)
        nothing = await source.search("   ")
    assert len(papers) == 3
    assert all("diffusion" in (p.title + p.abstract).lower() for p in papers)
    assert nothing == []
    (request,) = hf.requests
    assert request.query == {"q": "diffusion video", "limit": "3"}


async def test_bad_items_in_a_page_are_logged_and_skipped(
    make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    items = load_real_shape_items()
    broken = make_item("2509.07777", "Authors as a string", day=DAY)
    broken["paper"]["authors"] = "Ada Lovelace"
    async with FakeHuggingFace([*items, broken]) as hf:
        with caplog.at_level(logging.WARNING, logger="bot.sources.huggingface"):
            papers = await make_source(hf).fetch_day(DAY)
    assert {p.id for p in papers} == {"2509.04664", "2509.02547", "2509.06160"}
    logged = caplog.text
    assert "2509.07777" in logged and "authors" in logged
    assert "2509.05000" in logged and "upvotes" in logged
    assert "2509.01111" in logged and "withdrawn" in logged


async def test_user_agent_and_no_authorization_without_token(make_source: MakeSource) -> None:
    async with FakeHuggingFace([]) as hf:
        await make_source(hf).daily()
        await make_source(hf, token=SecretStr("")).daily()
    assert len(hf.requests) == 2
    for request in hf.requests:
        assert request.headers["user-agent"].startswith("paperboy/")
        assert "https://" in request.headers["user-agent"]
        assert "authorization" not in request.headers


async def test_token_is_sent_as_bearer_on_every_endpoint(make_source: MakeSource) -> None:
    async with FakeHuggingFace(load_real_shape_items()) as hf:
        source = make_source(hf, token=SecretStr(TOKEN), user_agent="paperboy-test/1")
        await source.fetch_day(DAY)
        await source.fetch_paper("2509.04664")
        await source.search("hallucinate")
    assert len(hf.requests) == 3
    for request in hf.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["user-agent"] == "paperboy-test/1"


async def test_token_never_reaches_logs_reprs_or_errors(
    make_source: MakeSource, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeHuggingFace(load_real_shape_items()) as hf:
        source = make_source(hf, token=SecretStr(TOKEN))
        hf.fail_next("/api/daily_papers", status=503)
        hf.fail_next("/api/daily_papers", status=429, headers={"Retry-After": "1"})
        hf.fail_next("/api/daily_papers", status=401, json_body={"error": "Invalid credentials"})
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(SourceError) as failure:
                await source.daily(day=DAY)
            await source.daily(day=DAY)
    assert len(sleeps.waits) == 2 and sleeps.waits[1] == 1.0
    assert "Invalid credentials" in str(failure.value)
    assert len(caplog.records) > 3
    for text in (caplog.text, repr(source), str(failure.value), repr(failure.value)):
        assert TOKEN not in text


async def test_a_client_passed_in_is_left_open(make_source: MakeSource) -> None:
    async with FakeHuggingFace([]) as hf, httpx.AsyncClient() as client:
        source = HuggingFaceSource(hf.url, client=client)
        await source.daily()
        await source.close()
        assert not client.is_closed
        response = await client.get(hf.url + "/api/daily_papers")
    assert response.status_code == 200

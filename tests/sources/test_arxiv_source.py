"""ArxivSource over real HTTP against the fake arXiv server: terms, failures, days."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from bot.ports import PaperSource, SourceError
from bot.sources.arxiv import ArxivSource
from bot.sources.http import RetryPolicy
from tests.fakes.arxiv import FakeArxiv, make_entry, render_rss, sample_entries

CL_LG = "/rss/cs.CL+cs.LG"
ANNOUNCED_DAY = date(2024, 1, 9)


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def arxiv(fake_time: FakeTime) -> AsyncIterator[FakeArxiv]:
    async with FakeArxiv(sample_entries(), clock=fake_time.monotonic) as fake:
        yield fake


MakeSource = Callable[..., ArxivSource]


@pytest.fixture
async def make_source(arxiv: FakeArxiv, fake_time: FakeTime) -> AsyncIterator[MakeSource]:
    made: list[ArxivSource] = []

    def build(categories: tuple[str, ...] = ("cs.CL", "cs.LG"), **kwargs: Any) -> ArxivSource:
        kwargs.setdefault("base_url", arxiv.url)
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("clock", fake_time.monotonic)
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("now", lambda: datetime(2024, 1, 9, 14, 0, tzinfo=UTC))
        source = ArxivSource(categories, **kwargs)
        made.append(source)
        return source

    yield build
    for source in made:
        await source.close()


def no_cache(**kwargs: Any) -> dict[str, Any]:
    return {"cache_seconds": 0.0, **kwargs}


async def test_all_categories_in_one_request_new_and_cross_only(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    source = make_source()
    assert isinstance(source, PaperSource) and source.name == "arxiv"
    papers = await source.fetch_new()
    assert [p.id for p in papers] == ["2401.04001", "2401.04002", "2401.03003", "2401.04004"]
    assert all(p.sources == ("arxiv",) and p.upvotes is None for p in papers)
    assert [r.path for r in arxiv.requests] == [CL_LG]
    agent = arxiv.requests[0].headers["user-agent"]
    assert agent.startswith("paperboy/") and "+http" in agent


async def test_a_paper_listed_under_two_categories_comes_once(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.duplicate_across_categories = True
    papers = await make_source().fetch_new()
    assert [p.id for p in papers].count("2401.04001") == 1
    assert len(papers) == len({p.id for p in papers}) == 4


async def test_the_atom_feed_gives_the_same_papers(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    rss = await make_source().fetch_new()
    atom = await make_source(feed_format="atom").fetch_new()
    assert atom == rss
    assert arxiv.requests[-1].path == "/atom/cs.CL+cs.LG"


async def test_a_feed_error_raises_naming_the_unknown_category(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    with pytest.raises(SourceError) as failure:
        await make_source(("cs.CL", "cs.NLP")).fetch_new()
    message = str(failure.value)
    assert "feed error" in message and "unknown category: cs.NLP" in message
    assert "Feed error for query: cs.CL+cs.NLP" in message and "\n" not in message
    assert len(arxiv.requests) == 1  # an answer, not a transient failure: no retry


async def test_a_feed_error_for_a_category_arxiv_has_retired_still_raises(
    fake_time: FakeTime, make_source: MakeSource
) -> None:
    async with FakeArxiv(known_categories=("cs.CL",), clock=fake_time.monotonic) as fake:
        with pytest.raises(SourceError, match="Feed error for query: cs.LG") as failure:
            await make_source(("cs.LG",), base_url=fake.url).fetch_new()
    assert "unknown category" not in str(failure.value)  # cs.LG is in the taxonomy


async def test_the_weekend_feed_is_empty_not_an_error(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.weekend = True
    source = make_source()
    assert await source.fetch_new() == []
    assert await source.fetch_day(ANNOUNCED_DAY) == []


async def test_requests_are_spaced_three_seconds_apart(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    source = make_source(**no_cache())
    for _ in range(3):
        await source.fetch_new()
    assert fake_time.sleeps == [3.0, 3.0]
    times = [r.at for r in arxiv.requests]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [3.0, 3.0]


async def test_time_already_passed_counts_towards_the_spacing(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    source = make_source(**no_cache())
    await source.fetch_new()
    fake_time.now += 2.0
    await source.fetch_new()
    fake_time.now += 5.0
    await source.fetch_new()
    assert fake_time.sleeps == [1.0]


async def test_concurrent_calls_are_serialised_over_one_connection(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    source = make_source(**no_cache())
    results = await asyncio.gather(*(source.fetch_new() for _ in range(4)))
    assert all(len(r) == 4 for r in results)
    assert arxiv.max_in_flight == 1
    times = sorted(r.at for r in arxiv.requests)
    assert len(times) == 4
    assert all(b - a >= 3.0 for a, b in zip(times, times[1:], strict=False))
    assert len({r.peer for r in arxiv.requests}) == 1  # one kept-alive connection


async def test_one_fetch_serves_today_and_yesterday_within_the_cache_window(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    source = make_source(cache_seconds=60.0)
    today = await source.fetch_day(ANNOUNCED_DAY)
    assert await source.fetch_day(date(2024, 1, 8)) == []
    assert len(arxiv.requests) == 1
    fake_time.now += 61.0
    assert await source.fetch_day(ANNOUNCED_DAY) == today
    assert len(arxiv.requests) == 2


async def test_fetch_day_today_is_the_whole_latest_announcement(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.entries.append(
        make_entry("2401.05005", "Late", pub_date="Wed, 10 Jan 2024 00:00:00 -0500")
    )
    tuesday = make_source(**no_cache(now=lambda: datetime(2024, 1, 9, 23, 0, tzinfo=UTC)))
    wednesday = make_source(**no_cache(now=lambda: datetime(2024, 1, 10, 3, 0, tzinfo=UTC)))
    assert len(await tuesday.fetch_day(ANNOUNCED_DAY)) == 5
    assert [p.id for p in await tuesday.fetch_day(date(2024, 1, 10))] == ["2401.05005"]
    # 03:00 UTC Wednesday: arXiv has not rebuilt yet, the latest announcement is Tuesday's
    assert len(await wednesday.fetch_day(date(2024, 1, 10))) == 5
    assert len(await wednesday.fetch_day(ANNOUNCED_DAY)) == 4


async def test_503_is_retried_after_the_server_asked_wait(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    arxiv.fail_next(CL_LG, status=503, headers={"Retry-After": "10"})
    arxiv.fail_next(CL_LG, status=503)
    papers = await make_source(policy=RetryPolicy(base_delay=1.0)).fetch_new()
    assert len(papers) == 4 and len(arxiv.requests) == 3
    assert fake_time.sleeps[0] == 10.0  # Retry-After, already longer than the spacing
    assert 0.0 <= fake_time.sleeps[1] <= 2.0 and fake_time.sleeps[2] >= 0.0
    times = [r.at for r in arxiv.requests]
    assert all(b - a >= 3.0 for a, b in zip(times, times[1:], strict=False))


async def test_503_every_time_gives_one_clear_line(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.fail_next("*", status=503, times=4)
    with pytest.raises(SourceError) as failure:
        await make_source().fetch_new()
    assert str(failure.value) == f"arXiv {CL_LG} answered HTTP 503 after 4 attempts"
    assert len(arxiv.requests) == 4


async def test_a_404_is_not_retried(arxiv: FakeArxiv, make_source: MakeSource) -> None:
    arxiv.fail_next(CL_LG, status=404, body=b"<html>Not Found</html>")
    with pytest.raises(SourceError, match=r"rejected the request \(HTTP 404"):
        await make_source().fetch_new()
    assert len(arxiv.requests) == 1


async def test_bad_xml_is_retried_once_then_reported(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.bad_xml_next(CL_LG)
    assert len(await make_source(**no_cache()).fetch_new()) == 4
    arxiv.bad_xml_next(CL_LG)
    arxiv.html_next(CL_LG)
    with pytest.raises(SourceError, match="unreadable XML"):
        await make_source(**no_cache()).fetch_new()
    assert len(arxiv.requests) == 4


async def test_a_dropped_connection_is_retried(arxiv: FakeArxiv, make_source: MakeSource) -> None:
    arxiv.drop_next(CL_LG)
    assert len(await make_source().fetch_new()) == 4
    assert len(arxiv.requests) == 2


async def test_a_server_that_hangs_times_out(arxiv: FakeArxiv, make_source: MakeSource) -> None:
    arxiv.hang_next("*", times=2)
    source = make_source(timeout=0.2, policy=RetryPolicy(max_attempts=2))
    with pytest.raises(SourceError) as failure:
        await source.fetch_new()
    assert str(failure.value) == "arXiv is unreachable (timed out after 2 attempts)"


async def test_an_unreachable_host_is_one_line(make_source: MakeSource) -> None:
    source = make_source(base_url="http://127.0.0.1:9", policy=RetryPolicy(max_attempts=2))
    with pytest.raises(SourceError, match=r"^arXiv is unreachable \(could not connect"):
        await source.fetch_new()


async def test_a_caller_client_is_left_open(arxiv: FakeArxiv, make_source: MakeSource) -> None:
    async with httpx.AsyncClient() as client:
        source = make_source(client=client)
        await source.fetch_new()
        await source.close()
        assert not client.is_closed


async def test_a_served_feed_with_malformed_items_keeps_the_good_ones(
    arxiv: FakeArxiv, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    body = render_rss([make_entry("2401.00001", "Good")], "cs.CL+cs.LG").replace(
        b"<item>", b"<item><title>no id</title></item><item>", 1
    )
    arxiv.body_next(CL_LG, body)
    papers = await make_source().fetch_new()
    assert [p.id for p in papers] == ["2401.00001"]
    assert "skipped item 0: no arXiv id" in caplog.text


@pytest.mark.parametrize(
    ("categories", "complaint"),
    [((), "at least one"), ((" ",), "at least one"), (("cs CL",), "'cs CL' is not")],
)
def test_bad_category_settings_are_refused(categories: tuple[str, ...], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        ArxivSource(categories)


async def test_categories_are_trimmed_and_deduplicated() -> None:
    source = ArxivSource([" cs.CL", "cs.LG", "cs.CL "], base_url="http://127.0.0.1:1/")
    assert source.path == "/rss/cs.CL+cs.LG"
    assert repr(source) == "ArxivSource('http://127.0.0.1:1/rss/cs.CL+cs.LG')"
    await source.close()


async def test_an_unchanged_feed_is_not_downloaded_again(
    arxiv: FakeArxiv, make_source: MakeSource, fake_time: FakeTime
) -> None:
    source = make_source(**no_cache())
    first = await source.fetch_new()
    assert await source.fetch_new() == first
    assert arxiv.not_modified == 1
    assert arxiv.requests[1].headers["if-none-match"].startswith('"')
    assert "if-none-match" not in arxiv.requests[0].headers
    arxiv.entries.append(make_entry("2401.05005", "Tomorrow", categories=("cs.LG",)))
    assert [p.id for p in await source.fetch_new()][-1] == "2401.05005"
    assert arxiv.not_modified == 1
    assert fake_time.sleeps == [3.0, 3.0]  # a 304 is a request too: spacing applies


async def test_without_validators_every_poll_is_a_full_request(
    arxiv: FakeArxiv, make_source: MakeSource
) -> None:
    arxiv.etags = False
    source = make_source(**no_cache())
    await source.fetch_new()
    await source.fetch_new()
    assert arxiv.not_modified == 0
    assert all("if-none-match" not in r.headers for r in arxiv.requests)

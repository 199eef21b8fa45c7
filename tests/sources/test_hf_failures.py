"""Every failure mode of the Hugging Face API, over real HTTP against the fake server."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.ports import SourceError
from bot.sources.http import RateLimited, RetryPolicy, SourceUnavailable
from bot.sources.huggingface import HuggingFaceSource
from tests.fakes.huggingface import FakeHuggingFace, make_item
from tests.sources.conftest import SleepRecorder

MakeSource = Callable[..., HuggingFaceSource]
DAY = date(2025, 9, 8)
DAILY = "/api/daily_papers"
ITEMS = [make_item(f"2509.{n:05d}", f"Paper {n}", day=DAY, upvotes=n) for n in range(3)]


class UpperBoundRandom(random.Random):
    """Jitter that always picks the largest allowed wait, to observe the backoff curve."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
async def hf() -> AsyncIterator[FakeHuggingFace]:
    async with FakeHuggingFace(ITEMS) as fake:
        yield fake


async def test_429_honours_retry_after_seconds(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=429, headers={"Retry-After": "7"})
    papers = await make_source(hf).daily(day=DAY)
    assert len(papers) == 3
    assert sleeps.waits == [7.0]
    assert len(hf.requests) == 2


async def test_429_honours_retry_after_as_an_http_date(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    now = datetime(2025, 9, 8, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    hf.fail_next(DAILY, status=429, headers={"Retry-After": later})
    await make_source(hf, clock=lambda: now).daily(day=DAY)
    assert sleeps.waits == [42.0]


async def test_429_honours_the_hugging_face_ratelimit_header(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=429, headers={"RateLimit": '"api";r=0;t=55'})
    hf.fail_next(DAILY, status=429, headers={"RateLimit": '"api";r=0;t=3', "Retry-After": "9"})
    await make_source(hf).daily(day=DAY)
    assert sleeps.waits == [55.0, 9.0]


async def test_429_asking_for_too_long_a_wait_fails_at_once(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=429, headers={"RateLimit": '"api";r=0;t=280'})
    with pytest.raises(RateLimited) as failure:
        await make_source(hf).daily(day=DAY)
    assert failure.value.retry_after == 280.0
    assert "rate limiting" in str(failure.value) and "280 s" in str(failure.value)
    assert sleeps.waits == []
    assert len(hf.requests) == 1


async def test_429_without_end_gives_rate_limited_after_all_attempts(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=429, headers={"Retry-After": "2"}, times=4)
    with pytest.raises(RateLimited, match=r"HTTP 429 after 4 attempts") as failure:
        await make_source(hf).daily(day=DAY)
    assert failure.value.retry_after == 2.0
    assert sleeps.waits == [2.0, 2.0, 2.0]
    assert len(hf.requests) == 4


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_then_succeeds(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder, status: int
) -> None:
    hf.fail_next(DAILY, status=status, times=2)
    assert len(await make_source(hf).daily(day=DAY)) == 3
    assert len(hf.requests) == 3
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 1.0 and 0 <= sleeps.waits[1] <= 2.0


async def test_5xx_every_time_ends_in_one_clear_line(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=503, times=4)
    with pytest.raises(SourceError) as failure:
        await make_source(hf).daily(day=DAY)
    message = str(failure.value)
    assert message.startswith("Hugging Face answered HTTP 503 after 4 attempts")
    assert "\n" not in message
    assert len(hf.requests) == 4
    assert len(sleeps.waits) == 3


async def test_backoff_grows_exponentially_up_to_its_cap(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=3.0)
    hf.fail_next(DAILY, status=500, times=6)
    with pytest.raises(SourceError, match="after 6 attempts"):
        await make_source(hf, policy=policy, rng=UpperBoundRandom()).daily(day=DAY)
    assert sleeps.waits == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_full_jitter_stays_within_the_backoff_bounds(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=1.0, max_delay=20.0)
    hf.fail_next(DAILY, status=502, times=8)
    with pytest.raises(SourceError):
        await make_source(hf, policy=policy, rng=random.Random(1234)).daily(day=DAY)
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert len(sleeps.waits) == len(ceilings)
    assert all(0.0 <= w <= c for w, c in zip(sleeps.waits, ceilings, strict=True))
    assert len(set(sleeps.waits)) == len(sleeps.waits)  # jittered, not a fixed schedule


async def test_a_server_that_hangs_times_out(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.hang_next(DAILY, times=4)
    with pytest.raises(SourceError) as failure:
        await make_source(hf, timeout=0.1).daily(day=DAY)
    assert str(failure.value) == "Hugging Face is unreachable (timed out after 4 attempts)"
    assert isinstance(failure.value, SourceUnavailable)  # asking again now would not help
    assert len(sleeps.waits) == 3


class PatientAfterTheFirst(httpx.AsyncBaseTransport):
    """Real HTTP; the first request keeps the client's timeout, the next ones get
    ``patience`` seconds (so an answer that must arrive does, however loaded the machine)."""

    def __init__(self, patience: float = 5.0) -> None:
        self._http = httpx.AsyncHTTPTransport()
        self._patience = httpx.Timeout(patience).as_dict()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > 1:
            request.extensions["timeout"] = self._patience
        return await self._http.handle_async_request(request)

    async def aclose(self) -> None:
        await self._http.aclose()


async def test_one_slow_answer_is_retried(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.hang_next(DAILY)
    transport = PatientAfterTheFirst()
    async with httpx.AsyncClient(transport=transport) as client:
        source = make_source(hf, timeout=0.1, client=client)  # the hung request: 0.1 s
        assert len(await source.daily(day=DAY)) == 3
    assert transport.sent == len(hf.requests) == 2
    assert len(sleeps.waits) == 1


async def test_a_dropped_connection_is_retried(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.drop_next(DAILY)
    assert len(await make_source(hf).daily(day=DAY)) == 3
    assert len(sleeps.waits) == 1


async def test_nothing_listening_is_unreachable(
    make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError) as failure:
        await make_source(f"http://127.0.0.1:{port}").fetch_day(DAY)
    assert str(failure.value) == "Hugging Face is unreachable (could not connect after 4 attempts)"
    assert len(sleeps.waits) == 3


async def test_an_html_page_with_200_is_retried_once(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.html_next(DAILY)
    assert len(await make_source(hf).daily(day=DAY)) == 3
    assert len(hf.requests) == 2


async def test_an_html_page_twice_is_a_clear_error(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.html_next(DAILY, times=2)
    with pytest.raises(SourceError) as failure:
        await make_source(hf).daily(day=DAY)
    assert str(failure.value) == (
        "Hugging Face answered an HTML page instead of JSON (HTTP 200, /api/daily_papers)"
    )
    assert len(hf.requests) == 2


async def test_an_html_page_with_502_is_retried_like_any_5xx(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.html_next(DAILY, status=502, times=4)
    with pytest.raises(SourceUnavailable, match="answered HTTP 502 after 4 attempts"):
        await make_source(hf).daily(day=DAY)
    assert len(hf.requests) == 4


async def test_truncated_json_is_retried_once_then_reported(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.truncate_next(DAILY)
    assert len(await make_source(hf).daily(day=DAY)) == 3
    hf.truncate_next(DAILY, times=2)
    with pytest.raises(SourceError, match="truncated or malformed JSON") as failure:
        await make_source(hf).daily(day=DAY)
    assert not isinstance(failure.value, SourceUnavailable)  # it answered: a bad day


async def test_an_empty_200_body_is_reported(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=200, body=b"", times=2)
    with pytest.raises(SourceError, match="empty body"):
        await make_source(hf).daily(day=DAY)


async def test_json_that_is_not_a_list_is_a_clear_error(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=200, json_body={"papers": []})
    with pytest.raises(SourceError, match="where a list of papers was expected"):
        await make_source(hf).daily(day=DAY)
    assert sleeps.waits == []


async def test_an_invalid_date_is_a_400_and_not_retried(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    with pytest.raises(SourceError) as failure:
        await make_source(hf).daily(week="2025-W99")
    assert str(failure.value) == (
        "Hugging Face rejected the request (HTTP 400, /api/daily_papers): Invalid date"
    )
    assert len(hf.requests) == 1
    assert sleeps.waits == []


@pytest.mark.parametrize("status", [401, 403, 404, 422])
async def test_other_client_errors_are_not_retried(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder, status: int
) -> None:
    hf.fail_next(DAILY, status=status, body="<html>nope</html>")
    with pytest.raises(SourceError, match=f"rejected the request \\(HTTP {status},"):
        await make_source(hf).daily(day=DAY)
    assert len(hf.requests) == 1


async def test_paper_lookup_and_search_retry_too(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    source = make_source(hf)
    hf.fail_next("/api/papers/*", status=500)
    hf.fail_next("/api/papers/search", status=429, headers={"Retry-After": "1"})
    paper = await source.fetch_paper("2509.00001")
    found = await source.search("Paper")
    assert paper is not None and paper.id == "2509.00001"
    assert {p.id for p in found} == {"2509.00000", "2509.00001", "2509.00002"}
    assert len(sleeps.waits) == 2 and sleeps.waits[1] == 1.0


async def test_failures_in_the_middle_of_paging_are_retried(
    make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    items = [make_item(f"2509.{n:05d}", f"Paper {n}", day=DAY) for n in range(230)]
    async with FakeHuggingFace(items) as fake:
        source = make_source(fake)
        original = fake._next_script

        def fail_page_two(path: str):  # type: ignore[no-untyped-def]
            if len(fake.requests) == 2:
                fake.fail_next(DAILY, status=503)
            return original(path)

        fake._next_script = fail_page_two  # type: ignore[method-assign]
        papers = await source.fetch_day(DAY)
    assert len({p.id for p in papers}) == 230
    assert [r.query["p"] for r in fake.requests] == ["0", "1", "1", "2"]


async def test_a_single_attempt_gives_up_without_sleeping(
    hf: FakeHuggingFace, make_source: MakeSource, sleeps: SleepRecorder
) -> None:
    hf.fail_next(DAILY, status=500)
    with pytest.raises(SourceError, match=r"answered HTTP 500 after 1 attempt \("):
        await make_source(hf, max_attempts=1).daily(day=DAY)
    assert sleeps.waits == []

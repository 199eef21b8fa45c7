"""The fake Hugging Face server itself: other suites rely on its semantics."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from tests.fakes.huggingface import FakeHuggingFace, load_seed_items, make_item


def _ids(response: httpx.Response) -> list[str]:
    return [item["paper"]["id"] for item in response.json()]


async def test_the_fixture_serves_the_seed_corpus(fake_hf: FakeHuggingFace) -> None:
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        newest = await client.get("/api/daily_papers")
        trending = await client.get("/api/daily_papers", params={"sort": "trending", "limit": 500})
    assert newest.status_code == 200
    assert newest.headers["content-type"].startswith("application/json")
    assert len(newest.json()) == 50
    published = [item["publishedAt"] for item in newest.json()]
    assert published == sorted(published, reverse=True)
    seed = load_seed_items()
    assert published[0] == max(item["publishedAt"] for item in seed)
    upvotes = [item["paper"]["upvotes"] for item in trending.json()]
    assert len(upvotes) == 100  # limit is clamped like the real API
    assert upvotes == sorted(upvotes, reverse=True)
    assert upvotes[0] == max(item["paper"]["upvotes"] for item in seed)


async def test_date_week_month_windows_and_pages() -> None:
    items = [
        make_item("2509.00001", "Sunday before", day="2025-09-07"),
        make_item("2509.00002", "Monday", day="2025-09-08"),
        make_item("2509.00003", "Monday too", day="2025-09-08"),
        make_item("2509.00004", "Sunday", day="2025-09-14"),
        make_item("2509.00005", "Next Tuesday", day="2025-09-16"),
        make_item("2510.00006", "October", day="2025-10-01"),
    ]
    async with (
        FakeHuggingFace(items) as hf,
        httpx.AsyncClient(base_url=hf.url) as client,
    ):
        day = await client.get("/api/daily_papers", params={"date": "2025-09-08"})
        week = await client.get("/api/daily_papers", params={"week": "2025-W37"})
        month = await client.get("/api/daily_papers", params={"month": "2025-09"})
        page_1 = await client.get(
            "/api/daily_papers", params={"date": "2025-09-08", "limit": 1, "p": 1}
        )
        past_end = await client.get("/api/daily_papers", params={"date": "2025-09-08", "p": 1})
    assert sorted(_ids(day)) == ["2509.00002", "2509.00003"]
    # windows are one day wider each side, like the real API: deduplicate downstream
    assert sorted(_ids(week)) == ["2509.00001", "2509.00002", "2509.00003", "2509.00004"]
    assert sorted(_ids(month)) == [f"2509.0000{n}" for n in range(1, 6)] + ["2510.00006"]
    assert len(_ids(page_1)) == 1
    assert past_end.json() == []


@pytest.mark.parametrize(
    "params",
    [
        {"date": "2025-13-01"},
        {"date": "yesterday"},
        {"week": "2025-W60"},
        {"month": "2025-9"},
        {"p": "-1"},
        {"limit": "lots"},
        {"sort": "hot"},
    ],
)
async def test_bad_parameters_are_400_with_an_error_object(
    fake_hf: FakeHuggingFace, params: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        response = await client.get("/api/daily_papers", params=params)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


async def test_single_paper_and_search(fake_hf: FakeHuggingFace) -> None:
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        paper = await client.get("/api/papers/seed-0001")
        missing = await client.get("/api/papers/2501.00000")
        found = await client.get("/api/papers/search", params={"q": "Diffusion VIDEO", "limit": 4})
        unknown = await client.get("/api/nothing")
    assert paper.json()["id"] == "seed-0001" and "paper" not in paper.json()
    assert missing.status_code == 404
    assert len(found.json()) == 4
    for item in found.json():
        text = (item["paper"]["title"] + item["paper"]["summary"]).lower()
        assert "diffusion" in text and "video" in text
    assert unknown.status_code == 404


async def test_scripts_are_consumed_in_order_per_path(fake_hf: FakeHuggingFace) -> None:
    fake_hf.fail_next("/api/daily_papers", status=429, headers={"Retry-After": "3"})
    fake_hf.html_next("/api/daily_papers", status=502)
    fake_hf.fail_next("*", status=500)
    fake_hf.truncate_next("/api/papers/*")
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        first = await client.get("/api/daily_papers")
        second = await client.get("/api/daily_papers")
        third = await client.get("/api/papers/search", params={"q": "x"})
        fourth = await client.get("/api/papers/seed-0002")
        fifth = await client.get("/api/daily_papers")
    assert (first.status_code, first.headers["retry-after"]) == (429, "3")
    assert second.status_code == 502 and second.text.startswith("<!DOCTYPE html>")
    assert third.status_code == 500
    assert fourth.status_code == 200 and fourth.text.startswith('{"id": "seed-0002"')
    with pytest.raises(ValueError):
        fourth.json()
    assert fifth.status_code == 200 and len(fifth.json()) == 50


async def test_requests_are_recorded_with_query_and_headers(fake_hf: FakeHuggingFace) -> None:
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        await client.get(
            "/api/daily_papers", params={"date": "2025-01-02"}, headers={"X-Probe": "yes"}
        )
    (request,) = fake_hf.requests_to("/api/daily_papers")
    assert request.method == "GET"
    assert request.query == {"date": "2025-01-02"}
    assert request.headers["x-probe"] == "yes"


async def test_items_added_later_are_served(fake_hf: FakeHuggingFace) -> None:
    fake_hf.add_items([make_item("2511.00001", "Fresh", day=date(2030, 1, 1))])
    async with httpx.AsyncClient(base_url=fake_hf.url) as client:
        response = await client.get("/api/daily_papers", params={"date": "2030-01-01"})
    assert _ids(response) == ["2511.00001"]


async def test_badly_typed_items_do_not_break_the_fake() -> None:
    items = [
        {"paper": {"id": 5, "upvotes": "many", "submittedOnDailyAt": 7}},
        {"paper": "not an object"},
        "not even an item",
        make_item("2509.00001", "Good", upvotes=3),
    ]
    async with (
        FakeHuggingFace(items) as hf,
        httpx.AsyncClient(base_url=hf.url) as client,
    ):
        everything = await client.get("/api/daily_papers", params={"sort": "trending"})
        search = await client.get("/api/papers/search", params={"q": "good"})
        lookup = await client.get("/api/papers/2509.00001")
    assert len(everything.json()) == 4
    assert _ids(search) == ["2509.00001"]
    assert lookup.json()["title"] == "Good"

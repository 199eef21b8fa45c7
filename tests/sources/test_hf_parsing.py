"""Parsing Hugging Face items into papers: real shapes, bad items, arbitrary JSON."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Author
from bot.ports import SourceError
from bot.sources.huggingface import parse_daily_items, parse_paper_object
from tests.fakes.huggingface import load_seed_items, make_item
from tests.sources.conftest import load_real_shape_items


def test_real_shape_items_map_every_field() -> None:
    papers, skipped = parse_daily_items(load_real_shape_items())

    assert [p.id for p in papers] == ["2509.04664", "2509.02547", "2509.06160"]
    hallucinate = papers[0]
    assert hallucinate.title == "Why Language Models Hallucinate"
    assert hallucinate.abstract.startswith("Like students facing hard exam questions")
    assert hallucinate.authors == (
        Author("Adam Tauman Kalai"),
        Author("Ofir Nachum"),
        Author("Santosh S. Vempala"),
        Author("Edwin Zhang"),  # hidden only hides the HF account link, not the name
    )
    assert hallucinate.published_at == datetime(2025, 9, 4, 21, 26, 31, tzinfo=UTC)
    assert hallucinate.submitted_at == datetime(2025, 9, 8, 2, 44, 20, 973000, tzinfo=UTC)
    assert hallucinate.upvotes == 26
    assert hallucinate.comments == 2
    assert hallucinate.ai_summary is not None and "reward guessing" in hallucinate.ai_summary
    assert hallucinate.ai_keywords[:2] == ("hallucinations", "binary classification")
    assert hallucinate.github_repo is None
    assert hallucinate.github_stars is None
    assert hallucinate.project_page == "https://openai.com/index/why-language-models-hallucinate/"
    assert hallucinate.thumbnail is not None and hallucinate.thumbnail.endswith("2509.04664.png")
    assert hallucinate.organization == "OpenAI"
    assert hallucinate.sources == ("huggingface",)
    assert hallucinate.url == "https://huggingface.co/papers/2509.04664"


def test_version_is_stripped_and_offsets_become_utc() -> None:
    papers, _ = parse_daily_items(load_real_shape_items())
    survey = papers[1]
    assert survey.id == "2509.02547"
    assert survey.github_repo == "https://github.com/xhyumiracle/Awesome-AgenticLLM-RL-Papers"
    assert survey.github_stars == 312
    assert survey.project_page is None
    assert survey.organization is None
    assert survey.published_at is not None and survey.published_at.tzinfo == UTC


def test_sparse_item_gets_empty_defaults() -> None:
    papers, _ = parse_daily_items(load_real_shape_items())
    sparse = papers[2]
    assert sparse.authors == ()
    assert sparse.abstract == ""
    assert sparse.ai_keywords == ()
    assert sparse.ai_summary is None
    assert sparse.upvotes == 0


def test_withdrawn_and_badly_typed_items_are_skipped_with_their_id() -> None:
    _, skipped = parse_daily_items(load_real_shape_items())
    assert len(skipped) == 2
    assert "2509.01111" in skipped[0] and "withdrawn" in skipped[0]
    assert "2509.05000" in skipped[1] and "upvotes" in skipped[1]


def _good(paper_id: str = "2401.00001") -> dict[str, Any]:
    return make_item(paper_id, "A good paper", upvotes=5)


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda i: i["paper"].__setitem__("upvotes", "many"), "upvotes"),
        (lambda i: i["paper"].__setitem__("authors", "Ada Lovelace, Alan Turing"), "authors"),
        (lambda i: i["paper"].__setitem__("title", 42), "title"),
        (lambda i: i["paper"].__setitem__("publishedAt", "yesterday"), "publishedAt"),
        (lambda i: i["paper"].__setitem__("ai_keywords", "one, two"), "ai_keywords"),
        (lambda i: i.__setitem__("numComments", "a few"), "numComments"),
        (lambda i: i.__setitem__("organization", "Acme"), "organization"),
        (lambda i: (i["paper"].pop("title"), i.pop("title")), "no title"),
        (lambda i: (i["paper"].update(title="  \n "), i.update(title="\t")), "no title"),
        (lambda i: i["paper"].__setitem__("id", "  "), "id"),
    ],
)
def test_a_bad_item_is_skipped_and_its_neighbours_survive(corrupt: Any, reason: str) -> None:
    bad = _good("2401.99999")
    corrupt(bad)
    papers, skipped = parse_daily_items([_good("2401.00001"), bad, _good("2401.00002")])
    assert [p.id for p in papers] == ["2401.00001", "2401.00002"]
    assert len(skipped) == 1
    assert reason in skipped[0]
    assert "item 1" in skipped[0]


@pytest.mark.parametrize("junk", [None, 7, "paper", [], {"id": "x"}, {"paper": "2401.1"}])
def test_items_that_are_not_objects_are_skipped(junk: object) -> None:
    papers, skipped = parse_daily_items([junk, _good()])
    assert [p.id for p in papers] == ["2401.00001"]
    assert len(skipped) == 1 and skipped[0].startswith("item 0")
    assert "instance of" not in skipped[0]  # pydantic's words for its model, not JSON's
    if not isinstance(junk, dict):
        assert skipped[0] == "item 0: item: should be a JSON object"


def test_missing_paper_title_falls_back_to_the_item_title() -> None:
    item = _good()
    del item["paper"]["title"]
    item["title"] = "Top-level\ttitle"
    papers, skipped = parse_daily_items([item])
    assert skipped == []
    assert papers[0].title == "Top-level title"


def test_nulls_and_unknown_fields_are_tolerated() -> None:
    item = _good()
    item["paper"].update(
        ai_summary=None, ai_keywords=None, authors=None, upvotes=None, brandNewField={"x": 1}
    )
    item.update(numComments=None, organization=None, thumbnail=None, anotherNewField=[1, 2])
    item["paper"]["authors"] = [{"_id": "x"}, {"name": "  Grace   Hopper "}, {"name": ""}]
    papers, skipped = parse_daily_items([item])
    assert skipped == []
    paper = papers[0]
    assert paper.authors == (Author("Grace Hopper"),)
    assert (paper.upvotes, paper.comments, paper.thumbnail, paper.ai_keywords) == (
        None,
        None,
        None,
        (),
    )


def test_naive_datetimes_are_read_as_utc_and_offsets_converted() -> None:
    item = _good()
    item["paper"]["publishedAt"] = "2025-09-04T21:26:31"
    item["paper"]["submittedOnDailyAt"] = "2025-09-08T04:44:20+02:00"
    paper = parse_daily_items([item])[0][0]
    assert paper.published_at == datetime(2025, 9, 4, 21, 26, 31, tzinfo=UTC)
    assert paper.submitted_at == datetime(2025, 9, 8, 2, 44, 20, tzinfo=UTC)
    assert paper.submitted_at.utcoffset() == timedelta(0)


def test_organization_falls_back_to_its_name() -> None:
    item = _good()
    item["organization"] = {"name": "deepmind"}
    assert parse_daily_items([item])[0][0].organization == "deepmind"


@pytest.mark.parametrize("raw", [None, {}, {"error": "Invalid date"}, "[]", 3, True])
def test_a_body_that_is_not_a_list_raises_source_error(raw: object) -> None:
    with pytest.raises(SourceError, match="list") as raised:
        parse_daily_items(raw)
    kind = {type(None): "null", dict: "object", str: "string", int: "number", bool: "boolean"}
    assert f"answered a JSON {kind[type(raw)]} " in str(raised.value)


def test_the_whole_seed_corpus_parses() -> None:
    items = load_seed_items()
    papers, skipped = parse_daily_items(items)
    assert skipped == []
    assert len(papers) == len(items) == 503
    assert len({p.id for p in papers}) == 503
    assert all(p.submitted_at is not None and p.submitted_at.tzinfo == UTC for p in papers)


def test_paper_object_parses_like_the_wrapped_paper() -> None:
    item = load_real_shape_items()[0]
    paper = parse_paper_object(item["paper"])
    wrapped = parse_daily_items([item])[0][0]
    assert paper.id == wrapped.id == "2509.04664"
    assert paper.title == wrapped.title
    assert paper.authors == wrapped.authors
    assert paper.ai_keywords == wrapped.ai_keywords
    assert paper.comments is None  # only the daily item carries numComments


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "2509.04664",
        {"title": "no id"},
        {"id": "2509.04664", "title": None},
        {"id": "2509.04664", "title": "t", "upvotes": "lots"},
    ],
)
def test_malformed_paper_objects_raise_source_error(raw: object) -> None:
    with pytest.raises(SourceError, match="malformed"):
        parse_paper_object(raw)


def test_withdrawn_paper_object_raises_source_error() -> None:
    raw = copy.deepcopy(load_real_shape_items()[3]["paper"])
    with pytest.raises(SourceError, match="withdrawn"):
        parse_paper_object(raw)


# --- properties ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["paper", "id", "title", "upvotes", "authors", "publishedAt", "x"])
            | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_raises_except_for_non_lists(raw: object) -> None:
    if not isinstance(raw, list):
        with pytest.raises(SourceError):
            parse_daily_items(raw)
        return
    papers, skipped = parse_daily_items(raw)
    assert len(papers) + len(skipped) == len(raw)


@settings(max_examples=100)
@given(st.lists(json_values, max_size=5))
def test_arbitrary_items_alongside_a_good_one_never_hide_it(junk: list[object]) -> None:
    papers, skipped = parse_daily_items([*junk, _good("2401.77777")])
    assert papers and papers[-1].id == "2401.77777"
    assert len(papers) + len(skipped) == len(junk) + 1


words = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1
).filter(lambda s: s.split())
optional_text = st.none() | words
aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def well_formed_items(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid item with random optional fields, and the values the paper must carry."""
    number = draw(st.integers(min_value=1, max_value=99999))
    version = draw(st.sampled_from(["", "v1", "v3"]))
    paper_id = f"24{number % 100:02d}.{number:05d}"
    title = draw(words)
    authors = draw(st.lists(words, max_size=4))
    published = draw(aware_datetimes)
    upvotes = draw(st.none() | st.integers(min_value=0, max_value=10**6))
    comments = draw(st.none() | st.integers(min_value=0, max_value=10**4))
    keywords = draw(st.lists(words, max_size=4))
    github = draw(optional_text)
    offset = draw(st.sampled_from([UTC, timezone(timedelta(hours=-5)), UTC]))
    paper: dict[str, Any] = {
        "id": paper_id + version,
        "title": f"  {title}\n",
        "authors": [
            {"_id": str(i), "name": a, "hidden": i % 2 == 0} for i, a in enumerate(authors)
        ],
        "publishedAt": published.astimezone(offset).isoformat(),
        "upvotes": upvotes,
        "ai_keywords": keywords,
        "extra": draw(json_values),
    }
    if github is not None:
        paper["githubRepo"] = github
    item: dict[str, Any] = {"paper": paper, "numComments": comments}
    expected = {
        "id": paper_id,
        "title": " ".join(title.split()),
        "authors": tuple(" ".join(a.split()) for a in authors),
        "published_at": published,
        "upvotes": upvotes,
        "comments": comments,
        "ai_keywords": tuple(" ".join(k.split()) for k in keywords),
        "github_repo": " ".join(github.split()) if github else None,
    }
    return item, expected


@settings(max_examples=100)
@given(st.lists(well_formed_items(), max_size=6))
def test_every_well_formed_item_survives_with_its_fields(
    cases: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    papers, skipped = parse_daily_items([item for item, _ in cases])
    assert skipped == []
    assert len(papers) == len(cases)
    for paper, (_, expected) in zip(papers, cases, strict=True):
        assert paper.id == expected["id"]
        assert paper.title == expected["title"]
        assert paper.author_names == expected["authors"]
        assert paper.published_at == expected["published_at"]
        assert paper.upvotes == expected["upvotes"]
        assert paper.comments == expected["comments"]
        assert paper.ai_keywords == expected["ai_keywords"]
        assert paper.github_repo == expected["github_repo"]

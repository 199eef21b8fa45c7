"""Parsing arXiv category feeds (RSS 2.0 and Atom): fixtures, bad input, properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Author, normalize_paper_id
from bot.sources.arxiv import KNOWN_CATEGORIES, FeedResult, parse_feed, unknown_categories
from bot.sources.huggingface import parse_daily_items
from tests.fakes.arxiv import make_entry, render_atom, render_feed_error, render_rss
from tests.fakes.huggingface import make_item

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ANNOUNCED = datetime(2024, 1, 9, 5, 0, tzinfo=UTC)  # Tue, 09 Jan 2024 00:00:00 -0500


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_the_real_rss_shape_keeps_new_and_cross_and_strips_versions() -> None:
    feed = parse_feed(fixture("arxiv_rss_cs_CL.xml"))
    assert feed.error is None and not feed.empty and feed.skipped == []
    assert [p.id for p in feed.papers] == ["2401.04123", "2401.04187", "2401.03990"]
    assert feed.revisions == 2  # the replace and replace-cross items
    first = feed.papers[0]
    assert first.title == (
        "Chain-of-Thought Distillation for Small Language Models: A Study of Faithfulness"
    )
    assert first.abstract.startswith("Large language models reason step by step;")
    assert "Announce Type" not in first.abstract and "arXiv:" not in first.abstract
    assert "1B\u20137B" in first.abstract and "GSM8K & 8.1" in first.abstract
    assert first.abstract.endswith("(p < 0.01).")
    assert first.authors == (
        Author("Mei Lin"),
        Author("José Ramírez"),
        Author("Zoë Müller"),
        Author("Aarav Sharma"),
    )
    assert first.published_at == ANNOUNCED
    assert first.sources == ("arxiv",)
    assert first.upvotes is None and first.ai_keywords == () and first.submitted_at is None
    assert first.url == "https://arxiv.org/abs/2401.04123"


def test_the_atom_variant_gives_the_same_papers() -> None:
    rss = parse_feed(fixture("arxiv_rss_cs_CL.xml"))
    atom = parse_feed(fixture("arxiv_atom_cs_CL.xml"))
    assert atom.error is None and atom.revisions == 2
    assert atom.papers == rss.papers


def test_text_input_parses_like_bytes() -> None:
    raw = fixture("arxiv_rss_cs_CL.xml")
    assert parse_feed(raw.decode("utf-8")).papers == parse_feed(raw).papers


def test_the_fakes_renderers_match_the_hand_written_fixtures() -> None:
    """The fake server speaks the same shape as the fixtures written from the real feed."""
    expected = parse_feed(fixture("arxiv_rss_cs_CL.xml")).papers
    entries = [
        make_entry(
            p.id,
            p.title,
            version=2 if p.id == "2401.03990" else 1,
            announce_type="cross" if p.id == "2401.03990" else "new",
            abstract=p.abstract,
            authors=p.author_names,
        )
        for p in expected
    ]
    assert parse_feed(render_rss(entries, "cs.CL")).papers == expected
    assert parse_feed(render_atom(entries, "cs.CL")).papers == expected


@pytest.mark.parametrize(
    "body",
    [
        fixture("arxiv_rss_feed_error.xml"),
        render_feed_error("cs.NLP"),
        render_feed_error("cs.NLP", fmt="atom"),
    ],
)
def test_a_feed_error_is_an_error_not_an_empty_day(body: bytes) -> None:
    feed = parse_feed(body)
    assert feed.papers == [] and not feed.empty and not feed.malformed
    assert feed.error is not None and feed.error.startswith("Feed error for query")
    assert "cs.NLP" in feed.error


def test_the_weekend_feed_is_empty_without_error() -> None:
    assert parse_feed(fixture("arxiv_rss_weekend.xml")) == FeedResult(empty=True)
    assert parse_feed(render_atom([], "cs.CL")) == FeedResult(empty=True)


def test_a_feed_of_only_revisions_is_not_empty() -> None:
    body = render_rss([make_entry("2301.00001", "Old", version=4, announce_type="replace")], "x")
    feed = parse_feed(body)
    assert feed.papers == [] and feed.revisions == 1 and not feed.empty and feed.error is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (fixture("arxiv_rss_cs_CL.xml")[:1500], "unreadable XML"),
        (b"", "unreadable XML"),
        (b"<!DOCTYPE html><html><body>503</body></html>", "DOCTYPE"),
        (b'<?xml version="1.0"?><error>maintenance</error>', "not an RSS or Atom feed"),
        (b"<rss version='2.0'></rss>", "not an RSS or Atom feed"),
        (b'<?xml version="1.0" encoding="bogus"?><rss/>', "unreadable XML"),
        (
            b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><rss><channel>'
            b"<title>&b;</title></channel></rss>",
            "DOCTYPE",
        ),
        ("<rss><channel><title>\ud800</title></channel></rss>", "unreadable XML"),
    ],
)
def test_bad_documents_give_an_error_and_never_raise(body: bytes | str, says: str) -> None:
    feed = parse_feed(body)
    assert feed.papers == [] and feed.malformed
    assert feed.error is not None and says in feed.error


def _one_item(**fields: str) -> bytes:
    parts = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0"><channel>'
        "<title>cs.CL updates on arXiv.org</title>"
        "<pubDate>Wed, 10 Jan 2024 00:00:00 -0500</pubDate>"
        f"<item>{parts}</item>"
        "<item><title>Good</title><guid>oai:arXiv.org:2401.00002v1</guid>"
        "<arxiv:announce_type>new</arxiv:announce_type></item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": "No id", "guid": "urn:something-else"}, "no arXiv id"),
        ({"title": "No id at all"}, "no arXiv id"),
        ({"guid": "oai:arXiv.org:2401.00001v1"}, "2401.00001: no title"),
        ({"title": "  ", "link": "https://arxiv.org/abs/2401.00001"}, "no title"),
        (
            {"title": "T", "guid": "oai:arXiv.org:2401.00001v1", "arxiv:announce_type": "odd"},
            "unknown announce type 'odd'",
        ),
    ],
)
def test_a_malformed_item_is_skipped_with_a_line(fields: dict[str, str], reason: str) -> None:
    feed = parse_feed(_one_item(**fields))
    assert [p.id for p in feed.papers] == ["2401.00002"]
    assert len(feed.skipped) == 1
    assert feed.skipped[0].startswith("item 0: ") and reason in feed.skipped[0]


def test_the_id_comes_from_the_link_when_the_guid_is_missing() -> None:
    feed = parse_feed(_one_item(title="T", link="https://arxiv.org/abs/2401.00001"))
    assert [p.id for p in feed.papers] == ["2401.00001", "2401.00002"]
    typed = _one_item(
        title="T",
        link="https://arxiv.org/abs/2401.00001v3",
        **{"arxiv:announce_type": "cross"},
    )
    assert [p.id for p in parse_feed(typed).papers] == ["2401.00001", "2401.00002"]


def test_old_style_ids_lose_their_version_too() -> None:
    feed = parse_feed(
        _one_item(
            title="T", guid="oai:arXiv.org:hep-th/9901001v2", **{"arxiv:announce_type": "cross"}
        )
    )
    assert feed.papers[0].id == "hep-th/9901001"


def test_a_missing_announce_type_is_read_from_the_description_or_the_version() -> None:
    replaced = parse_feed(
        _one_item(
            title="T",
            guid="oai:arXiv.org:2401.00001v2",
            description="arXiv:2401.00001v2 Announce Type: replace-cross \nAbstract: x",
        )
    )
    assert [p.id for p in replaced.papers] == ["2401.00002"] and replaced.revisions == 1
    revised = parse_feed(_one_item(title="T", guid="oai:arXiv.org:2401.00001v2"))
    assert revised.revisions == 1
    first_version = parse_feed(_one_item(title="T", guid="oai:arXiv.org:2401.00001v1"))
    assert [p.id for p in first_version.papers] == ["2401.00001", "2401.00002"]


def test_a_bad_item_date_falls_back_to_the_channel_date() -> None:
    feed = parse_feed(_one_item(title="T", guid="oai:arXiv.org:2401.00001v1", pubDate="soon"))
    assert feed.papers[0].published_at == datetime(2024, 1, 10, 5, 0, tzinfo=UTC)


def test_several_creator_elements_and_atom_authors_are_all_kept() -> None:
    body = _one_item(
        title="T", guid="oai:arXiv.org:2401.00001v1", **{"dc:creator": "A One, B  Two"}
    ).replace(b"</dc:creator>", b"</dc:creator><dc:creator>C Three</dc:creator>", 1)
    assert parse_feed(body).papers[0].author_names == ("A One", "B Two", "C Three")
    atom = render_atom([make_entry("2401.00001", "T", authors=())], "cs.CL").replace(
        b"<dc:creator></dc:creator>", b"<author><name>Dana Four</name></author>"
    )
    assert parse_feed(atom).papers[0].author_names == ("Dana Four",)


def test_the_same_paper_from_hugging_face_and_arxiv_has_the_same_id() -> None:
    hf_papers, _ = parse_daily_items([make_item("2401.04123v2", "Chain-of-Thought Distillation")])
    arxiv_papers = parse_feed(fixture("arxiv_rss_cs_CL.xml")).papers
    assert hf_papers[0].id == arxiv_papers[0].id == normalize_paper_id("arXiv:2401.04123v7")


def test_unknown_categories_names_the_ones_outside_the_taxonomy() -> None:
    assert unknown_categories(["cs.CL", "cs.NLP", "stat.ML", "hep-th", "cond-mat.str-el"]) == [
        "cs.NLP"
    ]
    assert {"cs.LG", "eess.AS", "math.OC", "astro-ph.CO", "quant-ph"} <= KNOWN_CATEGORIES


# --- properties ---

_XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\r"),
    max_size=60,
)
_NAME = _XML_TEXT.filter(lambda s: "," not in s)
_ENTRY = st.builds(
    make_entry,
    st.from_regex(r"\A(?:[0-9]{4}\.[0-9]{5}|[a-z]{2,8}(?:-[a-z]{2,4})?/[0-9]{7})\Z"),
    _XML_TEXT.filter(lambda s: s.strip() != ""),
    version=st.integers(1, 30),
    announce_type=st.sampled_from(["new", "cross", "replace", "replace-cross"]),
    abstract=_XML_TEXT,
    authors=st.lists(_NAME, max_size=4),
)
_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.lists(_ENTRY, max_size=6), st.sampled_from([render_rss, render_atom]))
def test_every_well_formed_item_survives(
    entries: list[dict[str, Any]], render: Callable[..., bytes]
) -> None:
    feed = parse_feed(render(entries, "cs.CL"))
    assert feed.error is None and feed.skipped == [] and feed.empty == (not entries)
    kept = [e for e in entries if e["announce_type"] in ("new", "cross")]
    assert feed.revisions == len(entries) - len(kept)
    assert [p.id for p in feed.papers] == [e["id"] for e in kept]
    for paper, entry in zip(feed.papers, kept, strict=True):
        assert paper.title == " ".join(entry["title"].split())
        assert paper.abstract == entry["abstract"].strip()
        names = (" ".join(n.split()) for n in entry["authors"])
        assert paper.author_names == tuple(n for n in names if n)
        assert paper.published_at == ANNOUNCED


@_FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    feed = parse_feed(body)
    assert feed.error is not None or feed.papers == []


@_FAST
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(body: str) -> None:
    assert isinstance(parse_feed(body), FeedResult)


@_FAST
@given(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 10_000))
def test_damaged_real_feeds_never_raise(position: int, byte: int, cut: int) -> None:
    real = bytearray(fixture("arxiv_rss_cs_CL.xml"))
    real[position % len(real)] = byte
    feed = parse_feed(bytes(real[: len(real) - cut % len(real)]))
    assert feed.error is not None or all(p.id and p.title for p in feed.papers)

"""Papers as stored rows: validation at the store's edge, merging on upsert, decoding.

Storage conventions (both databases): JSON text for lists (authors, ai_keywords,
sources); datetimes UTC. SQLite keeps datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` text
(SQLAlchemy's own format, so Core queries read them back), PostgreSQL as timestamptz.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from bot.models import Author, Paper

INT64_MAX = 2**63 - 1
TEXT_FIELDS = (
    "title",
    "abstract",
    "ai_summary",
    "github_repo",
    "project_page",
    "thumbnail",
    "organization",
)
COUNTER_FIELDS = ("upvotes", "comments", "github_stars")
DATE_FIELDS = ("published_at", "submitted_at", "first_seen_at", "last_seen_at")
# The fields a paper's embeddings are computed from: a change here means embedding again.
EMBEDDED_FIELDS = ("title", "abstract", "ai_summary")

# Column order used by every raw row the store reads or writes (after ``id``).
ROW_COLUMNS = (
    "paper_id",
    "title",
    "abstract",
    "authors",
    "published_at",
    "submitted_at",
    "upvotes",
    "comments",
    "ai_summary",
    "ai_keywords",
    "github_repo",
    "github_stars",
    "project_page",
    "thumbnail",
    "organization",
    "sources",
    "first_seen_at",
    "last_seen_at",
)


class InvalidPaper(ValueError):
    """A paper the store cannot keep; the message says which field and why."""


def _check_text(name: str, value: object, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if type(value) is not str:
        if not isinstance(value, str):
            raise InvalidPaper(f"{name} is {type(value).__name__}, not text")
    elif value.isascii():  # O(1) in CPython; the common case
        if "\x00" in value:
            raise InvalidPaper(f"{name} contains a NUL character")
        return
    if "\x00" in value:
        raise InvalidPaper(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPaper(f"{name} is not valid Unicode ({exc.reason})") from None


def _utc(name: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidPaper(f"{name} is {type(value).__name__}, not a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _plain_ascii(paper: Paper) -> bool:
    """Whether every text of ``paper`` is a ``str`` of ASCII without NUL (most papers):
    one scan of them all instead of a check per field."""
    optional = (getattr(paper, name) for name in TEXT_FIELDS[2:])
    try:
        joined = "".join(
            (
                paper.id,
                paper.title,
                paper.abstract,
                *(text for text in optional if text is not None),
                *(author.name for author in paper.authors),
                *paper.ai_keywords,
                *paper.sources,
            )
        )
    except (TypeError, AttributeError):  # not text, or not an Author: the checks say which
        return False
    return joined.isascii() and "\x00" not in joined


def validate(paper: object) -> Paper:
    """``paper`` checked and normalised (UTC dates, stripped id), or :class:`InvalidPaper`.

    Returns the same object when nothing needed normalising (the bulk-import fast path).
    """
    if not isinstance(paper, Paper):
        raise InvalidPaper(f"not a Paper: {type(paper).__name__}")
    clean = _plain_ascii(paper)  # then every text check below passes: skip them
    if not clean:
        _check_text("id", paper.id, required=True)
    paper_id = paper.id.strip()
    if not paper_id or len(paper_id) > 200:
        raise InvalidPaper("id is empty or longer than 200 characters")
    for name in () if clean else TEXT_FIELDS:
        _check_text(name, getattr(paper, name), required=name in ("title", "abstract"))
    for name in COUNTER_FIELDS:
        value = getattr(paper, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT64_MAX
        ):
            raise InvalidPaper(f"{name} is not a 64-bit integer: {value!r}")
    if type(paper.authors) is not tuple or type(paper.ai_keywords) is not tuple:
        paper = replace(paper, authors=tuple(paper.authors), ai_keywords=tuple(paper.ai_keywords))
    if type(paper.sources) is not tuple:
        paper = replace(paper, sources=tuple(paper.sources))
    for author in paper.authors:
        if not isinstance(author, Author):
            raise InvalidPaper(f"an author is {type(author).__name__}, not Author")
        if not clean:
            _check_text("author name", author.name, required=True)
    for name in () if clean else ("ai_keywords", "sources"):
        for item in getattr(paper, name):
            _check_text(name, item, required=True)
    changes: dict[str, Any] = {}
    for name in DATE_FIELDS:
        value = getattr(paper, name)
        normalised = _utc(name, value)
        if normalised is not value:
            changes[name] = normalised
    if paper_id != paper.id:
        changes["id"] = paper_id
    return replace(paper, **changes) if changes else paper


def merge(old: Paper, new: Paper, *, now: datetime) -> Paper:
    """What the store keeps when ``new`` arrives for a stored ``old`` paper.

    Counters take the incoming value when it has one; every other field takes the
    incoming value unless it is missing (None or empty), so nothing known is erased.
    Sources are unioned, ``first_seen_at`` is kept and ``last_seen_at`` bumped.

    A record from a secondary source (arXiv feeds) only fills gaps in a paper Hugging
    Face already described: the two disagree on whitespace and on which date is
    "published", and letting each overwrite the other would rewrite and re-index the
    paper on every poll.
    """
    fill_only = "huggingface" in old.sources and "huggingface" not in new.sources

    def pick(name: str) -> Any:
        value = getattr(new, name)
        kept = getattr(old, name)
        if fill_only and kept not in (None, "", ()):
            return kept
        return value if value not in (None, "", ()) else kept

    sources = old.sources + tuple(s for s in new.sources if s not in old.sources)
    return Paper(
        id=old.id,
        title=pick("title"),
        abstract=pick("abstract"),
        authors=pick("authors"),
        published_at=pick("published_at"),
        submitted_at=pick("submitted_at"),
        upvotes=pick("upvotes"),
        comments=pick("comments"),
        ai_summary=pick("ai_summary"),
        ai_keywords=pick("ai_keywords"),
        github_repo=pick("github_repo"),
        github_stars=pick("github_stars"),
        project_page=pick("project_page"),
        thumbnail=pick("thumbnail"),
        organization=pick("organization"),
        sources=sources,
        first_seen_at=old.first_seen_at or new.first_seen_at or now,
        last_seen_at=max(now, old.last_seen_at) if old.last_seen_at else now,
    )


def content_differs(a: Paper, b: Paper) -> bool:
    """Whether two versions of a paper differ in anything but ``last_seen_at``."""
    return replace(a, last_seen_at=None) != replace(b, last_seen_at=None)


def embedding_differs(a: Paper, b: Paper) -> bool:
    """Whether ``a`` and ``b`` would be embedded differently (see :data:`EMBEDDED_FIELDS`)."""
    return any(getattr(a, name) != getattr(b, name) for name in EMBEDDED_FIELDS)


# --- encoding ------------------------------------------------------------------------


@lru_cache(maxsize=4096)  # the same instants recur: "now", day-granular source dates
def sqlite_datetime(value: datetime | None) -> str | None:
    """UTC ``value`` in SQLAlchemy's SQLite storage format (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _json_list(values: Sequence[str]) -> str:
    return orjson.dumps(values).decode() if values else "[]"


def encode(paper: Paper, *, dialect: str, now: datetime | None = None) -> tuple[Any, ...]:
    """The row of ``paper`` in :data:`ROW_COLUMNS` order for ``dialect``.

    ``now``: encode a first sighting (``first_seen_at`` defaults to ``now``,
    ``last_seen_at`` is ``now``).
    """
    when = sqlite_datetime if dialect == "sqlite" else (lambda v: v)
    first_seen, last_seen = paper.first_seen_at, paper.last_seen_at
    if now is not None:
        first_seen, last_seen = first_seen or now, now
    return (
        paper.id,
        paper.title,
        paper.abstract or "",
        _json_list([a.name for a in paper.authors]),
        when(paper.published_at),
        when(paper.submitted_at),
        paper.upvotes,
        paper.comments,
        paper.ai_summary,
        _json_list(paper.ai_keywords),
        paper.github_repo,
        paper.github_stars,
        paper.project_page,
        paper.thumbnail,
        paper.organization,
        _json_list(paper.sources),
        when(first_seen),
        when(last_seen),
    )


def decode_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return _sqlite_text_datetime(str(value))


@lru_cache(maxsize=4096)  # the same instants recur: a batch's "now", day-granular dates
def _sqlite_text_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def decode_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (bytes, str)):
        value = orjson.loads(value)
    if not isinstance(value, list):
        return []
    return value if all(type(v) is str for v in value) else [str(v) for v in value]


def decode(row: Sequence[Any]) -> Paper:
    """A ``Paper`` from a row in :data:`ROW_COLUMNS` order (the ``id`` column excluded)."""
    (
        paper_id,
        title,
        abstract,
        authors,
        published_at,
        submitted_at,
        upvotes,
        comments,
        ai_summary,
        ai_keywords,
        github_repo,
        github_stars,
        project_page,
        thumbnail,
        organization,
        sources,
        first_seen_at,
        last_seen_at,
    ) = row
    return Paper(
        id=paper_id,
        title=title,
        abstract=abstract or "",
        authors=tuple(map(Author, decode_list(authors))),
        published_at=decode_datetime(published_at),
        submitted_at=decode_datetime(submitted_at),
        upvotes=upvotes,
        comments=comments,
        ai_summary=ai_summary,
        ai_keywords=tuple(decode_list(ai_keywords)),
        github_repo=github_repo,
        github_stars=github_stars,
        project_page=project_page,
        thumbnail=thumbnail,
        organization=organization,
        sources=tuple(decode_list(sources)),
        first_seen_at=decode_datetime(first_seen_at),
        last_seen_at=decode_datetime(last_seen_at),
    )


def recency(paper: Paper) -> float:
    """Seconds since the epoch of the paper's Daily Papers (else arXiv) date; -inf if none."""
    when = paper.submitted_at or paper.published_at
    return when.timestamp() if when else -math.inf


__all__ = [
    "EMBEDDED_FIELDS",
    "ROW_COLUMNS",
    "InvalidPaper",
    "content_differs",
    "decode",
    "decode_datetime",
    "decode_list",
    "encode",
    "embedding_differs",
    "merge",
    "recency",
    "sqlite_datetime",
    "validate",
]

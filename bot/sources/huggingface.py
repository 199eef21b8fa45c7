"""Hugging Face Daily Papers: the primary paper source.

Endpoints (see the project's reference notes): ``/api/daily_papers`` (one page of a day,
week or month, trending or by date), ``/api/papers/{id}`` (one paper object, not wrapped)
and ``/api/papers/search``. Every item is validated with pydantic at this edge: unknown
fields are ignored, optional ones may be missing or null, and an item with wrong types is
skipped and logged with its id instead of failing the page.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from bot.models import Author, Paper, normalize_paper_id, utcnow
from bot.ports import SourceError
from bot.sources.http import DEFAULT_USER_AGENT, JsonHttpClient, RetryPolicy, dedupe
from bot.sources.saved import json_kind

log = logging.getLogger(__name__)

SOURCE_NAME = "huggingface"
MAX_PAGE_SIZE = 100  # the API answers at most about 100 items per page
MAX_PAGES_PER_DAY = 50  # a guard against a server that ignores ``p``


def _clean_text(value: str | None) -> str | None:
    if value is None:
        return None
    collapsed = " ".join(value.split())
    return collapsed or None


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HFAuthor(_Lenient):
    # ``hidden`` marks a hidden link to a Hugging Face account, not a hidden name: ignored.
    name: str | None = None


class HFOrganization(_Lenient):
    name: str | None = None
    fullname: str | None = None

    @property
    def display(self) -> str | None:
        return _clean_text(self.fullname) or _clean_text(self.name)


class HFPaper(_Lenient):
    """The ``paper`` object of a daily item, and the body of ``/api/papers/{id}``."""

    id: str
    title: str | None = None
    summary: str | None = None
    authors: list[HFAuthor] | None = None
    publishedAt: datetime | None = None  # noqa: N815 (the API's spelling)
    submittedOnDailyAt: datetime | None = None  # noqa: N815
    upvotes: int | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] | None = None
    githubRepo: str | None = None  # noqa: N815
    githubStars: int | None = None  # noqa: N815
    projectPage: str | None = None  # noqa: N815
    organization: HFOrganization | None = None
    withdrawnAt: datetime | None = None  # noqa: N815

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty id")
        return value


class HFDailyItem(_Lenient):
    """One element of the ``/api/daily_papers`` and ``/api/papers/search`` arrays."""

    paper: HFPaper
    title: str | None = None
    summary: str | None = None
    thumbnail: str | None = None
    numComments: int | None = None  # noqa: N815
    organization: HFOrganization | None = None


def _to_paper(
    paper: HFPaper,
    *,
    fallback_title: str | None = None,
    fallback_summary: str | None = None,
    comments: int | None = None,
    thumbnail: str | None = None,
    organization: HFOrganization | None = None,
) -> Paper:
    paper_id = normalize_paper_id(paper.id)
    title = _clean_text(paper.title) or _clean_text(fallback_title)
    if not title:
        raise ValueError("no title")
    org = organization or paper.organization
    return Paper(
        id=paper_id,
        title=title,
        abstract=(paper.summary or fallback_summary or "").strip(),
        authors=tuple(
            Author(name=name)
            for name in (_clean_text(a.name) for a in paper.authors or ())
            if name is not None
        ),
        published_at=_as_utc(paper.publishedAt),
        submitted_at=_as_utc(paper.submittedOnDailyAt),
        upvotes=paper.upvotes,
        comments=comments,
        ai_summary=_clean_text(paper.ai_summary),
        ai_keywords=tuple(k for k in (_clean_text(k) for k in paper.ai_keywords or ()) if k),
        github_repo=_clean_text(paper.githubRepo),
        github_stars=paper.githubStars,
        project_page=_clean_text(paper.projectPage),
        thumbnail=_clean_text(thumbnail),
        organization=org.display if org else None,
        sources=(SOURCE_NAME,),
    )


def _item_label(raw: object, index: int) -> str:
    """How an item is named in error lines: its id when it has a readable one."""
    if isinstance(raw, dict):
        paper = raw.get("paper")
        if isinstance(paper, dict):
            paper_id = paper.get("id")
            if isinstance(paper_id, str) and paper_id.strip():
                return f"item {index} ({paper_id.strip()[:40]})"
    return f"item {index}"


def _validation_summary(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "item"
    more = exc.error_count() - 1
    # pydantic names its model ("instance of HFDailyItem"); the reader wrote JSON.
    message = "should be a JSON object" if first["type"] == "model_type" else first["msg"]
    return f"{where}: {message}" + (f" (+{more} more)" if more else "")


def parse_daily_items(raw: object) -> tuple[list[Paper], list[str]]:
    """Papers from a ``/api/daily_papers`` or ``/api/papers/search`` JSON array.

    Returns the papers in the order given and one human-readable line per skipped item
    (wrong types, no id or title, withdrawn). Never raises for bad items; raises
    ``SourceError`` only when ``raw`` is not a list at all.
    """
    if not isinstance(raw, list):
        raise SourceError(
            f"Hugging Face answered a JSON {json_kind(raw)} where a list of papers was expected"
        )
    papers: list[Paper] = []
    skipped: list[str] = []
    for index, item in enumerate(raw):
        try:
            parsed = HFDailyItem.model_validate(item)
        except ValidationError as exc:
            skipped.append(f"{_item_label(item, index)}: {_validation_summary(exc)}")
            continue
        if parsed.paper.withdrawnAt is not None:
            skipped.append(f"{_item_label(item, index)}: withdrawn")
            continue
        try:
            papers.append(
                _to_paper(
                    parsed.paper,
                    fallback_title=parsed.title,
                    fallback_summary=parsed.summary,
                    comments=parsed.numComments,
                    thumbnail=parsed.thumbnail,
                    organization=parsed.organization,
                )
            )
        except ValueError as exc:
            skipped.append(f"{_item_label(item, index)}: {exc}")
    return papers, skipped


def parse_paper_object(raw: object) -> Paper:
    """A paper from the body of ``/api/papers/{id}`` (a paper object, not wrapped).

    Raises ``SourceError`` when the object is malformed or the paper was withdrawn.
    """
    try:
        parsed = HFPaper.model_validate(raw)
    except ValidationError as exc:
        raise SourceError(
            f"Hugging Face answered a malformed paper: {_validation_summary(exc)}"
        ) from None
    if parsed.withdrawnAt is not None:
        raise SourceError(f"paper {parsed.id} was withdrawn")
    try:
        return _to_paper(parsed)
    except ValueError as exc:
        raise SourceError(f"Hugging Face answered a malformed paper: {exc}") from None


class HuggingFaceSource:
    """Hugging Face Daily Papers as a ``PaperSource`` and ``PaperLookup``.

    ``token`` (optional) is sent as ``Authorization: Bearer`` for higher rate limits and
    never appears in logs or reprs. ``sleep``, ``rng`` and ``clock`` are injectable so
    tests run without waiting and with a fixed "today".
    """

    name = SOURCE_NAME

    def __init__(
        self,
        base_url: str = "https://huggingface.co",
        *,
        token: SecretStr | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        user_agent: str = DEFAULT_USER_AGENT,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
        policy: RetryPolicy | None = None,
    ) -> None:
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token is not None and token.get_secret_value():
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._http = JsonHttpClient(
            "Hugging Face",
            self.base_url,
            headers=headers,
            timeout=timeout,
            policy=policy or RetryPolicy(max_attempts=max_attempts),
            client=client,
            sleep=sleep,
            rng=rng,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"HuggingFaceSource(base_url={self.base_url!r})"

    def _papers_from(self, raw: object, what: str) -> list[Paper]:
        papers, skipped = parse_daily_items(raw)
        for line in skipped:
            log.warning("Hugging Face %s: skipped %s", what, line)
        return papers

    async def daily(
        self,
        *,
        day: date | None = None,
        week: str | None = None,
        month: str | None = None,
        sort: Literal["trending", "publishedAt"] | str = "trending",
        page: int = 0,
        limit: int = 50,
    ) -> list[Paper]:
        """One page of ``/api/daily_papers``; at most one of ``day``, ``week``, ``month``.

        ``week`` is ``YYYY-Www``, ``month`` ``YYYY-MM``; with none of them, the newest
        papers. ``sort`` is ``trending`` (by upvotes) or ``publishedAt``.
        """
        if sum(x is not None for x in (day, week, month)) > 1:
            raise ValueError("give at most one of day, week and month")
        if sort not in ("trending", "publishedAt"):
            raise ValueError(f"sort must be 'trending' or 'publishedAt', not {sort!r}")
        if page < 0:
            raise ValueError("page must be 0 or more")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, str | int] = {"sort": sort, "p": page, "limit": limit}
        if day is not None:
            params["date"] = day.isoformat()
        elif week is not None:
            params["week"] = week
        elif month is not None:
            params["month"] = month
        raw = await self._http.get_json("/api/daily_papers", params)
        return self._papers_from(raw, f"daily papers {params}")

    async def fetch_day(self, day: date) -> list[Paper]:
        """Every paper listed for ``day`` (UTC), all pages, without duplicates.

        Pages by ``publishedAt`` rather than trending: upvotes change while we page, and
        a reordering list could hide a paper between two pages.
        """
        seen: set[str] = set()
        papers: list[Paper] = []
        for page in range(MAX_PAGES_PER_DAY):
            batch = await self.daily(day=day, sort="publishedAt", page=page, limit=MAX_PAGE_SIZE)
            fresh = dedupe(batch, seen)
            papers.extend(fresh)
            # A short page is the last one; a page with nothing new means the server
            # ignores ``p`` and would repeat itself forever.
            if len(batch) < MAX_PAGE_SIZE or not fresh:
                break
        else:
            log.warning("Hugging Face: stopped paging %s after %d pages", day, MAX_PAGES_PER_DAY)
        return papers

    async def fetch_recent(self, days: int = 1) -> list[Paper]:
        """Papers of today and the ``days - 1`` days before (UTC), newest day first."""
        if days < 1:
            raise ValueError("days must be 1 or more")
        today = self._clock().astimezone(UTC).date()
        seen: set[str] = set()
        papers: list[Paper] = []
        for back in range(days):
            papers.extend(dedupe(await self.fetch_day(today - timedelta(days=back)), seen))
        return papers

    async def fetch_paper(self, paper_id: str) -> Paper | None:
        """One paper by arXiv id (any version, or a URL); ``None`` when HF does not know it."""
        normalized = normalize_paper_id(paper_id)
        if not normalized:
            return None
        raw = await self._http.get_json(
            f"/api/papers/{quote(normalized, safe='')}", none_on_404=True
        )
        if raw is None:
            return None
        if isinstance(raw, dict) and raw.get("withdrawnAt"):
            return None
        return parse_paper_object(raw)

    async def search(self, query: str, *, limit: int = 20) -> list[Paper]:
        """Hugging Face's own paper search, at most ``limit`` papers."""
        text = " ".join(query.split())
        if not text or limit < 1:
            return []
        params: dict[str, Any] = {"q": text, "limit": min(limit, MAX_PAGE_SIZE)}
        raw = await self._http.get_json("/api/papers/search", params)
        return dedupe(self._papers_from(raw, "search"))[:limit]

    async def close(self) -> None:
        """Close the HTTP client (unless the caller passed its own)."""
        await self._http.close()

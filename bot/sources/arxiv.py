"""arXiv category feeds: the second paper source (new and cross-listed papers, for watches).

``https://rss.arxiv.org/rss/cs.CL+cs.LG`` (or ``/atom/...``) lists the latest announcement of
the given categories: rebuilt once a day at midnight US Eastern, empty on weekends and
holidays. Items are ``new``, ``cross`` (cross-listed), ``replace`` or ``replace-cross``
(revisions of old papers); only the first two are papers we have not seen. An unknown
category is answered with HTTP 200 and a feed titled "Feed error for query ...".

arXiv's terms allow one request every 3 seconds over one connection: ``ArxivSource`` sends
its requests one at a time under a lock, spaced ``min_interval`` seconds apart on an
injectable monotonic clock, over an httpx client limited to one connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from bot.models import Author, Paper, is_arxiv_id, normalize_paper_id, utcnow
from bot.ports import SourceError
from bot.sources.http import (
    DEFAULT_USER_AGENT,
    RetryPolicy,
    dedupe,
    describe_transport_error,
    server_requested_wait,
)

log = logging.getLogger(__name__)

SOURCE_NAME = "arxiv"
KEPT_ANNOUNCE_TYPES = frozenset({"new", "cross"})
REVISION_ANNOUNCE_TYPES = frozenset({"replace", "replace-cross"})

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_OAI_PREFIX = re.compile(r"^oai:arxiv\.org:", re.IGNORECASE)
_VERSION = re.compile(r"v(\d+)$")
# "arXiv:2401.01234v1 Announce Type: new \nAbstract: ..." (the description of every item)
_DESCRIPTION_HEAD = re.compile(
    r"^\s*(?:arXiv:\S+\s+)?(?:Announce\s+Type:\s*(?P<type>[\w-]+)\s*)?Abstract:\s*",
    re.IGNORECASE,
)
_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")

# The arXiv taxonomy, only to name the likely culprit when arXiv answers a feed error.
_SUBJECTS = {
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA "
    "NE NI OH OS PF PL RO SC SD SE SI SY",
    "stat": "AP CO ME ML OT TH",
    "eess": "AS IV SP SY",
    "econ": "EM GN TH",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA "
    "RA RT SG SP ST",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "astro-ph": "CO EP GA HE IM SR",
    "nlin": "AO CD CG PS SI",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an "
    "ed-ph flu-dyn gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
}
_STANDALONE = "gr-qc hep-ex hep-lat hep-ph hep-th math-ph nucl-ex nucl-th quant-ph"
KNOWN_CATEGORIES = frozenset(
    [*_SUBJECTS, *_STANDALONE.split()]
    + [f"{archive}.{subject}" for archive, names in _SUBJECTS.items() for subject in names.split()]
)


def unknown_categories(categories: Iterable[str]) -> list[str]:
    """The categories that are not in arXiv's taxonomy (as this module knows it)."""
    return [c for c in categories if c not in KNOWN_CATEGORIES]


@dataclass(frozen=True, slots=True)
class FeedResult:
    """What one feed document held.

    ``papers``: the new and cross-listed papers, in feed order. ``skipped``: one line per
    malformed item. ``revisions``: how many replace/replace-cross items were left out.
    ``error``: why the document gave no papers (a feed error, or it is not a readable
    feed; ``malformed`` tells the two apart). ``empty``: a well-formed feed without items
    (weekends and holidays).
    """

    papers: list[Paper] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    empty: bool = False
    malformed: bool = False
    revisions: int = 0


class _RejectDoctype(ET.TreeBuilder):
    # Feeds never declare a DOCTYPE; refusing one rules out entity-expansion tricks.
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise ValueError("the document declares a DOCTYPE")


class _BadItem(ValueError):
    pass


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _text(parent: ET.Element, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "") if found is not None else ""


def _rfc822(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso8601(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _paper_id(guid: str, link: str) -> tuple[str, int | None]:
    """The version-less id and the version, from the guid (``oai:arXiv.org:ID``) or link."""
    for raw in (_OAI_PREFIX.sub("", guid.strip()), link.strip()):
        if not raw:
            continue
        paper_id = normalize_paper_id(raw)
        if is_arxiv_id(paper_id):
            tail = raw.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            version = _VERSION.search(tail)
            return paper_id, int(version.group(1)) if version else None
    raise _BadItem("no arXiv id in guid or link")


def _announce_type(declared: str, description: str, version: int | None) -> str:
    """The item's announce type; without one, v1 (or no version) counts as new."""
    kind = declared.strip().lower()
    if not kind:
        head = _DESCRIPTION_HEAD.match(description)
        kind = (head.group("type") or "").lower() if head else ""
    if not kind:
        kind = "new" if version in (None, 1) else "replace"
    return kind


def _authors(creators: Iterable[str]) -> tuple[Author, ...]:
    names = (name.strip() for text in creators for name in text.split(","))
    return tuple(Author(name=" ".join(name.split())) for name in names if name)


@dataclass(frozen=True, slots=True)
class _RawItem:
    guid: str
    link: str
    title: str
    description: str
    announce_type: str
    creators: list[str]
    published_at: datetime | None


def _rss_item(item: ET.Element) -> _RawItem:
    return _RawItem(
        guid=_text(item, "guid"),
        link=_text(item, "link"),
        title=_text(item, "title"),
        description=_text(item, "description"),
        announce_type=_text(item, f"{_ARXIV}announce_type"),
        creators=[c.text or "" for c in item.findall(f"{_DC}creator")],
        published_at=_rfc822(_text(item, "pubDate")),
    )


def _atom_entry(entry: ET.Element) -> _RawItem:
    link = ""
    for candidate in entry.findall(f"{_ATOM}link"):
        if candidate.get("rel", "alternate") == "alternate":
            link = candidate.get("href", "")
            break
    creators = [c.text or "" for c in entry.findall(f"{_DC}creator")]
    creators += [_text(a, f"{_ATOM}name") for a in entry.findall(f"{_ATOM}author")]
    published = _text(entry, f"{_ATOM}published") or _text(entry, f"{_ATOM}updated")
    return _RawItem(
        guid=_text(entry, f"{_ATOM}id"),
        link=link,
        title=_text(entry, f"{_ATOM}title"),
        description=_text(entry, f"{_ATOM}summary"),
        announce_type=_text(entry, f"{_ARXIV}announce_type"),
        creators=creators,
        published_at=_iso8601(published),
    )


def _to_paper(raw: _RawItem, feed_date: datetime | None) -> tuple[Paper | None, str]:
    """The paper (``None`` for a revision) and the item's announce type."""
    paper_id, version = _paper_id(raw.guid, raw.link)
    kind = _announce_type(raw.announce_type, raw.description, version)
    if kind in REVISION_ANNOUNCE_TYPES:
        return None, kind
    if kind not in KEPT_ANNOUNCE_TYPES:
        raise _BadItem(f"{paper_id}: unknown announce type {kind[:40]!r}")
    title = _one_line(raw.title)
    if not title:
        raise _BadItem(f"{paper_id}: no title")
    head = _DESCRIPTION_HEAD.match(raw.description)
    abstract = raw.description[head.end() :] if head else raw.description
    paper = Paper(
        id=paper_id,
        title=title,
        abstract=abstract.strip(),
        authors=_authors(raw.creators),
        published_at=raw.published_at or feed_date,
        sources=(SOURCE_NAME,),
    )
    return paper, kind


def _parse_root(xml: bytes | str) -> ET.Element:
    parser = ET.XMLParser(target=_RejectDoctype())
    parser.feed(xml)
    return parser.close()


def parse_feed(xml: bytes | str) -> FeedResult:
    """The papers of an arXiv RSS 2.0 or Atom category feed. Never raises.

    Keeps ``new`` and ``cross`` items, counts ``replace``/``replace-cross`` as revisions,
    skips a malformed item with one line, and reports a feed error, an unreadable
    document or an empty feed through the result's fields.
    """
    try:
        root = _parse_root(xml)
    except Exception as exc:  # expat, encoding and DOCTYPE errors alike: never raise here
        reason = _one_line(str(exc))[:200] or type(exc).__name__
        return FeedResult(error=f"unreadable XML ({reason})", malformed=True)
    channel = root.find("channel") if root.tag == "rss" else None
    read: Callable[[ET.Element], _RawItem]
    if channel is not None:
        title, description = _text(channel, "title"), _text(channel, "description")
        feed_date = _rfc822(_text(channel, "pubDate") or _text(channel, "lastBuildDate"))
        elements, read = channel.findall("item"), _rss_item
    elif root.tag == f"{_ATOM}feed":
        title, description = _text(root, f"{_ATOM}title"), _text(root, f"{_ATOM}subtitle")
        feed_date = _iso8601(_text(root, f"{_ATOM}updated"))
        elements, read = root.findall(f"{_ATOM}entry"), _atom_entry
    else:
        return FeedResult(error=f"not an RSS or Atom feed (root <{root.tag[:60]}>)", malformed=True)
    if _one_line(title).lower().startswith("feed error"):
        detail = _one_line(title)
        if _one_line(description) and _one_line(description) != detail:
            detail += f": {_one_line(description)}"
        return FeedResult(error=detail[:300])
    papers: list[Paper] = []
    skipped: list[str] = []
    revisions = 0
    for index, element in enumerate(elements):
        try:
            paper, _kind = _to_paper(read(element), feed_date)
        except _BadItem as exc:
            skipped.append(f"item {index}: {exc}")
            continue
        except Exception as exc:  # a trust boundary: one odd item must not lose the feed
            skipped.append(f"item {index}: {type(exc).__name__}: {_one_line(str(exc))[:120]}")
            continue
        if paper is None:
            revisions += 1
        else:
            papers.append(paper)
    return FeedResult(papers, skipped, empty=not elements, revisions=revisions)


@dataclass(frozen=True, slots=True)
class _Retry:
    failure: str  # completes "arXiv ...": "timed out", "answered HTTP 503"
    server_wait: float | None = None
    garbage: bool = False
    status: int | None = None


class ArxivSource:
    """arXiv category feeds as a ``PaperSource`` (``name = "arxiv"``).

    All ``categories`` are fetched in one request (``/rss/cs.CL+cs.LG``). Requests are
    serialised by a lock and spaced ``min_interval`` seconds apart, measured with ``clock``
    from the end of the previous request; ``sleep`` does the waiting (both injectable).
    A fetched feed is reused for ``cache_seconds`` so that asking for today and yesterday
    in one poll costs one request.
    """

    name = SOURCE_NAME

    def __init__(
        self,
        categories: Sequence[str],
        *,
        base_url: str = "https://rss.arxiv.org",
        feed_format: Literal["rss", "atom"] = "rss",
        timeout: float = 20.0,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        min_interval: float = 3.0,
        cache_seconds: float = 60.0,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        cleaned = list(dict.fromkeys(c.strip() for c in categories if c.strip()))
        if not cleaned:
            raise ValueError("give at least one arXiv category, e.g. cs.CL")
        for category in cleaned:
            if not _CATEGORY.match(category):
                raise ValueError(f"{category!r} is not an arXiv category (like cs.CL or hep-th)")
        if feed_format not in ("rss", "atom"):
            raise ValueError("feed_format must be 'rss' or 'atom'")
        self.categories = tuple(cleaned)
        self.base_url = base_url.rstrip("/")
        self.path = f"/{feed_format}/{'+'.join(self.categories)}"
        self.min_interval = min_interval
        self.cache_seconds = cache_seconds
        self.policy = policy or RetryPolicy()
        self._headers = {
            "User-Agent": user_agent,
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9",
        }
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        # arXiv's terms: one connection at a time (the lock also covers a caller's client).
        self._client = client or httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._last_request_end: float | None = None
        self._cached: tuple[float, list[Paper]] | None = None
        # Conditional GET: the feed changes once a day, so most polls can be a 304.
        self._last_feed: FeedResult | None = None
        self._validators: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ArxivSource({self.base_url + self.path!r})"

    async def fetch_new(self) -> list[Paper]:
        """The new and cross-listed papers of the latest announcement, without duplicates.

        Raises ``SourceError`` with one line when arXiv cannot be reached, keeps failing,
        or answers a feed error (naming the unknown category when it can tell).
        """
        async with self._lock:
            if self._cached is not None and self._clock() - self._cached[0] < self.cache_seconds:
                return list(self._cached[1])
            feed = await self._fetch_feed()
            if feed.error is not None:
                unknown = unknown_categories(self.categories)
                hint = f" (unknown category: {', '.join(unknown)})" if unknown else ""
                raise SourceError(f"arXiv {self.path} answered a feed error{hint}: {feed.error}")
            for line in feed.skipped:
                log.warning("arXiv %s: skipped %s", self.path, line)
            papers = dedupe(feed.papers)
            log.info(
                "arXiv %s: %d new or cross-listed papers, %d revisions left out%s",
                self.path,
                len(papers),
                feed.revisions,
                " (empty feed: weekend or holiday)" if feed.empty else "",
            )
            self._cached = (self._clock(), papers)
            return list(papers)

    async def fetch_day(self, day: date) -> list[Paper]:
        """Papers of the latest announcement for ``day`` (UTC).

        The feed only holds the latest announcement, so for today (UTC, by ``now``) this
        is all of it, whenever it was announced; for another day, only the papers whose
        announcement date falls on that UTC day (usually none, or the same ones).
        """
        papers = await self.fetch_new()
        if day == self._now().astimezone(UTC).date():
            return papers
        return [p for p in papers if p.published_at and p.published_at.date() == day]

    async def _wait_turn(self) -> None:
        if self._last_request_end is None:
            return
        wait = self._last_request_end + self.min_interval - self._clock()
        if wait > 0:
            await self._sleep(wait)

    async def _fetch_feed(self) -> FeedResult:
        """GET the feed (the caller holds the lock), retrying transient failures."""
        garbage_left = self.policy.garbage_retries
        last = _Retry("was not asked")
        for attempt in range(1, self.policy.max_attempts + 1):
            await self._wait_turn()
            try:
                outcome = await self._try_once(garbage_left > 0)
            finally:
                self._last_request_end = self._clock()
            if isinstance(outcome, FeedResult):
                return outcome
            last = outcome
            garbage_left -= outcome.garbage
            if attempt == self.policy.max_attempts:
                break
            if outcome.server_wait is not None:
                wait = min(outcome.server_wait, self.policy.max_server_wait)
            else:
                wait = self.policy.backoff(attempt - 1, self._rng)
            log.warning(
                "arXiv %s %s (attempt %d of %d); retrying in %.1f s",
                self.path,
                outcome.failure,
                attempt,
                self.policy.max_attempts,
                wait,
            )
            await self._sleep(wait)
        attempts = f"{self.policy.max_attempts} attempt" + "s" * (self.policy.max_attempts != 1)
        if last.status is None and not last.garbage:
            raise SourceError(f"arXiv is unreachable ({last.failure} after {attempts})")
        raise SourceError(f"arXiv {self.path} {last.failure} after {attempts}")

    async def _try_once(self, garbage_retry_left: bool) -> FeedResult | _Retry:
        headers = {**self._headers, **self._validators} if self._last_feed else self._headers
        try:
            response = await self._client.get(
                self.base_url + self.path, headers=headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            return _Retry(describe_transport_error(exc))
        status = response.status_code
        if status == 304 and self._last_feed is not None:
            return replace(self._last_feed, skipped=[])  # its skipped lines were logged
        if status == 200:
            # A day's feed is megabytes (~100 ms to parse): keep the event loop free.
            feed = await asyncio.to_thread(parse_feed, response.content)
            if not feed.malformed:
                self._remember(feed, response.headers)
                return feed
            if not garbage_retry_left:
                raise SourceError(f"arXiv {self.path} answered {feed.error}")
            return _Retry(f"answered {feed.error}", garbage=True)
        if status in (408, 429) or status >= 500:
            wait = server_requested_wait(response.headers, self._now())
            return _Retry(f"answered HTTP {status}", server_wait=wait, status=status)
        raise SourceError(f"arXiv rejected the request (HTTP {status}, {self.path})")

    def _remember(self, feed: FeedResult, headers: httpx.Headers) -> None:
        """Keep a good feed and its validators for the next conditional request."""
        validators = {
            "If-None-Match": headers.get("etag", ""),
            "If-Modified-Since": headers.get("last-modified", ""),
        }
        self._validators = {name: value for name, value in validators.items() if value}
        self._last_feed = feed if feed.error is None and self._validators else None

    async def close(self) -> None:
        """Close the HTTP client (unless the caller passed its own)."""
        if self._owns_client:
            await self._client.aclose()

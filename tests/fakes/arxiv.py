"""A fake arXiv feed server: a real HTTP server on 127.0.0.1 speaking the real feed format.

Serves ``/rss/<cats>`` and ``/atom/<cats>`` (categories joined with ``+``) built from entry
dicts (see ``make_entry``), in the shape rss.arxiv.org uses, and can be scripted to fail::

    async with FakeArxiv(entries) as arxiv:          # or the ``fake_arxiv`` pytest fixture
        source = ArxivSource(["cs.CL"], base_url=arxiv.url)
        arxiv.fail_next("/rss/*", status=503, headers={"Retry-After": "5"})
        arxiv.bad_xml_next("/rss/cs.CL")              # the real feed cut in half
        arxiv.html_next("*")                          # 200 with an HTML error page
        arxiv.body_next("/rss/cs.CL", b"<rss>...")    # any 200 body
        arxiv.hang_next("*")                          # never answers (client times out)
        arxiv.drop_next("*")                          # closes the connection, no answer
        arxiv.weekend = True                          # empty feeds, as on Sat/Sun/holidays
        arxiv.etags = False                           # no ETag, no 304 (on by default)
        arxiv.requests                                # path, headers, peer, clock time

Scripted responses are queued per path and consumed in order; ``"/rss/*"``, ``"/atom/*"``
and ``"*"`` match more than one path. Once a queue is empty the server answers normally.

Semantics: a feed lists the entries having any of the requested categories, each once
(``duplicate_across_categories`` lists an entry once per matching category instead). A
category not in ``known_categories`` makes the whole answer a "Feed error for query" feed,
with HTTP 200, as arXiv does. Normal answers carry an ``ETag``; a request whose
``If-None-Match`` matches gets ``304 Not Modified``. ``max_in_flight`` is the most requests
ever served at once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from aiohttp import web

from tests.fakes.scripted import ScriptedResponse, ScriptedServer

PUB_DATE = "Tue, 09 Jan 2024 00:00:00 -0500"
ISO_DATE = "2024-01-09T00:00:00-05:00"
DEFAULT_KNOWN = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.IR", "stat.ML", "eess.AS")
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1></body></html>"
)
_RSS_NAMESPACES = (
    'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/"'
)
_ATOM_NAMESPACES = (
    'xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def make_entry(
    paper_id: str,
    title: str,
    *,
    version: int = 1,
    announce_type: str = "new",
    abstract: str = "An abstract.",
    authors: Iterable[str] = ("Ada Lovelace",),
    categories: Sequence[str] = ("cs.CL",),
    pub_date: str = PUB_DATE,
    iso_date: str = ISO_DATE,
) -> dict[str, Any]:
    """One feed entry; ``pub_date`` (RFC 822) is used by RSS, ``iso_date`` by Atom."""
    return {
        "id": paper_id,
        "version": version,
        "announce_type": announce_type,
        "title": title,
        "abstract": abstract,
        "authors": list(authors),
        "categories": list(categories),
        "pub_date": pub_date,
        "iso_date": iso_date,
    }


def _description(entry: dict[str, Any]) -> str:
    return (
        f"arXiv:{entry['id']}v{entry['version']} Announce Type: {entry['announce_type']} \n"
        f"Abstract: {entry['abstract']}"
    )


def _subtitle(heading: str) -> str:
    return heading.replace(" on arXiv.org", " on the arXiv.org e-print archive.")


def _rss_item(entry: dict[str, Any]) -> str:
    categories = "".join(f"\n      <category>{escape(c)}</category>" for c in entry["categories"])
    return f"""
    <item>
      <title>{escape(entry["title"])}</title>
      <link>https://arxiv.org/abs/{entry["id"]}</link>
      <description>{escape(_description(entry))}</description>
      <guid isPermaLink="false">oai:arXiv.org:{entry["id"]}v{entry["version"]}</guid>{categories}
      <pubDate>{entry["pub_date"]}</pubDate>
      <arxiv:announce_type>{entry["announce_type"]}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{escape(", ".join(entry["authors"]))}</dc:creator>
    </item>"""


def render_rss(entries: Iterable[dict[str, Any]], query: str, *, title: str | None = None) -> bytes:
    """An RSS 2.0 feed as rss.arxiv.org writes it (no items: the weekend feed)."""
    heading = title if title is not None else f"{query} updates on arXiv.org"
    items = "".join(_rss_item(e) for e in entries)
    about = escape(_subtitle(heading))
    self_link = quoteattr(f"http://rss.arxiv.org/rss/{query}")
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss {_RSS_NAMESPACES} version="2.0">
  <channel>
    <title>{escape(heading)}</title>
    <link>http://rss.arxiv.org/rss/{escape(query)}</link>
    <description>{about}</description>
    <atom:link href={self_link} rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{PUB_DATE.replace("00:00:00", "00:30:00")}</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{PUB_DATE}</pubDate>
    <skipDays>
      <day>Sunday</day>
      <day>Saturday</day>
    </skipDays>{items}
  </channel>
</rss>
""".encode()


def _atom_entry(entry: dict[str, Any]) -> str:
    categories = "".join(
        f'\n    <category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>'
        for c in entry["categories"]
    )
    return f"""
  <entry>
    <id>oai:arXiv.org:{entry["id"]}v{entry["version"]}</id>
    <title>{escape(entry["title"])}</title>
    <updated>{entry["iso_date"]}</updated>
    <link href="https://arxiv.org/abs/{entry["id"]}" rel="alternate" type="text/html"/>
    <summary>{escape(_description(entry))}</summary>{categories}
    <published>{entry["iso_date"]}</published>
    <arxiv:announce_type>{entry["announce_type"]}</arxiv:announce_type>
    <rights>http://creativecommons.org/licenses/by/4.0/</rights>
    <dc:creator>{escape(", ".join(entry["authors"]))}</dc:creator>
  </entry>"""


def render_atom(
    entries: Iterable[dict[str, Any]], query: str, *, title: str | None = None
) -> bytes:
    """The Atom variant of the same feed (``/atom/<cats>``)."""
    heading = title if title is not None else f"{query} updates on arXiv.org"
    items = "".join(_atom_entry(e) for e in entries)
    about = escape(_subtitle(heading))
    self_link = quoteattr(f"http://rss.arxiv.org/atom/{query}")
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed {_ATOM_NAMESPACES} xml:lang="en-us">
  <id>http://rss.arxiv.org/atom/{escape(query)}</id>
  <title>{escape(heading)}</title>
  <updated>{ISO_DATE.replace("00:00:00", "00:30:00")}</updated>
  <link href={self_link} rel="self" type="application/atom+xml"/>
  <subtitle>{about}</subtitle>{items}
</feed>
""".encode()


def render_feed_error(query: str, *, fmt: str = "rss") -> bytes:
    """What arXiv answers (HTTP 200) for a query naming an unknown category."""
    render = render_atom if fmt == "atom" else render_rss
    return render([], query, title=f"Feed error for query: {query}")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received; ``at`` is the fake's clock when it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # keys lower-cased
    peer: tuple[str, int] | None
    at: float


FEED_TYPE = "application/rss+xml"


class FakeArxiv(ScriptedServer):
    """The fake server. Use as ``async with FakeArxiv(entries) as arxiv`` (see module doc)."""

    def __init__(
        self,
        entries: Iterable[dict[str, Any]] = (),
        *,
        known_categories: Iterable[str] = DEFAULT_KNOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.entries = list(entries)
        self.known_categories = set(known_categories)
        self.known_categories.update(c for e in self.entries for c in e["categories"])
        self.weekend = False
        self.duplicate_across_categories = False
        self.etags = True  # send an ETag and answer 304 to a matching If-None-Match
        self.not_modified = 0  # how many 304s were answered
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._clock = clock

    # --- scripting ---
    def fail_next(
        self,
        path: str,
        *,
        status: int = 503,
        headers: dict[str, str] | None = None,
        body: bytes = HTML_ERROR_PAGE,
        times: int = 1,
    ) -> None:
        """Answer with ``status`` and (by default) an HTML error page."""
        response = ScriptedResponse(status, body, dict(headers or {}), content_type="text/html")
        self.queue(path, response, times=times)

    def html_next(self, path: str, *, times: int = 1) -> None:
        """Answer 200 with an HTML page instead of a feed (as proxies do)."""
        self.queue(
            path, ScriptedResponse(200, HTML_ERROR_PAGE, content_type="text/html"), times=times
        )

    def body_next(self, path: str, body: bytes, *, times: int = 1) -> None:
        """Answer 200 with ``body`` as the feed."""
        self.queue(path, ScriptedResponse(200, body, content_type=FEED_TYPE), times=times)

    def bad_xml_next(self, path: str, *, times: int = 1) -> None:
        """Answer 200 with the normal feed cut in half."""
        self.queue(path, ScriptedResponse(truncate=True), times=times)

    # --- serving ---
    def _script_keys(self, path: str) -> list[str]:
        kind = path.split("/", 2)[1] if path.count("/") >= 2 else ""
        return [path, f"/{kind}/*", "*"]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._respond(request)
        finally:
            self.in_flight -= 1

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                headers={k.lower(): v for k, v in request.headers.items()},
                peer=tuple(peer) if peer else None,
                at=self._clock(),
            )
        )
        script = self._next_script(path)
        scripted = await self._play(request, script)
        if scripted is not None:
            return scripted
        status, body, content_type = self._answer(request.method, path)
        if script is not None and script.truncate:
            body = body[: max(1, len(body) // 2)]
        headers = {}
        if status == 200 and self.etags:
            etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"'
            headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                self.not_modified += 1
                return web.Response(status=304, headers=headers)
        return web.Response(status=status, body=body, headers=headers, content_type=content_type)

    def _answer(self, method: str, path: str) -> tuple[int, bytes, str]:
        parts = path.split("/")
        if method != "GET" or len(parts) != 3 or parts[1] not in ("rss", "atom") or not parts[2]:
            return 404, b"<html><body><h1>Not Found</h1></body></html>", "text/html"
        fmt, query = parts[1], parts[2]
        content_type = f"application/{fmt}+xml"
        categories = query.split("+")
        if any(c not in self.known_categories for c in categories):
            return 200, render_feed_error(query, fmt=fmt), content_type
        render = render_atom if fmt == "atom" else render_rss
        return 200, render(self.entries_for(categories), query), content_type

    def entries_for(self, categories: Sequence[str]) -> list[dict[str, Any]]:
        """The entries a feed of ``categories`` lists (none on a weekend)."""
        if self.weekend:
            return []
        if self.duplicate_across_categories:
            return [e for c in categories for e in self.entries if c in e["categories"]]
        wanted = set(categories)
        return [e for e in self.entries if wanted.intersection(e["categories"])]


@pytest.fixture
async def fake_arxiv() -> AsyncIterator[FakeArxiv]:
    """A running fake with a few cs.CL/cs.LG entries (see ``sample_entries``)."""
    async with FakeArxiv(sample_entries()) as fake:
        yield fake


def sample_entries() -> list[dict[str, Any]]:
    """New, cross-listed and revised entries across cs.CL and cs.LG."""
    return [
        make_entry("2401.04001", "Small Language Models Reason", categories=("cs.CL", "cs.LG")),
        make_entry("2401.04002", "Tokenizers Matter", categories=("cs.CL",)),
        make_entry(
            "2401.03003",
            "Speech Meets Text",
            announce_type="cross",
            categories=("cs.CL", "eess.AS"),
        ),
        make_entry("2401.04004", "Sparse Training", categories=("cs.LG",)),
        make_entry(
            "2312.01005", "An Old Paper", version=3, announce_type="replace", categories=("cs.CL",)
        ),
        make_entry(
            "2311.01006",
            "An Old Cross-List",
            version=2,
            announce_type="replace-cross",
            categories=("cs.LG", "stat.ML"),
        ),
    ]

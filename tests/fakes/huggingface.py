"""A fake Hugging Face API: a real HTTP server on 127.0.0.1 speaking the real wire format.

Serves ``/api/daily_papers``, ``/api/papers/{id}`` and ``/api/papers/search`` from a list
of daily-paper items (the seed corpus by default) and can be scripted to fail::

    async with FakeHuggingFace(items) as hf:        # or the ``fake_hf`` pytest fixture
        source = HuggingFaceSource(hf.url)
        hf.fail_next("/api/daily_papers", status=429, headers={"Retry-After": "3"})
        hf.html_next("/api/daily_papers")            # 200 with an HTML error page
        hf.truncate_next("/api/daily_papers")        # the real answer cut in half
        hf.hang_next("/api/papers/*")                # never answers (client times out)
        hf.drop_next("/api/daily_papers")            # closes the connection, no answer
        hf.requests                                  # every request: path, query, headers

Scripted responses are queued per path and consumed in order; ``"*"`` matches every path
and ``"/api/papers/*"`` every single-paper lookup. Once a path's queue is empty the server
answers normally.

Semantics of ``/api/daily_papers`` (as documented for the real API):
- ``date=YYYY-MM-DD`` keeps items whose ``paper.submittedOnDailyAt`` falls on that UTC day
  (400 ``{"error": ...}`` for an invalid date); ``week=YYYY-Www`` and ``month=YYYY-MM``
  keep a window one day wider on each side, like the real API's slightly wide windows.
- ``sort=trending`` orders by upvotes (most first), ``sort=publishedAt`` (default) by the
  item's ``publishedAt``, newest first. No filter: the newest items.
- ``p`` (0-based page) and ``limit`` (default 50, clamped to 100); a page past the end is
  ``[]``.

Import the fixture from another test directory with
``from tests.fakes.huggingface import fake_hf  # noqa: F401`` in that directory's conftest.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.scripted import ScriptedResponse, ScriptedServer

SEED_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "hf_daily_papers_seed.json"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
SEARCH_DEFAULT_LIMIT = 20

HTML_ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head>"
    b"<body><h1>We're having trouble on our side</h1></body></html>"
)


@cache
def _seed_text() -> str:
    return SEED_PATH.read_text(encoding="utf-8")


def load_seed_items() -> list[dict[str, Any]]:
    """A fresh copy of the 503-item seed corpus (safe to mutate)."""
    return json.loads(_seed_text())


def make_item(
    paper_id: str,
    title: str,
    *,
    day: date | str = "2025-09-08",
    upvotes: int = 0,
    summary: str = "An abstract.",
    authors: Iterable[str] = ("Ada Lovelace",),
    num_comments: int = 0,
    organization: str | None = None,
    **paper_fields: Any,
) -> dict[str, Any]:
    """A well-formed daily-papers item; ``paper_fields`` go into the ``paper`` object."""
    day_text = day.isoformat() if isinstance(day, date) else day
    submitted = f"{day_text}T08:00:00.000Z"
    paper: dict[str, Any] = {
        "id": paper_id,
        "authors": [
            {"_id": f"a{i}", "name": name, "hidden": False} for i, name in enumerate(authors)
        ],
        "publishedAt": f"{day_text}T00:00:00.000Z",
        "submittedOnDailyAt": submitted,
        "title": title,
        "summary": summary,
        "upvotes": upvotes,
        "discussionId": f"d-{paper_id}",
    }
    paper.update(paper_fields)
    item: dict[str, Any] = {
        "paper": paper,
        "publishedAt": submitted,
        "title": title,
        "summary": summary,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper_id}.png",
        "numComments": num_comments,
        "isAuthorParticipating": False,
    }
    if organization:
        item["organization"] = {"name": organization.lower(), "fullname": organization}
    return item


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased


def _get(item: object, *keys: str) -> object:
    value: object = item
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(item: object, *keys: str) -> str:
    value = _get(item, *keys)
    return value if isinstance(value, str) else ""


def _number(item: object, *keys: str) -> float:
    value = _get(item, *keys)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _day_of(item: object) -> str:
    return _text(item, "paper", "submittedOnDailyAt")[:10]


class _BadRequest(Exception):
    pass


_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_VERSION = re.compile(r"v\d+$")


def _window(query: dict[str, str]) -> tuple[str, str] | None:
    """The inclusive range of ``YYYY-MM-DD`` days a daily_papers query asks for."""
    try:
        if "date" in query:
            day = date.fromisoformat(query["date"])
            return day.isoformat(), day.isoformat()
        if "week" in query:
            match = _WEEK.match(query["week"])
            if not match:
                raise ValueError
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
            start, end = monday, monday + timedelta(days=6)
        elif "month" in query:
            match = _MONTH.match(query["month"])
            if not match:
                raise ValueError
            start = date(int(match[1]), int(match[2]), 1)
            end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        else:
            return None
    except ValueError:
        raise _BadRequest("Invalid date") from None
    return (start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()


def _int_param(query: dict[str, str], name: str, default: int, minimum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"Invalid {name}") from None
    if value < minimum:
        raise _BadRequest(f"Invalid {name}")
    return value


class FakeHuggingFace(ScriptedServer):
    """The fake server. Use as ``async with FakeHuggingFace(items) as hf`` (see module doc)."""

    def __init__(self, items: Iterable[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.items: list[Any] = list(items) if items is not None else load_seed_items()
        self.requests: list[RecordedRequest] = []

    # --- scripting ---
    def add_items(self, items: Iterable[dict[str, Any]]) -> None:
        """Add items (a day filling in during the day)."""
        self.items.extend(items)

    def fail_next(
        self,
        path: str,
        *,
        status: int = 500,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        json_body: object = None,
        times: int = 1,
    ) -> None:
        """Answer with ``status`` (default body: ``{"error": "..."}``)."""
        if json_body is not None:
            payload = json.dumps(json_body).encode()
        elif body is not None:
            payload = body.encode() if isinstance(body, str) else body
        else:
            payload = json.dumps({"error": f"fake error {status}"}).encode()
        self.queue(path, ScriptedResponse(status, payload, dict(headers or {})), times=times)

    def html_next(self, path: str, *, status: int = 200, times: int = 1) -> None:
        """Answer with an HTML error page (as proxies and CDNs do)."""
        response = ScriptedResponse(status, HTML_ERROR_PAGE, content_type="text/html")
        self.queue(path, response, times=times)

    def truncate_next(self, path: str, *, times: int = 1) -> None:
        """Answer 200 with the normal JSON body cut in half."""
        self.queue(path, ScriptedResponse(truncate=True), times=times)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path is ``path``."""
        return [r for r in self.requests if r.path == path]

    # --- serving ---
    def _script_keys(self, path: str) -> list[str]:
        if path.startswith("/api/papers/") and path != "/api/papers/search":
            return [path, "/api/papers/*", "*"]
        return [path, "*"]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
            )
        )
        script = self._next_script(path)
        scripted = await self._play(request, script)
        if scripted is not None:
            return scripted
        status, payload = self._answer(request.method, path, dict(request.query))
        body = json.dumps(payload).encode()
        if script is not None and script.truncate:
            body = body[: max(1, len(body) // 2)]
        headers = script.headers if script is not None else {}
        return web.Response(
            status=status, body=body, headers=headers, content_type="application/json"
        )

    def _answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": "Method not allowed"}
        try:
            if path == "/api/daily_papers":
                return 200, self._daily(query)
            if path == "/api/papers/search":
                return 200, self._search(query)
            if path.startswith("/api/papers/") and path.count("/") == 3:
                paper = self._paper(path.rsplit("/", 1)[1])
                if paper is None:
                    return 404, {"error": "Paper not found"}
                return 200, paper
        except _BadRequest as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": "Not found"}

    def _daily(self, query: dict[str, str]) -> list[Any]:
        window = _window(query)
        page = _int_param(query, "p", 0, 0)
        limit = min(_int_param(query, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT)
        sort = query.get("sort", "publishedAt")
        if sort not in ("publishedAt", "trending"):
            raise _BadRequest("Invalid sort")
        items = self.items
        if window is not None:
            first, last = window
            items = [i for i in items if first <= _day_of(i) <= last]
        if sort == "trending":
            items = sorted(items, key=lambda i: (-_number(i, "paper", "upvotes"), _day_of(i)))
        else:
            items = sorted(items, key=lambda i: _text(i, "publishedAt"), reverse=True)
        return items[page * limit : (page + 1) * limit]

    def _search(self, query: dict[str, str]) -> list[Any]:
        terms = query.get("q", "").lower().split()
        limit = min(_int_param(query, "limit", SEARCH_DEFAULT_LIMIT, 1), MAX_LIMIT)
        if not terms:
            return []

        def haystack(item: object) -> str:
            keywords = _get(item, "paper", "ai_keywords")
            words = (
                " ".join(k for k in keywords if isinstance(k, str))
                if isinstance(keywords, list)
                else ""
            )
            return f"{_text(item, 'paper', 'title')} {_text(item, 'paper', 'summary')} {words}"

        found = [i for i in self.items if all(t in haystack(i).lower() for t in terms)]
        found.sort(key=lambda i: -_number(i, "paper", "upvotes"))
        return found[:limit]

    def _paper(self, wanted: str) -> dict[str, Any] | None:
        bare = _VERSION.sub("", wanted)
        for item in self.items:
            paper_id = _get(item, "paper", "id")
            if isinstance(paper_id, str) and _VERSION.sub("", paper_id) == bare:
                return copy.deepcopy(_get(item, "paper"))  # type: ignore[arg-type]
        return None


@pytest.fixture
async def fake_hf() -> AsyncIterator[FakeHuggingFace]:
    """A running fake serving the seed corpus; closed after the test."""
    async with FakeHuggingFace() as hf:
        yield hf

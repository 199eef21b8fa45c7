"""Keyword watches: which new papers match which standing queries.

Evaluating every watch on every paper costs ``watches x papers`` query evaluations. The
matcher instead inverts the batch of new papers once (column -> term -> set of papers)
and answers each watch with set algebra on those postings: a group is the union of its
terms' postings, the query the intersection of its groups minus its exclusions. A watch
whose terms no paper of the batch contains costs a few dictionary misses; only phrases
are checked paper by paper, and only on papers that contain all their words. The terms
are the search index's own (:func:`bot.query.paper_terms`), so a watch fires exactly when
a search would return the paper; :meth:`WatchMatcher.match_brute_force` is the plain
definition the index is tested and measured against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import Paper, Watch, utcnow
from bot.query import (
    FIELD_COLUMNS,
    Field,
    Query,
    QueryError,
    Term,
    index_fields,
    matches,
    paper_terms,
    parse,
)
from bot.store import PaperStore
from bot.store.outbox import Outbox, PlannedPost
from bot.store.watches import WatchStore

_EMPTY: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledWatch:
    watch: Watch
    query: Query
    single: tuple[Field, str] | None  # one word and nothing else: a postings lookup


def _single_word(query: Query) -> tuple[Field, str] | None:
    if len(query.groups) == 1 and len(query.groups[0]) == 1 and not query.excluded:
        term = query.groups[0][0]
        if not term.is_phrase:
            return term.field, term.terms[0]
    return None


@dataclass(frozen=True, slots=True)
class WatchMatch:
    watch: Watch
    papers: list[Paper]


class _Batch:
    """The new papers, inverted: term -> indices of the papers having it.

    Postings are kept for the field restrictions queries can make (anywhere in title,
    keywords or abstract; title only; authors only). A phrase is checked as a substring
    of the space-separated analyzed text, which is exactly "these terms in a row"; columns
    are joined with " | " so that no phrase can run from one column into the next.
    """

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.texts: dict[Field, list[str]] = {f: [] for f in Field}
        self.postings: dict[Field, dict[str, set[int]]] = {f: defaultdict(set) for f in Field}
        anywhere, title, authors = (
            self.postings[f] for f in (Field.ANY, Field.TITLE, Field.AUTHOR)
        )
        for index, paper in enumerate(papers):
            fields = index_fields(paper)
            self.texts[Field.ANY].append(
                " " + " | ".join(fields[c] for c in FIELD_COLUMNS[Field.ANY]) + " "
            )
            self.texts[Field.TITLE].append(f" {fields['title']} ")
            self.texts[Field.AUTHOR].append(f" {fields['authors']} ")
            anywhere_text = " ".join(fields[c] for c in FIELD_COLUMNS[Field.ANY])
            for term in set(anywhere_text.split()):
                anywhere[term].add(index)
            for term in set(fields["title"].split()):
                title[term].add(index)
            for term in set(fields["authors"].split()):
                authors[term].add(index)
        self.phrase_checks = 0

    def term(self, term: Term) -> set[int] | frozenset[int]:
        postings = self.postings[term.field]
        if not term.is_phrase:
            return postings.get(term.terms[0], _EMPTY)  # shared: callers never mutate
        having = [postings.get(t, _EMPTY) for t in term.terms]
        having.sort(key=len)
        candidates = set(having[0]).intersection(*having[1:])
        if not candidates:
            return _EMPTY
        needle = f" {' '.join(term.terms)} "
        texts = self.texts[term.field]
        self.phrase_checks += len(candidates)
        return {i for i in candidates if needle in texts[i]}

    def query(self, query: Query) -> set[int] | frozenset[int]:
        result: set[int] | frozenset[int] | None = None
        for group in sorted(query.groups, key=len):
            if len(group) == 1:
                hits = self.term(group[0])
            else:
                hits = set().union(*(self.term(t) for t in group))
            result = hits if result is None else result & hits
            if not result:
                return _EMPTY
        assert result is not None
        for term in query.excluded:
            result = result - self.term(term)
            if not result:
                return _EMPTY
        return result


class WatchMatcher:
    """Holds the parsed watches; ``match(papers)`` finds what each watch should hear about."""

    def __init__(self, watches: Iterable[Watch] = ()) -> None:
        self._watches: list[CompiledWatch] = []
        self.phrase_checks = 0  # phrases verified paper by paper in the last match()
        self.replace(watches)

    def replace(self, watches: Iterable[Watch]) -> None:
        compiled = []
        for watch in watches:
            try:
                query = parse(watch.query)
                compiled.append(CompiledWatch(watch, query, _single_word(query)))
            except QueryError:
                continue  # saved queries were validated; a later analyzer change may void one
        self._watches = compiled

    def __len__(self) -> int:
        return len(self._watches)

    def match(self, papers: Sequence[Paper]) -> list[WatchMatch]:
        """Every watch with at least one matching paper, papers in the given order."""
        batch = _Batch(papers)
        postings = batch.postings
        out = []
        for compiled in self._watches:
            if compiled.single is not None:
                field, word = compiled.single
                hits = postings[field].get(word, _EMPTY)
            else:
                hits = batch.query(compiled.query)
            if hits:
                out.append(WatchMatch(compiled.watch, [papers[i] for i in sorted(hits)]))
        self.phrase_checks = batch.phrase_checks
        return out

    def match_brute_force(self, papers: Sequence[Paper]) -> list[WatchMatch]:
        """Every watch against every paper: the reference the index is measured against."""
        fields = [paper_terms(p) for p in papers]
        out = []
        for compiled in self._watches:
            hits = [papers[i] for i, f in enumerate(fields) if matches(compiled.query, f)]
            if hits:
                out.append(WatchMatch(compiled.watch, hits))
        return out


def _listed_since(paper: Paper, moment: datetime) -> bool:
    """Whether ``paper`` was listed (else published) at or after ``moment`` (or is undated)."""
    listed = paper.submitted_at or paper.published_at
    return listed is None or listed >= moment


class AlertPlanner:
    """After each poll: match recent papers against every watch, plan one alert per watch.

    A paper counts for a watch when it was first seen after the watch was created and is
    itself recent (listed or published within ``window`` and a day): an old paper stored
    only now (a search's remote fallback, ``/papers paper``, a backfill) is not news. The
    outbox ledger drops papers the destination was already alerted to, so a paper reaches
    a destination once however many of its watches match and however often this runs.
    """

    def __init__(
        self,
        papers: PaperStore,
        watches: WatchStore,
        outbox: Outbox,
        *,
        window: timedelta = timedelta(days=2),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.papers = papers
        self.watches = watches
        self.outbox = outbox
        self.window = window
        self.clock = clock
        self.matcher = WatchMatcher()
        self._loaded: tuple[int, int] | None = None  # WatchStore.version of the matcher

    def invalidate(self) -> None:
        """The watch list changed: reload it before the next run."""
        self._loaded = None

    async def run(self) -> list[PlannedPost]:
        # Any replica may add or remove watches: reload when the list is not the one
        # loaded (one cheap aggregate per run instead of the whole list).
        version = await self.watches.version()
        if version != self._loaded:
            self.matcher.replace(await self.watches.all())
            self._loaded = version
        if not len(self.matcher):
            return []
        now = self.clock()
        recent = await self.papers.seen_since(now - self.window)
        paused = await self.watches.paused_ids()  # read each time: any replica may pause
        planned = []
        # To the microsecond: two runs within a second (the Hugging Face and arXiv polls
        # finishing together) would otherwise share keys, and the second plan nothing.
        cycle = now.strftime("%Y%m%dT%H%M%S%f")
        oldest_news = now - self.window - timedelta(days=1)
        recent = [p for p in recent if _listed_since(p, oldest_news)]
        alerted = await self.outbox.alerted([p.id for p in recent])
        for found in self.matcher.match(recent):
            watch = found.watch
            if watch.id in paused:
                continue
            fresh = [
                p
                for p in found.papers
                if (
                    watch.created_at is None
                    or p.first_seen_at is None
                    or p.first_seen_at > watch.created_at
                )
                and (watch.destination, p.id) not in alerted
            ]
            if not fresh:
                continue  # (plan_alert checks the ledger again, in its transaction)
            ranked = sorted(fresh, key=lambda p: (-(p.upvotes or 0), p.id))
            post = await self.outbox.plan_alert(
                key=f"alert:{watch.id}:{cycle}",
                destination=watch.destination,
                candidates=[p.id for p in ranked],
                heading={"title": f"New papers matching `{watch.query}`", "query": watch.query},
            )
            if post is not None:
                planned.append(post)
        return planned

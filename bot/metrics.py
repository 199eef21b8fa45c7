"""Prometheus metrics for paperboy, on a registry of their own.

Each :class:`Metrics` owns a fresh ``CollectorRegistry`` (never the process-global one), so
tests and several bots in one process do not collide. The application records events through
small methods (``count_post``, ``observe_command``, ``observe_fetch`` …); gauges that mirror
state kept elsewhere (the outbox, leadership) are either set directly or refreshed right
before a scrape by callbacks registered with :meth:`Metrics.on_scrape`.

Label values that come from outside (a mistyped subcommand, an adapter name) are bounded:
at most ``max_label_values`` distinct values per label, the rest count as ``other``, so a
user typing random subcommands cannot grow the time-series count without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

OTHER = "other"
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Outbox states always exported (0 when absent) so dashboards and alerts see a series.
OUTBOX_STATES = ("pending", "sending", "unknown")

ScrapeCallback = Callable[["Metrics"], Awaitable[None]]
_LABEL_CHARS = re.compile(r"[^a-z0-9_.:-]+")


class _BoundedLabel:
    """Normalises label values and caps how many distinct ones a label may take."""

    def __init__(self, limit: int, allowed: Iterable[str] = ()) -> None:
        self.limit = limit
        self.seen: set[str] = {self._clean(v) for v in allowed}

    @staticmethod
    def _clean(value: str) -> str:
        cleaned = _LABEL_CHARS.sub("_", str(value).strip().lower())[:40]
        return cleaned or "none"

    def __call__(self, value: str) -> str:
        cleaned = self._clean(value)
        if cleaned in self.seen:
            return cleaned
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(cleaned)
        return cleaned


class Metrics:
    """paperboy's metrics; ``render()`` gives the Prometheus text exposition.

    ``clock`` measures durations for the ``time_*`` helpers (``time.perf_counter`` unless a
    test injects one). ``known_commands`` pre-admits subcommand names to the bounded label.
    ``scrape_timeout`` bounds each :meth:`on_scrape` callback.
    """

    def __init__(
        self,
        *,
        namespace: str = "paperboy",
        clock: Callable[[], float] = time.perf_counter,
        max_label_values: int = 32,
        known_commands: Iterable[str] = (),
        scrape_timeout: float = 2.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._scrape_timeout = scrape_timeout
        self._callbacks: list[ScrapeCallback] = []
        self._command_label = _BoundedLabel(max_label_values, known_commands)
        self._platform_label = _BoundedLabel(max_label_values)
        self._source_label = _BoundedLabel(max_label_values)
        self._outcome_label = _BoundedLabel(max_label_values)
        self._state_label = _BoundedLabel(max_label_values, OUTBOX_STATES)
        reg = self.registry
        ns = namespace

        self.posts = Counter(
            "posts", "Posts to chat platforms by outcome.", ["platform", "outcome"],
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.command_seconds = Histogram(
            "command_duration_seconds", "Time to answer a /papers command.", ["subcommand"],
            namespace=ns, registry=reg, buckets=COMMAND_BUCKETS,
        )  # fmt: skip
        self.fetches = Counter(
            "source_fetches", "Fetches from paper sources by outcome.", ["source", "outcome"],
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.fetch_seconds = Histogram(
            "source_fetch_duration_seconds", "Time of one fetch from a paper source.",
            ["source"], namespace=ns, registry=reg, buckets=FETCH_BUCKETS,
        )  # fmt: skip
        self.deliveries = Gauge(
            "deliveries", "Deliveries in the outbox by state (pending, sending, unknown).",
            ["state"], namespace=ns, registry=reg,
        )  # fmt: skip
        self.leader = Gauge(
            "scheduler_leader", "1 while this process holds the scheduler leader lock.",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.last_poll = Gauge(
            "last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll of Hugging Face (0: none yet).",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.search_papers = Gauge(
            "search_index_papers", "Papers in this process's search indexes.", ["index"],
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.semantic_ready = Gauge(
            "semantic_search_ready",
            "1 while searches rank by meaning too (model loaded, papers embedded).",
            namespace=ns, registry=reg,
        )  # fmt: skip
        self.scrape_errors = Counter(
            "metrics_scrape_errors", "Scrape callbacks that failed or timed out.",
            namespace=ns, registry=reg,
        )  # fmt: skip
        for state in OUTBOX_STATES:
            self.deliveries.labels(state=state).set(0)

    # --- events ---

    def count_post(self, platform: str, outcome: str) -> None:
        """One post attempt to ``platform`` ended with ``outcome`` (sent, unknown, failed …)."""
        self.posts.labels(
            platform=self._platform_label(platform), outcome=self._outcome_label(outcome)
        ).inc()

    def observe_command(self, name: str, seconds: float) -> None:
        """A ``/papers <name>`` command took ``seconds`` to answer."""
        self.command_seconds.labels(subcommand=self._command_label(name)).observe(max(seconds, 0))

    def observe_fetch(self, source: str, outcome: str, seconds: float) -> None:
        """A fetch from ``source`` ended with ``outcome`` (ok, error, rate_limited …)."""
        source = self._source_label(source)
        self.fetches.labels(source=source, outcome=self._outcome_label(outcome)).inc()
        self.fetch_seconds.labels(source=source).observe(max(seconds, 0))

    @contextlib.contextmanager
    def time_command(self, name: str) -> Iterator[None]:
        """Measure the enclosed block as a command (also when it raises)."""
        started = self._clock()
        try:
            yield
        finally:
            self.observe_command(name, self._clock() - started)

    @contextlib.contextmanager
    def time_fetch(self, source: str) -> Iterator[None]:
        """Measure the enclosed fetch: outcome ``ok``, or ``error`` if it raises."""
        started = self._clock()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.observe_fetch(source, outcome, self._clock() - started)

    # --- state ---

    def set_outbox(self, counts: dict[str, int]) -> None:
        """Mirror the outbox: deliveries per state. States not in ``counts`` drop to 0."""
        seen: set[str] = set()
        for state, count in counts.items():
            label = self._state_label(state)
            seen.add(label)
            self.deliveries.labels(state=label).set(count)
        for state in self._state_label.seen - seen:
            self.deliveries.labels(state=state).set(0)

    def set_leader(self, is_leader: bool) -> None:
        """Whether this process currently runs the scheduler."""
        self.leader.set(1 if is_leader else 0)

    def set_last_poll(self, when: datetime | None) -> None:
        """Time of the last successful poll (aware datetime; ``None`` resets to 0)."""
        self.last_poll.set(when.timestamp() if when is not None else 0)

    def set_search(self, lexical: int, embedded: int, semantic_ready: bool) -> None:
        """Papers in the lexical index, papers embedded, and whether meaning ranks too."""
        self.search_papers.labels(index="lexical").set(lexical)
        self.search_papers.labels(index="embedded").set(embedded)
        self.semantic_ready.set(1 if semantic_ready else 0)

    # --- exposition ---

    def on_scrape(self, callback: ScrapeCallback) -> None:
        """Run ``await callback(self)`` before each scrape (e.g. to count the outbox)."""
        self._callbacks.append(callback)

    async def refresh(self) -> None:
        """Run the scrape callbacks; a slow or failing one is logged and counted, not raised."""
        for callback in self._callbacks:
            try:
                await asyncio.wait_for(callback(self), self._scrape_timeout)
            except Exception as exc:
                self.scrape_errors.inc()
                log.warning("metrics callback %r failed: %r", callback, exc)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this registry and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

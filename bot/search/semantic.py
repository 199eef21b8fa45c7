"""The semantic half of search: the embedding model, the stored vectors, their index.

The model loads in the background (a first start may download it): until it has, and
while too few papers are embedded for meaning to rank fairly, search is lexical. When
it cannot be loaded (no network on a first start, a wrong folder) the log says so once,
and ``status`` shows why.

Memory: the model runs on one thread of its own, and after each round of embedding the
C library is asked to hand freed memory back (``malloc_trim``, glibc): ONNX Runtime's
tensors otherwise stay in malloc's arenas, and an idle bot that had embedded 503
papers held 480 MB instead of about 210 (bench/README.md, "Memory").
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from bot.search.embedding import Embedder
from bot.search.embedding_job import EmbeddingJob
from bot.search.vectors import VectorFollower
from bot.store import PaperStore
from bot.store.vectors import VectorStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# Share of the stored papers that must be embedded before meaning takes part in
# ranking: below it, papers not yet embedded would lose to those that are.
HYBRID_MIN_COVERAGE = 0.95
COVERAGE_EVERY_SECONDS = 30.0
QUERY_CACHE = 256  # query embeddings kept (paging through a search reuses its own)


@dataclass(frozen=True, slots=True)
class SemanticStatus:
    """For ``status`` and ``/readyz``: what semantic search is doing."""

    state: str  # off | loading | unavailable | ready
    model: str | None = None
    reason: str | None = None
    embedded: int = 0
    papers: int = 0

    @property
    def coverage(self) -> float:
        return self.embedded / self.papers if self.papers else 1.0


class Semantic:
    """The model (built by ``load``, in a worker thread; None: semantic search is off),
    the vectors it made for ``store``'s papers, and their index under ``directory``."""

    def __init__(
        self,
        store: PaperStore,
        directory: Path | None,
        load: Callable[[], Embedder] | None,
        *,
        owner: bool = True,
    ) -> None:
        self.store = store
        self.directory = directory
        self._load = load
        self.owner = owner
        self.embedder: Embedder | None = None
        self.vectors: VectorStore | None = None
        self.follower: VectorFollower | None = None
        self.job: EmbeddingJob | None = None
        self.status = SemanticStatus("off" if load is None else "loading")
        self._loaded = asyncio.Event()
        # Set when there may be papers to embed: new ones reached the index (this
        # process's writes, another's, a poll's).
        self.wanted = asyncio.Event()
        self._coverage_at = -COVERAGE_EVERY_SECONDS
        self._queries: dict[str, np.ndarray] = {}
        # Every use of the model on one thread of its own: ONNX Runtime's allocations then
        # come from one malloc arena, where spread over the default pool's threads each
        # kept its own peak (480 MB resident after embedding 503 papers, against 300).
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    async def start(self) -> None:
        """Load the model and open the vector index (a failure only turns semantic
        search off, with the reason in :attr:`status`)."""
        if self._load is None:
            self._loaded.set()
            return
        try:
            embedder = await _in_daemon_thread(self._load)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("semantic search is off, searches use words alone: %s", reason)
            self.status = SemanticStatus("unavailable", reason=reason)
            self._loaded.set()
            return
        vectors = VectorStore(self.store.db, embedder.name, embedder.dimensions)
        follower = VectorFollower(self.store, vectors, self.directory)
        await follower.open(owner=self.owner)
        self.embedder, self.vectors, self.follower = embedder, vectors, follower
        self.job = EmbeddingJob(vectors, embedder, run=self._on_model_thread)
        self.status = SemanticStatus("ready", model=embedder.name)
        self._loaded.set()
        log.info("semantic search: model %s loaded", embedder.name)
        await self.refresh()

    async def wait_loaded(self) -> None:
        """Until :meth:`start` has loaded the model or given up on it."""
        await self._loaded.wait()

    async def refresh(self, *, force: bool = False) -> None:
        """Catch the vector index up and, every ``COVERAGE_EVERY_SECONDS``, count how many
        papers are embedded."""
        if self.follower is None or self.vectors is None:
            return
        await self.follower.catch_up()
        now = time.monotonic()
        if force or now - self._coverage_at >= COVERAGE_EVERY_SECONDS:
            self._coverage_at = now
            embedded, papers = await self.vectors.count(), await self.store.count()
            self.status = SemanticStatus(
                "ready", model=self.status.model, embedded=embedded, papers=papers
            )

    @property
    def usable(self) -> bool:
        """Whether meaning takes part in ranking now."""
        return (
            self.follower is not None
            and self.status.state == "ready"
            and self.status.coverage >= HYBRID_MIN_COVERAGE
        )

    async def embed_query(self, text: str) -> np.ndarray:
        cached = self._queries.get(text)
        if cached is not None:
            return cached
        assert self.embedder is not None
        vector = await self._on_model_thread(self.embedder.embed_query, text)
        if len(self._queries) >= QUERY_CACHE:
            self._queries.pop(next(iter(self._queries)))
        self._queries[text] = vector
        return vector

    async def embed_pending(self, progress: Callable[[int], object] | None = None) -> int:
        """Embed the papers that have no vectors yet (the leader's job); returns how many."""
        if self.job is None:
            return 0
        done = await self.job.run(progress)
        if done:
            await self._on_model_thread(_release_memory)
            await self.refresh(force=True)
        return done

    async def _on_model_thread(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, function, *args)

    async def close(self) -> None:
        if self.follower is not None:
            await self.follower.close()
        self._model_thread.shutdown(wait=False, cancel_futures=True)


def _release_memory() -> None:
    """Return the memory the model freed to the system (glibc only; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


async def _in_daemon_thread(load: Callable[[], Embedder]) -> Embedder:
    """``load()`` in a thread of its own that never holds up the process's exit: a model
    download on a network that drops packets may take minutes to fail."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Embedder] = loop.create_future()

    def settle(result: Embedder | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result = load()
        except BaseException as exc:  # reported to the awaiting task
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=work, name="embedding-model", daemon=True).start()
    return await future


__all__ = ["HYBRID_MIN_COVERAGE", "Semantic", "SemanticStatus"]

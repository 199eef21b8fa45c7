"""Embedding models: what turns a paper or a query into vectors.

:class:`Embedder` is the small interface search needs; :class:`FastEmbedder` is the
real one, on fastembed (ONNX Runtime, no torch), loaded by model name (downloaded once
into the data directory) or from a folder for offline installs. Tests give their own
tiny embedder. :func:`paper_texts` says what of a paper is embedded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.models import Paper

log = logging.getLogger(__name__)

# A paper is embedded as its title and abstract in one text, then its abstract in
# passages of two sentences (and its AI summary as one more): a paraphrase of one
# finding matches the passage that states it, where one vector for the whole abstract
# averages it away (dev-set MRR@10 on vocabulary-mismatch queries, dense alone: 0.68
# whole text, 0.76 with passages; bench/README.md, "Semantic search").
SENTENCES_PER_PASSAGE = 2
MAX_PASSAGES = 12
# The whole-text vector reads this many words at most (~250 tokens: all-MiniLM-L6-v2 was
# trained on 256; longer texts cost quadratic memory and time in attention).
WHOLE_TEXT_WORDS = 180
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


class Embedder(Protocol):
    """Turns text into L2-normalised vectors of ``dimensions`` floats."""

    name: str  # stored with each vector: vectors of another model are not comparable
    dimensions: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, float32."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One vector, float32."""
        ...


def paper_texts(paper: Paper) -> list[str]:
    """The texts a paper is embedded as: ``title. abstract`` first, then passages of
    :data:`SENTENCES_PER_PASSAGE` sentences of the abstract (the last ones joined so
    that there are at most :data:`MAX_PASSAGES`), then the AI summary if there is one."""
    title = " ".join(paper.title.split())
    words = (paper.abstract or "").split()
    abstract = " ".join(words)
    texts = [f"{title}. {' '.join(words[:WHOLE_TEXT_WORDS])}" if words else title]
    sentences = [s for s in _SENTENCE_END.split(abstract) if s]
    size = max(SENTENCES_PER_PASSAGE, -(-len(sentences) // MAX_PASSAGES))
    texts += [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]
    if paper.ai_summary and paper.ai_summary.strip():
        texts.append(" ".join(paper.ai_summary.split()))
    return texts


class ModelUnavailable(RuntimeError):
    """The embedding model cannot be loaded; the message says why."""


class FastEmbedder:
    """A fastembed model. ``model_path``: a folder with the model's files (no download);
    else the model is looked up in ``cache_dir`` and, when missing and ``download``,
    downloaded there. ``threads``: ONNX Runtime's threads (None: all cores)."""

    def __init__(
        self,
        model_name: str,
        *,
        cache_dir: Path,
        model_path: Path | None = None,
        threads: int | None = None,
        download: bool = True,
    ) -> None:
        from fastembed import TextEmbedding
        from loguru import logger

        # fastembed reports through loguru, a line per retry; paperboy says it once.
        logger.disable("fastembed")
        # No memory arena: ONNX Runtime would keep its peak allocation (the longest batch
        # of an import) for the process's life: 500 MB resident at idle instead of 210.
        options: dict[str, Any] = {
            "cache_dir": str(cache_dir),
            "threads": threads,
            "enable_cpu_mem_arena": False,
        }
        if model_path is not None:
            options["specific_model_path"] = str(model_path)
        try:  # what is already on disk first: no network wait
            self._model = TextEmbedding(model_name, local_files_only=True, **options)
        except Exception as exc:
            if model_path is not None:
                raise ModelUnavailable(f"cannot load {model_path}: {_reason(exc)}") from exc
            if not download:
                raise ModelUnavailable(
                    f"{model_name} is not downloaded yet (paperboy run and "
                    "paperboy index embed fetch it)"
                ) from exc
            try:
                self._model = TextEmbedding(model_name, **options)
            except Exception as exc:
                raise ModelUnavailable(f"cannot download {model_name}: {_reason(exc)}") from exc
        self.name = model_name
        self.dimensions = int(self.embed_query("probe").shape[0])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        # One text at a time: fastembed pads a batch to its longest text, so batches of
        # 2-8 were 1.5-2.2x slower here, and memory grows with the batch.
        rows = list(self._model.passage_embed(list(texts), batch_size=1))
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(next(iter(self._model.query_embed(text))), dtype=np.float32)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


__all__ = ["Embedder", "FastEmbedder", "ModelUnavailable", "paper_texts"]

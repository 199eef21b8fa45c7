"""How text becomes search terms: one analyzer for indexing, querying and watches.

The search index (:mod:`bot.search.lexical`, tantivy) is fed the output of
:func:`analyzed_text` split on spaces, queries are compiled from :func:`analyze` of
their words, and keyword watches evaluate queries with the same function. That is what
makes "a watch fires exactly when a search finds the paper with all its words" hold by
construction rather than by hoping two stemmers agree.

Steps: Unicode compatibility normalisation, case folding, diacritics removed, split into
runs of letters and digits, English stop words dropped, the plural s of acronyms dropped
("LLMs", "SSMs", "GPUs": Snowball keeps it), Snowball English stemming. A word mixing
letters and digits becomes its parts ("Llama3" -> "llama 3", "A100" -> "a 100"), so
`llama` finds Llama3 and a query for `llama3` is the phrase "llama 3"; the parts are
never stop words.

Speed matters (every imported paper goes through here), so ASCII is split with a byte
translation table and each distinct chunk is analyzed once (a memo); :func:`analyze_reference`
is the plain, slow definition the fast path is tested against.
"""

from __future__ import annotations

import re
import string
import unicodedata

import Stemmer

# Bump when this analyzer's output changes: search indexes built by another version are
# rebuilt on start (bot.search.lexical).
ANALYZER_VERSION = 4

MAX_TERM_CHARS = 64

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "which",
        "with",
    }
)

_WORD = re.compile(r"[^\W_]+")
_PARTS = re.compile(r"[^\W\d_]+|\d+")  # the letter runs and digit runs of a word
_stemmer = Stemmer.Stemmer("english")

# ASCII letters are lower-cased, other ASCII that is not a letter or digit becomes a
# space; bytes >= 128 (UTF-8 of non-ASCII characters) are kept and handled per word.
_ASCII_TOKEN_BYTES = frozenset((string.ascii_lowercase + string.digits).encode())
_SPLIT_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if c in _ASCII_TOKEN_BYTES or c >= 128 else 32
    for c in range(256)
)


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", text)


def _stem_word(word: str) -> str:
    if word in STOP_WORDS:
        return ""
    return _stem(word)


def _stem(word: str) -> str:
    return _stemmer.stemWord(_singular_acronym(word))[:MAX_TERM_CHARS]


def _word_terms(word: str) -> list[str]:
    """The terms of one word: itself, or the parts of a word mixing letters and digits."""
    parts = _PARTS.findall(word)
    if len(parts) <= 1:
        term = _stem_word(word)
        return [term] if term else []
    return [_stem(part) for part in parts]


_VOWELS = frozenset("aeiouy")


def _singular_acronym(word: str) -> str:
    """``word`` without the plural s of an acronym, which Snowball keeps because no
    vowel comes before it: "llms" -> "llm", "cnns" -> "cnn", and the "-pus" of "gpus",
    "cpus", "tpus" (not "opus"). Other words are returned as they are."""
    if len(word) < 3 or word[-1] != "s" or not (word.isascii() and word.isalpha()):
        return word
    stem = word[:-1]
    if _VOWELS.isdisjoint(stem) or (len(word) == 4 and stem[1:] == "pu" and stem[0] not in _VOWELS):
        return stem
    return word


def analyze_reference(text: str | None) -> list[str]:
    """The definition of the analyzer, written plainly (used to test the fast path)."""
    if not text:
        return []
    return [t for w in _WORD.findall(_fold(text)) for t in _word_terms(w)]


def _resolve_chunk(chunk: bytes) -> bytes:
    """The terms of one space-free chunk of the byte-split text, joined by spaces."""
    return " ".join(analyze_reference(chunk.decode("utf-8", "replace"))).encode()


class _ChunkTerms(dict[bytes, bytes]):
    """Memo: chunk -> its terms."""

    def __missing__(self, chunk: bytes) -> bytes:
        if len(self) >= 1_000_000:
            self.clear()
        terms = self[chunk] = _resolve_chunk(chunk)
        return terms


_chunks = _ChunkTerms()
_chunk_terms = _chunks.__getitem__


def analyzed_text(text: str | None) -> str:
    """The index terms of ``text`` joined by spaces: the form the search index stores."""
    if not text:
        return ""
    chunks = text.encode("utf-8", "replace").translate(_SPLIT_TABLE).split()
    return b" ".join(filter(None, map(_chunk_terms, chunks))).decode()


def analyze(text: str | None) -> list[str]:
    """The index terms of ``text``, in order (positions matter for phrases)."""
    return analyzed_text(text).split()


__all__ = [
    "ANALYZER_VERSION",
    "MAX_TERM_CHARS",
    "STOP_WORDS",
    "analyze",
    "analyze_reference",
    "analyzed_text",
]

"""The query language shared by search and keyword watches.

``diffusion video`` (all words) · ``"state space"`` (phrase) · ``mamba OR ssm`` ·
``-survey`` (exclude) · ``author:hinton`` · ``title:"world model"``.

A query is parsed once into a small AST: an AND of groups, each group an OR of terms,
minus excluded terms. Every term is run through :mod:`bot.terms`, so what reaches the
search index (:mod:`bot.search.lexical`, which builds tantivy query objects from the
AST) is only analyzer output: user text never reaches any query syntax.
:func:`matches` evaluates the same AST against a paper's indexed fields, for watches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.models import Paper
from bot.terms import analyze, analyzed_text

MAX_QUERY_CHARS = 300
MAX_TERMS = 12


class QueryError(ValueError):
    """A query that cannot be run; ``str(error)`` is one sentence a user can act on."""


class Field(StrEnum):
    ANY = "any"  # title, keywords, AI summary and abstract
    TITLE = "title"
    AUTHOR = "author"


# Indexed columns. ANY searches all but the authors.
INDEX_COLUMNS = ("title", "keywords", "summary", "abstract", "authors")
FIELD_COLUMNS: dict[Field, tuple[str, ...]] = {
    Field.ANY: ("title", "keywords", "summary", "abstract"),
    Field.TITLE: ("title",),
    Field.AUTHOR: ("authors",),
}

_FIELD_PREFIX = re.compile(r"(author|authors|au|title|ti):", re.IGNORECASE)
_FIELD_ALIASES = {
    "author": Field.AUTHOR,
    "authors": Field.AUTHOR,
    "au": Field.AUTHOR,
    "title": Field.TITLE,
    "ti": Field.TITLE,
}


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase as analyzed terms; more than one term means a phrase."""

    terms: tuple[str, ...]
    field: Field = Field.ANY
    text: str = ""  # as the user typed it, for messages

    @property
    def is_phrase(self) -> bool:
        return len(self.terms) > 1


@dataclass(frozen=True, slots=True)
class Query:
    """``groups`` are ANDed; the terms inside a group are ORed; ``excluded`` must not match."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()
    source: str = ""

    def with_groups(self, groups: Sequence[tuple[Term, ...]]) -> Query:
        """The same query asking for only ``groups`` (used to find partial matches)."""
        return Query(groups=tuple(groups), excluded=self.excluded, source=self.source)

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(t for group in self.groups for t in group)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    field: Field | None
    negated: bool
    quoted: bool


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(source)
    while i < n:
        if source[i].isspace():
            i += 1
            continue
        negated = False
        if source[i] == "-" and i + 1 < n and not source[i + 1].isspace():
            negated = True
            i += 1
        field = None
        prefix = _FIELD_PREFIX.match(source, i)
        if prefix and prefix.end() < n and not source[prefix.end()].isspace():
            field = _FIELD_ALIASES[prefix.group(1).lower()]
            i = prefix.end()
        if source[i] == '"':
            end = source.find('"', i + 1)
            end = n if end < 0 else end
            out.append(_Token(source[i + 1 : end], field, negated, True))
            i = end + 1
        else:
            end = i
            while end < n and not source[end].isspace():
                end += 1
            out.append(_Token(source[i:end], field, negated, False))
            i = end
    return out


def _same(a: Term, b: Term) -> bool:
    return a.terms == b.terms and a.field == b.field


def parse(source: str) -> Query:
    """Parse a user's query. Raises :class:`QueryError` with a helpful sentence."""
    text = " ".join(source.split())
    if not text:
        raise QueryError('Type something to look for, e.g. `diffusion video` or `"state space"`.')
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"That query is too long: keep it under {MAX_QUERY_CHARS} characters.")
    text = "".join(ch for ch in text if ch.isprintable())

    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    dropped: list[str] = []
    for token in _tokens(text):
        if token.text == "OR" and not token.quoted and token.field is None and not token.negated:
            join_next = bool(groups)
            continue
        if not token.quoted and token.field is None and _FIELD_PREFIX.fullmatch(token.text):
            field = _FIELD_ALIASES[token.text[:-1].lower()]
            word, words = (
                ("hinton", '"geoffrey hinton"')
                if field is Field.AUTHOR
                else ("diffusion", '"state space"')
            )
            raise QueryError(
                f"`{token.text}` needs a word right after it, e.g. `{token.text}{word}` "
                f"or `{token.text}{words}`."
            )
        terms = tuple(analyze(token.text))
        if not terms:
            dropped.append(token.text)
            continue
        term = Term(terms, token.field or Field.ANY, token.text)
        if token.negated:
            excluded.append(term)
        elif join_next and groups:
            if not any(_same(term, t) for t in groups[-1]):
                groups[-1].append(term)
        elif not any(len(g) == 1 and _same(term, g[0]) for g in groups):
            groups.append([term])
        join_next = False

    if not groups:
        if excluded:
            raise QueryError("Add at least one word to look for: a query cannot only exclude.")
        if dropped:
            shown = (" ".join(d for d in dropped if d) or text)[:60]
            raise QueryError(
                f"Nothing to look for in `{shown}`: "
                "it has only very common words, or no letters or digits."
            )
        raise QueryError('Type something to look for, e.g. `diffusion video` or `"state space"`.')
    count = sum(len(g) for g in groups) + len(excluded)
    if count > MAX_TERMS:
        raise QueryError(f"That query has {count} terms; use at most {MAX_TERMS}.")
    return Query(tuple(tuple(g) for g in groups), tuple(excluded), text)


# --- evaluation against one paper (watches) ----------------------------------------


def free_text(query: Query) -> str:
    """The words of ``query``'s unfielded terms as typed: what its meaning is read from
    (``author:`` and ``title:`` terms, and exclusions, are conditions on words)."""
    return " ".join(t.text for t in query.terms if t.field is Field.ANY and t.text)


def index_fields(paper: Paper) -> dict[str, str]:
    """The analyzed text of each indexed column, exactly as the store indexes it."""
    return {
        "title": analyzed_text(paper.title),
        "keywords": analyzed_text(" ".join(paper.ai_keywords)),
        "summary": analyzed_text(paper.ai_summary),
        "abstract": analyzed_text(paper.abstract),
        "authors": analyzed_text(" ".join(paper.author_names)),
    }


def paper_terms(paper: Paper) -> dict[str, list[str]]:
    """``index_fields`` split into term lists: what :func:`matches` evaluates."""
    return {column: text.split() for column, text in index_fields(paper).items()}


def contains_phrase(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Whether the terms ``needle`` occur in ``haystack`` as one contiguous run."""
    if len(needle) == 1:
        return needle[0] in haystack
    first, size = needle[0], len(needle)
    return any(
        word == first and tuple(haystack[i : i + size]) == tuple(needle)
        for i, word in enumerate(haystack)
    )


def term_matches(term: Term, fields: Mapping[str, Sequence[str]]) -> bool:
    return any(contains_phrase(fields.get(c, ()), term.terms) for c in FIELD_COLUMNS[term.field])


def matches(query: Query, fields: Mapping[str, Sequence[str]]) -> bool:
    """Whether a paper with these analyzed ``fields`` (column -> terms) satisfies ``query``."""
    return all(any(term_matches(t, fields) for t in group) for group in query.groups) and not any(
        term_matches(t, fields) for t in query.excluded
    )


__all__ = [
    "FIELD_COLUMNS",
    "INDEX_COLUMNS",
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "Field",
    "Query",
    "QueryError",
    "Term",
    "contains_phrase",
    "free_text",
    "index_fields",
    "matches",
    "paper_terms",
    "parse",
    "term_matches",
]

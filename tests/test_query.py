from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Author, Paper
from bot.query import (
    MAX_QUERY_CHARS,
    Field,
    QueryError,
    index_fields,
    matches,
    parse,
)


def test_words_phrases_or_exclusion_and_fields():
    q = parse('"state space" OR mamba -survey author:gu title:video')
    assert [[t.terms for t in g] for g in q.groups] == [
        [("state", "space"), ("mamba",)],
        [("gu",)],
        [("video",)],
    ]
    assert [g[0].field for g in q.groups] == [Field.ANY, Field.AUTHOR, Field.TITLE]
    assert [t.terms for t in q.excluded] == [("survey",)]


def test_hyphenated_word_becomes_a_phrase_and_duplicates_collapse():
    q = parse("gpt-4o GPT-4o models model")
    assert [[t.terms for t in g] for g in q.groups] == [[("gpt", "4", "o")], [("model",)]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Type something"),
        ("   ", "Type something"),
        ("-survey", "cannot only exclude"),
        ("the of and", "very common words"),
        ("🙂 !!", "no letters or digits"),
        ("x" * (MAX_QUERY_CHARS + 1), "too long"),
        (" ".join(f"w{i}" for i in range(20)), "at most"),
        ("title:", "`title:` needs a word right after it, e.g. `title:diffusion`"),
        ("diffusion author: Smith", "`author:` needs a word right after it, e.g. `author:hin"),
        ('"', 'Nothing to look for in `"`'),
    ],
)
def test_unusable_queries_get_one_clear_sentence(text, message):
    with pytest.raises(QueryError, match=message):
        parse(text)


def test_smart_unbalanced_quote_runs_to_the_end():
    q = parse('"large language')
    assert q.groups[0][0].terms == ("larg", "languag")


hostile = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.sampled_from(
            [
                '"',
                "(",
                ")",
                "NEAR",
                "*",
                ":",
                "OR",
                "AND",
                "NOT",
                "-",
                "^",
                "'",
                ";",
                "--",
                "DROP TABLE papers",
                "\x00",
                "\n",
                "🙂",
                "title:",
                "author:",
                "{",
                "}",
                "diffusion",
                "model",
                "é",
                "\\",
            ]
        ),
        max_size=40,
    ).map(" ".join),
)


@pytest.fixture(scope="module")
def index():
    from bot.search.lexical import LexicalIndex

    lexical = LexicalIndex(None)
    lexical.apply([(1, _paper("Mamba state space", "video diffusion", ["Ada Lovelace"]))])
    lexical.commit()
    return lexical


@settings(max_examples=400)
@given(hostile)
def test_any_input_parses_or_gives_a_clear_message_and_runs_on_the_index(index, text):
    from bot.search.lexical import Filters

    try:
        q = parse(text)
    except QueryError as exc:
        assert str(exc).endswith(".") and len(str(exc)) < 200
        return
    for term in q.terms + q.excluded:  # only analyzer output reaches the index
        assert all(t.isalnum() for t in term.terms), term
    index.ranked(q, Filters(), limit=5, today=datetime(2025, 1, 1, tzinfo=UTC))
    index.count_matching(q, Filters())


def _paper(title, abstract="", authors=(), keywords=()):
    return Paper(
        id="x",
        title=title,
        abstract=abstract,
        authors=tuple(Author(a) for a in authors),
        ai_keywords=tuple(keywords),
    )


def _fields(paper):
    return {k: v.split() for k, v in index_fields(paper).items()}


def test_matches_evaluates_the_same_semantics():
    p = _fields(
        _paper(
            "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
            "We propose a state space model.",
            authors=("Albert Gu", "Tri Dao"),
        )
    )
    assert matches(parse('"state space" author:gu'), p)
    assert matches(parse("mamba OR transformer"), p)
    assert not matches(parse("mamba -selective"), p)
    assert matches(parse("title:models"), p)  # "Modeling" and "models" share the stem
    assert not matches(parse("title:propose"), p)
    assert matches(parse('"space state" OR linear'), p)
    assert not matches(parse('"space state"'), p)
    assert not matches(parse("author:mamba"), p)

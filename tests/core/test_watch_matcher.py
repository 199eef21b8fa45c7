"""The watch index finds exactly what evaluating every watch on every paper finds."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Author, Destination, Paper, Watch
from bot.watches import WatchMatcher

DM = Destination("slack", "T1", "U1", is_dm=True)
WORDS = [
    "diffusion",
    "video",
    "state",
    "space",
    "mamba",
    "models",
    "survey",
    "llm",
    "agents",
    "reasoning",
    "vision",
    "tokenizer",
    "gu",
    "dao",
    "hinton",
]


def _paper(i: int, title: str, abstract: str = "", authors=()) -> Paper:
    return Paper(
        id=f"2611.{i:05d}",
        title=title,
        abstract=abstract,
        authors=tuple(Author(a) for a in authors),
    )


def _watch(i: int, query: str) -> Watch:
    return Watch(owner=f"U{i}", destination=DM, query=query, id=i)


def test_matches_follow_the_query_language():
    papers = [
        _paper(1, "Mamba: Selective State Spaces", "A state space model.", ["Albert Gu"]),
        _paper(2, "A Survey of Diffusion Models", "We survey diffusion."),
        _paper(3, "Video Diffusion Transformers", "Diffusion for video."),
    ]
    matcher = WatchMatcher(
        [
            _watch(1, '"state space" OR mamba'),
            _watch(2, "diffusion -survey"),
            _watch(3, "author:gu"),
            _watch(4, "quantum"),
            _watch(5, "title:video diffusion"),
        ]
    )
    found = {m.watch.id: [p.id for p in m.papers] for m in matcher.match(papers)}
    assert found == {
        1: ["2611.00001"],
        2: ["2611.00003"],
        3: ["2611.00001"],
        5: ["2611.00003"],
    }


def test_phrases_are_checked_only_on_papers_with_all_their_words():
    matcher = WatchMatcher([_watch(i, f'"quantum{i} chemistry"') for i in range(100)])
    batch = [_paper(1, "Diffusion models"), _paper(2, "chemistry of quantum7")]
    assert matcher.match(batch) == []
    assert matcher.phrase_checks == 1  # only watch 7 on paper 2 needed a look


query_words = st.sampled_from(WORDS)
term = st.one_of(
    query_words,
    st.tuples(query_words, query_words).map(lambda t: f'"{t[0]} {t[1]}"'),
    query_words.map(lambda w: f"author:{w}"),
    query_words.map(lambda w: f"title:{w}"),
)
queries = st.lists(
    st.one_of(term, st.tuples(term, term).map(" OR ".join), query_words.map("-{}".format)),
    min_size=1,
    max_size=4,
).map(" ".join)
texts = st.lists(query_words, max_size=12).map(" ".join)
papers = st.lists(st.tuples(texts, texts, st.lists(query_words, max_size=3)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(queries, min_size=1, max_size=10), papers)
def test_index_equals_brute_force(query_list, paper_specs):
    watches = [_watch(i, q) for i, q in enumerate(query_list)]
    batch = [_paper(i, t, a, au) for i, (t, a, au) in enumerate(paper_specs)]
    matcher = WatchMatcher(watches)

    def key(found):
        return sorted((m.watch.id, [p.id for p in m.papers]) for m in found)

    assert key(matcher.match(batch)) == key(matcher.match_brute_force(batch))

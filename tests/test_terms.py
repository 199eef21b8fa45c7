import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.terms import STOP_WORDS, analyze, analyze_reference, analyzed_text


def test_words_are_folded_stemmed_and_stop_words_dropped():
    assert analyze("The Diffusion Models of VIDÉO generation") == analyze(
        "diffusion model video generations"
    )
    assert "the" not in analyze("the state of the art")
    assert analyze("state-of-the-art") == ["state", "art"]


def test_letters_and_digits_split_into_parts_that_are_never_stop_words():
    assert analyze("GPT-4o, Llama3.1 (8B) on an A100") == (
        ["gpt", "4", "o", "llama", "3", "1", "8", "b", "a", "100"]
    )
    assert analyze("Mamba2") == analyze("mamba 2") == ["mamba", "2"]
    assert analyze("a 100") == ["100"]  # "a" alone is a stop word; in "A100" it is not


@pytest.mark.parametrize(
    ("plural", "singular"),
    [("LLMs", "LLM"), ("SSMs", "ssm"), ("CNNs", "cnn"), ("MLLMs", "mllm"), ("GPUs", "GPU"),
     ("tpus", "tpu"), ("VAEs", "VAE"), ("PDFs", "pdf")],
)  # fmt: skip
def test_an_acronym_and_its_plural_are_one_term(plural, singular):
    # Snowball keeps the s when no vowel precedes it ("llms"), or only one right before it
    # ("gpus"); a search for `ssm` must still find "SSMs".
    assert analyze(plural) == analyze(singular) == [singular.lower()]


@pytest.mark.parametrize("word", ["opus", "corpus", "gas", "bus", "thus", "plus", "ms"])
def test_words_that_only_look_like_acronym_plurals_keep_their_s(word):
    assert analyze(word) == [word]


def test_non_latin_scripts_are_kept():
    assert analyze("東京 모델 Модели") == analyze_reference("東京 모델 Модели")
    assert len(analyze("東京 모델 Модели")) == 3


def test_empty_and_none():
    assert analyze(None) == [] and analyzed_text("") == "" and analyze(" ,.; ") == []


@settings(max_examples=300)
@given(st.text())
def test_fast_path_equals_the_reference_definition(text):
    assert analyze(text) == analyze_reference(text)


@settings(max_examples=200)
@given(st.text())
def test_terms_are_plain_words_safe_for_any_index(text):
    for term in analyze(text):
        assert term
        assert all(ch.isalnum() for ch in term), term
        assert len(term) <= 64
    # Stop words are dropped as words; they only stay as parts of words like "A100".
    # (Digits as the analyzer sees them: "¼" is "1⁄4" once normalized.)
    words = analyze(
        " ".join(
            w
            for w in text.split()
            if not any(c.isdigit() for c in unicodedata.normalize("NFKD", w.casefold()))
        )
    )
    assert not STOP_WORDS.intersection(words)

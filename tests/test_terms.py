from hypothesis import given, settings
from hypothesis import strategies as st

from bot.terms import STOP_WORDS, analyze, analyze_reference, analyzed_text


def test_words_are_folded_stemmed_and_stop_words_dropped():
    assert analyze("The Diffusion Models of VIDÉO generation") == analyze(
        "diffusion model video generations"
    )
    assert "the" not in analyze("the state of the art")
    assert analyze("state-of-the-art") == ["state", "art"]


def test_digits_and_letters_stay_together_and_punctuation_splits():
    assert analyze("GPT-4o, Llama3.1 (8B)") == ["gpt", "4o", "llama3", "1", "8b"]


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
        assert term and term not in STOP_WORDS
        assert all(ch.isalnum() for ch in term), term
        assert len(term) <= 64

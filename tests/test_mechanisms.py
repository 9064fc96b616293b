"""Dropout twins and the inside of the loss, on the tiny random BERT (and MiniLM, marked integration)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from simcse_core.teaching.mechanisms import (
    anatomy_of,
    dropout_twins,
    dropout_views,
    loss_anatomy,
    private_view,
    twin_drift,
)
from simcse_core.training.losses import simcse_loss

SENTENCES = ["a man plays a guitar", "the dog runs in the park", "a cat eats food", "the stock price fell",
             "she cooks in the kitchen", "the boat is on the sea", "the child reads a book", "a red car"]
TRIPLETS = [(SENTENCES[i], SENTENCES[(i + 1) % 8], SENTENCES[(i + 4) % 8]) for i in range(8)]


def _dropout_rates(encoder) -> list[float]:
    return [m.p for m in encoder.model.modules() if isinstance(m, nn.Dropout)]


def _naive_rows(z1, z2, hard=None, temperature=0.05, alpha=1.0) -> list[float]:
    """Each anchor's loss by a float64 loop (independent of simcse_core)."""
    z1, z2 = z1.double(), z2.double()
    hard = None if hard is None else hard.double()
    rows = []
    for i in range(len(z1)):
        def cos(u, v):
            return float(u @ v / (u.norm() * v.norm()))

        logits = [cos(z1[i], z2[j]) / temperature for j in range(len(z2))]
        if hard is not None:
            logits += [cos(z1[i], hard[j]) / temperature + (math.log(alpha) if j == i else 0.0)
                       for j in range(len(hard))]
        top = max(logits)  # log-sum-exp without overflow at τ = 0.001
        rows.append(top + math.log(sum(math.exp(v - top) for v in logits)) - logits[i])
    return rows


# ---- dropout twins ------------------------------------------------------------------------------------------

def test_twins_differ_in_training_mode_and_agree_in_evaluation_mode(tiny_encoder):
    twins = dropout_twins(tiny_encoder, SENTENCES[:3], dropout=0.3)
    assert all(c < 0.9999 for c in twins.twin_cosines)
    assert twins.eval_identical
    assert twins.eval_cosines == pytest.approx([1.0] * 3, abs=1e-6)
    assert len(twins.nearest_other) == 3


def test_no_dropout_means_identical_twins_even_in_training_mode(tiny_encoder):
    twins = dropout_twins(tiny_encoder, SENTENCES[0], dropout=0.0)
    assert twins.twin_cosines == pytest.approx([1.0], abs=1e-6)
    assert twins.nearest_other is None


def test_more_dropout_drifts_further_and_a_seed_repeats_the_twins(tiny_encoder):
    low, high = twin_drift(tiny_encoder, SENTENCES[:4], [0.05, 0.5])
    assert high < low < 1.0
    again = dropout_twins(tiny_encoder, SENTENCES[:4], dropout=0.5).twin_cosines
    assert again == pytest.approx(dropout_twins(tiny_encoder, SENTENCES[:4], dropout=0.5).twin_cosines)


def test_the_shared_encoder_is_never_changed(tiny_encoder):
    rates, before = _dropout_rates(tiny_encoder), tiny_encoder.encode(SENTENCES)
    weights = {name: p.clone() for name, p in tiny_encoder.named_parameters()}
    dropout_twins(tiny_encoder, SENTENCES[:2], dropout=0.5)
    dropout_views(tiny_encoder, SENTENCES, dropout=0.5)
    assert not tiny_encoder.training and _dropout_rates(tiny_encoder) == rates
    assert all(torch.equal(p, weights[name]) for name, p in tiny_encoder.named_parameters())
    np.testing.assert_array_equal(tiny_encoder.encode(SENTENCES), before)


def test_private_view_shares_the_weights_but_not_the_flags(tiny_encoder):
    view = private_view(tiny_encoder, dropout=0.4)
    view.train()
    assert not tiny_encoder.training and view.training
    assert set(_dropout_rates(view)) == {0.4} and 0.4 not in _dropout_rates(tiny_encoder)
    pairs = zip(view.parameters(), tiny_encoder.parameters(), strict=True)
    assert all(a.data_ptr() == b.data_ptr() for a, b in pairs)
    assert view.tokenizer is tiny_encoder.tokenizer  # shared: its calls are made under a lock


def test_twins_in_other_threads_never_disturb_evaluation_in_this_one(tiny_encoder):
    reference = tiny_encoder.encode(SENTENCES)
    stop, errors = threading.Event(), []

    def twins_forever():
        try:
            while not stop.is_set():
                dropout_twins(tiny_encoder, SENTENCES[:4], dropout=0.5, seed=None)
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=twins_forever) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(15):
            np.testing.assert_array_equal(tiny_encoder.encode(SENTENCES), reference)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors


@pytest.mark.parametrize(("sentences", "dropout", "message"), [
    ([], 0.1, "at least one"), (["fine", "  "], 0.1, "Sentence 2 is empty"), (["x"], 0.95, "dropout"),
    (["x"] * 33, 0.1, "At most 32"),
])
def test_twins_refuse_bad_input_with_a_clear_message(tiny_encoder, sentences, dropout, message):
    with pytest.raises(ValueError, match=message):
        dropout_twins(tiny_encoder, sentences, dropout=dropout)


# ---- inside the loss ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.001, 0.05, 1.0])
def test_unsupervised_anatomy_equals_simcse_loss(tiny_encoder, temperature):
    views = dropout_views(tiny_encoder, SENTENCES, dropout=0.2)
    assert views.mode == "unsup" and views.candidates == tuple(SENTENCES)
    assert not torch.allclose(views.z1, views.z2)  # two dropout views
    anatomy = anatomy_of(views, temperature=temperature)
    expected = float(simcse_loss(views.z1, views.z2, temperature=temperature))
    assert anatomy.loss == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert float(anatomy.row_losses.mean()) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert anatomy.row_losses == pytest.approx(_naive_rows(views.z1, views.z2, temperature=temperature),
                                               rel=1e-4, abs=1e-4)
    assert anatomy.cosines.shape == anatomy.probabilities.shape == (8, 8)
    np.testing.assert_allclose(anatomy.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert anatomy.chance == pytest.approx(math.log(8))


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_supervised_anatomy_has_the_hard_negative_block_and_equals_simcse_loss(tiny_encoder, alpha):
    views = dropout_views(tiny_encoder, TRIPLETS, dropout=0.1)
    assert views.mode == "sup" and len(views.candidates) == 16
    anatomy = anatomy_of(views, temperature=0.05, hard_negative_weight=alpha)
    expected = float(simcse_loss(views.z1, views.z2, views.hard, temperature=0.05, hard_negative_weight=alpha))
    assert anatomy.loss == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert anatomy.row_losses == pytest.approx(
        _naive_rows(views.z1, views.z2, views.hard, temperature=0.05, alpha=alpha), rel=1e-4, abs=1e-4)
    assert anatomy.cosines.shape == (8, 16)
    assert anatomy.chance == pytest.approx(math.log(16))


def test_lower_temperature_sharpens_every_row():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 16), torch.randn(6, 16)
    sharp, flat = loss_anatomy(z1, z2, temperature=0.01), loss_anatomy(z1, z2, temperature=1.0)
    assert (sharp.probabilities.max(axis=1) > flat.probabilities.max(axis=1)).all()
    assert flat.loss == pytest.approx(flat.chance, abs=0.5)  # τ = 1 on random vectors: close to guessing


def test_views_refuse_a_batch_of_one_and_mixed_rows(tiny_encoder):
    with pytest.raises(ValueError, match="2 to 32"):
        dropout_views(tiny_encoder, SENTENCES[:1])
    with pytest.raises(ValueError, match="same width"):
        dropout_views(tiny_encoder, [TRIPLETS[0], TRIPLETS[1][:2]])


@pytest.mark.integration
def test_minilm_twins_and_loss(minilm):
    twins = dropout_twins(minilm, SENTENCES[:2], dropout=0.1)
    assert 0.8 < twins.mean_twin_cosine < 0.9999 and twins.eval_identical
    views = dropout_views(minilm, SENTENCES, dropout=0.1)
    anatomy = anatomy_of(views)
    assert anatomy.loss == pytest.approx(float(simcse_loss(views.z1, views.z2)), rel=1e-6, abs=1e-6)
    assert anatomy.correct.all()  # a trained sentence model finds every twin among 8 sentences


# ---- ablation presets ------------------------------------------------------------------------------------------

def test_presets_carry_the_papers_figures_and_valid_configs():
    from simcse_core.teaching import ablations

    assert [p.paper_stsb_dev for p in ablations.presets_in("dropout")] == [71.1, 72.6, 81.1, 82.5, 81.4, 80.5,
                                                                            71.0, 43.6]
    assert [p.paper_stsb_dev for p in ablations.presets_in("pooler")] == [81.7, 82.5, 80.9, 81.2]
    assert ablations.get_preset("aug-mlm-15").paper_stsb_dev == 62.2
    fixed = ablations.get_preset("dropout-fixed-0.1")
    assert fixed.config.fixed_dropout_mask and fixed.config.dropout == 0.1
    assert ablations.get_preset("tau-0.001").config.temperature == 0.001
    assert not ablations.get_preset("sup-no-hard").hard_negatives
    assert ablations.get_preset("sup-alpha-0.5").config.hard_negative_weight == 0.5
    assert all(k in ablations.PRESETS_BY_KEY for k in ablations.DEFAULT_IN_GROUP.values())
    with pytest.raises(ValueError, match="Unknown ablation preset"):
        ablations.get_preset("dropout-2")


def test_every_preset_compares_with_a_paper_row_of_its_own_table_and_setting():
    from simcse_core.teaching import ablations

    for preset in ablations.PRESETS:
        assert preset.paper.table == ablations.GROUP_TABLES[preset.group], preset.key
        assert preset.paper.split == "STS-B dev", preset.key
        if not preset.same_setting:  # only Table D.1, whose setting the paper leaves unstated (inferred sup)
            assert preset.group == "temperature" and preset.paper.setting == "sup" and preset.setting == "unsup"
    unsup = [p for p in ablations.PRESETS if p.group in ("augmentation", "dropout", "pooler")]
    assert all(p.setting == "unsup" and p.paper.setting == "unsup" for p in unsup)
    assert all(p.setting == "sup" for p in ablations.presets_in("hard_negatives"))


def test_presets_of_a_table_differ_only_in_their_row(tiny_encoder):
    from dataclasses import asdict

    from simcse_core.teaching import ablations

    for group in ablations.GROUPS:
        configs = [asdict(p.config) for p in ablations.presets_in(group)]
        for key in ("steps", "batch_size", "lr", "max_length", "seed"):
            assert len({c[key] for c in configs}) == 1, (group, key)


def test_augmented_presets_train_on_pairs_of_a_lesson_sentence_and_its_view(monkeypatch):
    from simcse_core.teaching import ablations, lessons

    monkeypatch.setattr(lessons, "lesson_sentences", lambda: ("the man plays the guitar in the park",) * 3)
    ablations._augmented.cache_clear()
    pairs = ablations.training_data(ablations.get_preset("aug-crop-30"))
    assert pairs[0][0] == "the man plays the guitar in the park" and pairs[0][1] in pairs[0][0]
    assert len(pairs[0][1].split()) == 6
    assert ablations.get_preset("aug-crop-30").config.pooler == ablations.START_POOLER
    ablations._augmented.cache_clear()
    assert ablations.training_data(ablations.get_preset("dropout-0")) == ["the man plays the guitar in the park"] * 3


def test_a_preset_runs_on_a_copy_and_disagreements_are_named(tiny_encoder):
    from dataclasses import replace

    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.teaching import ablations

    pairs = ScoredPairs("tiny", tuple(SENTENCES[:4]), tuple(SENTENCES[4:]), (4.5, 1.0, 4.2, 0.5), "test", False)
    before = tiny_encoder.encode(SENTENCES)
    results = []
    for key in ("dropout-0.1", "dropout-0"):
        preset = ablations.get_preset(key)
        preset = replace(preset, config=replace(preset.config, steps=2, batch_size=4, lr=1e-3, eval_every=0,
                                                pooler="mean"))
        _, events = ablations.start(preset, tiny_encoder, pairs, data=SENTENCES)
        results.append(ablations.summarize(preset, list(events), pairs.name))
    np.testing.assert_array_equal(tiny_encoder.encode(SENTENCES), before)  # the base model is untouched
    assert results[0].steps == 2 and len(results[0].history) == 2
    forced = replace(results[1], history=(results[1].before, {**results[1].after,
                                                              "spearman": results[0].after["spearman"] + 5}))
    notes = ablations.disagreements([results[0], forced])
    assert len(notes) == 1 and notes[0].startswith("dropout 0: the paper finds -11.4")
    assert ablations.unequal_lengths(results) is None
    assert "(1, 2)" in ablations.unequal_lengths([replace(results[0], steps=1), results[1]])

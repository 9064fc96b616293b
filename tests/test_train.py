"""Tests of the tiny trainer on the tiny random BERT (fast) and, marked integration, on MiniLM."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from simcse_core.evaluation.sets import ScoredPairs
from simcse_core.model.loading import load_encoder
from simcse_core.training.train import TrainConfig, TrainEvent, _batch_indices, lr_factor, train

SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
    "a red car drives on the road", "the bird sings in the rain", "they play football with a ball",
    "he drives a big blue car", "the boat is on the sea", "children are playing in the school",
    "a fish is in the river", "the sun is big",
]
PAIRS = [(SENTENCES[i], SENTENCES[(i + 1) % 16]) for i in range(16)]
TRIPLETS = [(a, b, SENTENCES[(i + 5) % 16]) for i, (a, b) in enumerate(PAIRS)]
FAST = TrainConfig(steps=3, batch_size=8, lr=1e-3, eval_every=0)


def _eval_pairs() -> ScoredPairs:
    first = tuple(SENTENCES[:8])
    second = tuple(SENTENCES[8:])
    scores = (4.5, 1.0, 4.2, 0.5, 3.0, 2.0, 4.8, 1.5)
    return ScoredPairs("tiny pairs", first, second, scores, source="test", is_benchmark=False)


def _losses(events: list[TrainEvent]) -> list[float]:
    return [event.loss for event in events if event.step > 0]


def _naive_loss(z1, z2, hard=None, temperature=0.05, alpha=1.0) -> float:
    """InfoNCE of SimCSE by a loop over anchors, in float64 (independent of simcse_core.training.losses)."""
    z1, z2 = z1.double(), z2.double()
    hard = None if hard is None else hard.double()
    total = 0.0
    for i in range(z1.shape[0]):
        def cos(u, v):
            return float(u @ v / (u.norm() * v.norm()))

        terms = [math.exp(cos(z1[i], z2[j]) / temperature) for j in range(z2.shape[0])]
        if hard is not None:
            terms += [(alpha if j == i else 1.0) * math.exp(cos(z1[i], hard[j]) / temperature)
                      for j in range(hard.shape[0])]
        total += -math.log(terms[i] / sum(terms))
    return total / z1.shape[0]


def _capture_outputs(encoder):
    """Record every encoder forward output (and its input ids) until the returned handle is removed."""
    outputs, inputs = [], []

    def hook(module, args, output):
        inputs.append(args[0]["input_ids"].clone())
        outputs.append(output.detach().clone())

    return encoder.register_forward_hook(hook), outputs, inputs


# ---- configuration and data checks ----------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("mode", "semi"), ("steps", 0), ("batch_size", 1), ("lr", 0.0), ("temperature", 0.0),
    ("temperature", -1.0), ("dropout", 1.0), ("dropout", -0.1), ("max_length", 1), ("pooler", "max"),
    ("hard_negative_weight", 0.0), ("time_budget_s", 0.0), ("eval_every", -1), ("warmup", 101),
    ("weight_decay", -0.1), ("max_grad_norm", -1.0), ("steps", 2.5),
])
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_config_defaults_are_the_papers_unsup_setting():
    config = TrainConfig()
    settings = (config.mode, config.batch_size, config.lr, config.temperature, config.dropout,
                config.max_length)
    assert settings == ("unsup", 64, 3e-5, 0.05, 0.1, 32)


@pytest.mark.parametrize(("data", "mode", "message"), [
    (["only one"], "unsup", "at least 2 sentences"),
    ([], "unsup", "at least 2 sentences"),
    ([("a", "b"), ("c", "d")], "unsup", "mode 'sup'"),
    (["a man", "a dog"], "sup", "mode 'unsup'"),
    ([("a", "b"), ("c", "d", "e")], "sup", "mix pairs and triplets"),
    ([("a", "b")], "sup", "at least 2 examples"),
    ([("a",), ("b",)], "sup", "anchor, positive"),
    ("a single string", "unsup", "list of examples"),
])
def test_bad_data_is_refused_when_train_is_called(tiny_encoder, data, mode, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_encoder, data, TrainConfig(mode=mode))  # no iteration: refused at the call


def test_refused_data_leaves_the_encoder_untouched(tiny_encoder):
    before = {k: v.clone() for k, v in tiny_encoder.state_dict().items()}
    with pytest.raises(ValueError):
        train(tiny_encoder, ["one"], TrainConfig(pooler="cls", dropout=0.3))
    assert tiny_encoder.pooler.name == "mean" and tiny_encoder.config.dropout is None
    assert all(torch.equal(before[k], v) for k, v in tiny_encoder.state_dict().items())


# ---- the loop ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_loss_decreases_on_a_small_repeated_set(tiny_encoder):
    events = list(train(tiny_encoder, SENTENCES, replace(FAST, steps=30, lr=3e-3)))
    losses = _losses(events)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3


def test_events_count_steps_and_end_with_done(tiny_encoder):
    events = list(train(tiny_encoder, SENTENCES, FAST))
    assert [e.step for e in events] == [0, 1, 2, 3]
    assert all(e.total_steps == 3 for e in events)
    assert events[0].loss is None and all(isinstance(e.loss, float) for e in events[1:])
    assert [e.done for e in events] == [False, False, False, True]
    assert events[-1].stop_reason == "steps" and events[-1].remaining_s == 0.0
    elapsed = [e.elapsed_s for e in events]
    assert elapsed == sorted(elapsed) and all(e.train_s <= e.elapsed_s for e in events)


def test_training_changes_the_weights_but_not_a_copy_made_before(tiny_encoder):
    before = {k: v.clone() for k, v in tiny_encoder.state_dict().items()}
    copy = tiny_encoder.copy()
    vectors_before = copy.encode(SENTENCES)
    list(train(tiny_encoder, SENTENCES, FAST))
    after = tiny_encoder.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2  # nearly every tensor moved (AdamW moves any with a gradient)
    assert all(torch.equal(before[k], v) for k, v in copy.state_dict().items())
    np.testing.assert_array_equal(copy.encode(SENTENCES), vectors_before)
    assert not np.allclose(tiny_encoder.encode(SENTENCES), vectors_before, atol=1e-4)


def test_same_seed_gives_the_same_losses_and_weights(tiny_encoder):
    twin = tiny_encoder.copy()
    other = tiny_encoder.copy()
    first = _losses(list(train(tiny_encoder, SENTENCES, FAST)))
    second = _losses(list(train(twin, SENTENCES, FAST)))
    third = _losses(list(train(other, SENTENCES, replace(FAST, seed=7))))
    assert first == second
    assert first != third
    for (name, a), b in zip(tiny_encoder.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name


def test_evaluation_does_not_change_the_losses(tiny_encoder):
    twin = tiny_encoder.copy()
    plain = _losses(list(train(tiny_encoder, SENTENCES, FAST)))
    evaluated = _losses(list(train(twin, SENTENCES, replace(FAST, eval_every=1), eval_pairs=_eval_pairs())))
    assert plain == evaluated


def test_stopping_early_leaves_the_encoder_in_eval_mode_and_deterministic(tiny_encoder):
    events = []
    for event in train(tiny_encoder, SENTENCES, replace(FAST, steps=50)):
        events.append(event)
        assert not tiny_encoder.training  # control is with the consumer: eval mode
        if len(events) == 3:
            break
    assert [e.step for e in events] == [0, 1, 2]
    assert not any(module.training for module in tiny_encoder.modules())
    assert all(p.grad is None for p in tiny_encoder.parameters())
    np.testing.assert_array_equal(tiny_encoder.encode(SENTENCES), tiny_encoder.encode(SENTENCES))


def test_closing_or_raising_inside_the_loop_leaves_eval_mode(tiny_encoder):
    events = train(tiny_encoder, SENTENCES, replace(FAST, steps=50))
    next(events), next(events)
    events.close()
    assert not tiny_encoder.training
    with pytest.raises(RuntimeError, match="consumer failed"):
        for event in train(tiny_encoder, SENTENCES, replace(FAST, steps=50)):
            if event.step == 1:
                raise RuntimeError("consumer failed")
    assert not tiny_encoder.training


def test_time_budget_stops_training_with_a_final_evaluated_event(tiny_encoder):
    config = replace(FAST, steps=100_000, time_budget_s=0.5, eval_every=0)
    events = list(train(tiny_encoder, SENTENCES, config, eval_pairs=_eval_pairs()))
    last = events[-1]
    assert last.done and last.stop_reason == "time_budget"
    assert 1 <= last.step < 100_000 and last.elapsed_s >= 0.5
    assert last.metrics is not None
    assert sum(e.done for e in events) == 1
    assert all(e.metrics is None for e in events[1:-1])
    assert not tiny_encoder.training


def test_eval_events_carry_the_four_metrics(tiny_encoder):
    from simcse_core.evaluation.metrics import embedding_report

    pairs = _eval_pairs()
    baseline = embedding_report(tiny_encoder.copy(), pairs)
    events = list(train(tiny_encoder, SENTENCES, replace(FAST, steps=5, eval_every=2), eval_pairs=pairs))
    evaluated = [e.step for e in events if e.metrics is not None]
    assert evaluated == [0, 2, 4, 5]
    for event in events:
        if event.metrics is not None:
            assert set(event.metrics) == {"spearman", "alignment", "uniformity", "anisotropy"}
            assert all(math.isfinite(v) for v in event.metrics.values())
    assert events[0].metrics == pytest.approx(baseline, abs=1e-6)  # step 0 is before any update
    assert events[-1].metrics == pytest.approx(embedding_report(tiny_encoder, pairs), abs=1e-6)
    assert events[-1].metrics != pytest.approx(baseline, abs=1e-6)


def test_lr_follows_linear_warmup_then_linear_decay(tiny_encoder):
    config = replace(FAST, steps=10, warmup=3, lr=1e-3)
    events = list(train(tiny_encoder, SENTENCES, config))
    expected = []
    for k in range(10):  # update k (0-based) is reported by the event of step k + 1
        expected.append(1e-3 * (k / 3 if k < 3 else (10 - k) / 7))
    assert [e.lr for e in events[1:]] == pytest.approx(expected)
    assert lr_factor(0, 10, 0) == 1.0 and lr_factor(9, 10, 0) == pytest.approx(0.1)


def test_lr_is_held_then_decays_over_the_last_decay_fraction_of_the_steps(tiny_encoder):
    config = replace(FAST, steps=10, warmup=2, lr=1e-3, decay_fraction=0.5)
    events = list(train(tiny_encoder, SENTENCES, config))
    # after 2 warm-up updates, 8 remain: held for 4, then falling linearly to 0 over the last 4
    expected = [0.0, 0.5, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25]
    assert [e.lr for e in events[1:]] == pytest.approx([1e-3 * f for f in expected])
    assert [lr_factor(k, 10, 0, 0.0) for k in range(10)] == [1.0] * 10  # never decays
    assert [lr_factor(k, 10, 0, 1.0) for k in range(10)] == [lr_factor(k, 10, 0) for k in range(10)]


def test_adam_beta2_reaches_the_optimizer(tiny_encoder):
    config = replace(FAST, steps=1, adam_beta2=0.98)
    last = list(train(tiny_encoder, SENTENCES, config))[-1]
    assert {g["betas"] for g in last.snapshot().optimizer["param_groups"]} == {(0.9, 0.98)}


# ---- what the loss sees -----------------------------------------------------------------------------------

def test_first_step_loss_equals_a_hand_computed_loss_on_the_same_dropout_views(tiny_encoder):
    config = replace(FAST, steps=1, temperature=0.1, dropout=0.2)
    handle, outputs, inputs = _capture_outputs(tiny_encoder)
    try:
        events = list(train(tiny_encoder, SENTENCES, config))
    finally:
        handle.remove()
    z = torch.cat(outputs)  # (2B, D): the two views, in one call or two
    ids = torch.cat(inputs) if len(inputs) > 1 else inputs[0]
    z1, z2 = z.chunk(2)
    assert z1.shape == (8, tiny_encoder.dim)
    assert torch.equal(*ids.chunk(2))  # the same sentences in both views...
    assert not torch.allclose(z1, z2)  # ...seen through different dropout masks
    assert events[1].loss == pytest.approx(_naive_loss(z1, z2, temperature=0.1), rel=1e-5)


def test_fixed_dropout_mask_gives_both_views_one_mask(tiny_encoder):
    """Paper Table 3 "fixed 0.1": the two views are the same vector, so the positive cosine is exactly 1."""
    config = replace(FAST, steps=1, temperature=0.1, dropout=0.2, fixed_dropout_mask=True)
    handle, outputs, _ = _capture_outputs(tiny_encoder)
    try:
        events = list(train(tiny_encoder, SENTENCES, config))
    finally:
        handle.remove()
    assert len(outputs) == 1 and outputs[0].shape == (8, tiny_encoder.dim)  # one forward, one mask
    z = outputs[0]
    assert events[1].loss == pytest.approx(_naive_loss(z, z, temperature=0.1), rel=1e-5)
    with pytest.raises(ValueError, match="fixed_dropout_mask"):
        TrainConfig(mode="sup", fixed_dropout_mask=True)


def test_triplets_loss_uses_hard_negatives_with_their_weight(tiny_encoder):
    config = replace(FAST, mode="sup", steps=1, hard_negative_weight=3.0)
    handle, outputs, _ = _capture_outputs(tiny_encoder)
    try:
        events = list(train(tiny_encoder, TRIPLETS, config))
    finally:
        handle.remove()
    anchors, positives, negatives = torch.cat(outputs).chunk(3)  # (B, D) each
    expected = _naive_loss(anchors, positives, negatives, temperature=0.05, alpha=3.0)
    assert events[1].loss == pytest.approx(expected, rel=1e-5)


def test_hard_negative_weight_reaches_the_loss(tiny_encoder):
    twin = tiny_encoder.copy()
    base = replace(FAST, mode="sup")
    one = _losses(list(train(tiny_encoder, TRIPLETS, base)))
    four = _losses(list(train(twin, TRIPLETS, replace(base, hard_negative_weight=4.0))))
    assert four[0] > one[0]  # same batch, same dropout: only α differs, and a larger α can only add loss


@pytest.mark.parametrize("data", [PAIRS, TRIPLETS], ids=["pairs", "triplets"])
def test_supervised_mode_trains(tiny_encoder, data):
    events = list(train(tiny_encoder, data, replace(FAST, mode="sup", steps=20, lr=3e-3)))
    losses = _losses(events)
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_small_data_is_one_batch_and_says_so(tiny_encoder, caplog):
    handle, outputs, _ = _capture_outputs(tiny_encoder)
    try:
        with caplog.at_level(logging.INFO, logger="simcse_core.training.train"):
            list(train(tiny_encoder, SENTENCES[:5], replace(FAST, batch_size=64, steps=2)))
    finally:
        handle.remove()
    assert "whole data" in caplog.text
    assert sum(len(z) for z in outputs) == 2 * 2 * 5  # 2 steps x 2 views x all 5 sentences


def test_batches_are_seeded_permutations_without_repeats_within_an_epoch():
    batches = _batch_indices(10, 3, seed=1)
    for _ in range(4):  # epochs
        epoch = [next(batches) for _ in range(3)]  # 10 // 3 batches, the remainder of 1 dropped
        assert all(len(b) == 3 for b in epoch)
        flat = np.concatenate(epoch)
        assert len(set(flat.tolist())) == 9 and flat.max() < 10
    same, other, again = (_batch_indices(10, 3, seed=s) for s in (1, 2, 1))
    first = [next(same).tolist() for _ in range(6)]
    assert first == [next(again).tolist() for _ in range(6)]
    assert first != [next(other).tolist() for _ in range(6)]


def test_max_length_truncates_training_batches(tiny_encoder):
    handle, _, inputs = _capture_outputs(tiny_encoder)
    long = [" ".join(["the big red car"] * 10) + f" {w}" for w in ("dog", "cat", "bird", "fish")]
    try:
        list(train(tiny_encoder, long, replace(FAST, steps=1, max_length=6)))
    finally:
        handle.remove()
    assert inputs[0].shape[1] == 6


# ---- what training changes on the encoder -----------------------------------------------------------------

def test_dropout_and_settings_are_applied_and_recorded(tiny_encoder):
    list(train(tiny_encoder, SENTENCES, replace(FAST, dropout=0.25, max_length=16)))
    probabilities = {m.p for m in tiny_encoder.model.modules() if isinstance(m, nn.Dropout)}
    assert probabilities == {0.25}
    assert tiny_encoder.model.config.hidden_dropout_prob == 0.25
    assert tiny_encoder.model.config.attention_probs_dropout_prob == 0.25
    assert (tiny_encoder.config.dropout, tiny_encoder.config.token_limit, tiny_encoder.config.pooler) == (
        0.25, 64, "mean")  # the training length (16) is not the inference limit (the tiny model's 64)


def test_cls_pooler_switch_trains_the_mlp_head_used_in_training_only(tiny_encoder):
    events = train(tiny_encoder, SENTENCES, replace(FAST, pooler="cls", mlp_only_train=True))
    next(events)  # step 0: the new pooler is in place
    assert tiny_encoder.pooler.name == "cls" and tiny_encoder.pooler.mlp_only_train
    head_before = {k: v.clone() for k, v in tiny_encoder.pooler.state_dict().items()}
    list(events)
    head_after = tiny_encoder.pooler.state_dict()
    assert all(not torch.equal(head_before[k], head_after[k]) for k in head_before)
    assert tiny_encoder.config.pooler == "cls" and tiny_encoder.config.mlp_only_train
    raw_cls = tiny_encoder.with_pooler("cls_before_pooler").encode(SENTENCES)
    np.testing.assert_allclose(tiny_encoder.encode(SENTENCES), raw_cls, atol=1e-6)  # no MLP at test time


def test_cls_to_cls_keeps_the_trained_head(tiny_encoder):
    list(train(tiny_encoder, SENTENCES, replace(FAST, pooler="cls", mlp_only_train=False)))
    head = {k: v.clone() for k, v in tiny_encoder.pooler.state_dict().items()}
    events = train(tiny_encoder, SENTENCES, replace(FAST, pooler="cls", mlp_only_train=False))
    next(events)
    assert all(torch.equal(head[k], v) for k, v in tiny_encoder.pooler.state_dict().items())
    events.close()


# ---- saved models ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("pooler", "mlp_only_train"), [
    ("cls_before_pooler", True), ("mean", True), ("cls", True), ("cls", False), ("avg_first_last", True),
])
def test_trained_model_saves_and_reloads_with_its_pooler(tiny_encoder, tmp_path, pooler, mlp_only_train):
    config = replace(FAST, pooler=pooler, mlp_only_train=mlp_only_train, dropout=0.15, max_length=24)
    list(train(tiny_encoder, SENTENCES, config))
    folder = tiny_encoder.save(tmp_path / "trained")
    reloaded = load_encoder(folder, device="cpu", precision="fp32")  # no pooler given: the saved one
    assert reloaded.pooler.name == pooler
    assert reloaded.config.token_limit == tiny_encoder.config.token_limit == 64  # inference limit, not 24
    expected_mlp_only = mlp_only_train if pooler == "cls" else False
    assert reloaded.pooler.mlp_only_train == tiny_encoder.pooler.mlp_only_train == expected_mlp_only
    np.testing.assert_allclose(reloaded.encode(SENTENCES), tiny_encoder.encode(SENTENCES), atol=1e-6)
    assert {m.p for m in reloaded.model.modules() if isinstance(m, nn.Dropout)} == {0.15}
    if pooler == "cls":
        trained_head = tiny_encoder.pooler.state_dict()
        for key, value in reloaded.pooler.state_dict().items():
            assert torch.equal(value, trained_head[key]), key


@pytest.mark.slow
@pytest.mark.parametrize(("pooler", "mlp_only_train"), [
    ("mean", True), ("cls_before_pooler", True), ("cls", True),
])
def test_sentence_transformers_reads_a_trained_model_folder(tiny_encoder, tmp_path, pooler, mlp_only_train):
    from sentence_transformers import SentenceTransformer

    list(train(tiny_encoder, SENTENCES, replace(FAST, pooler=pooler, mlp_only_train=mlp_only_train)))
    folder = tiny_encoder.save(tmp_path / "trained")
    model = SentenceTransformer(str(folder), device="cpu")
    theirs = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)  # the Normalize module ran
    np.testing.assert_allclose(theirs, tiny_encoder.encode(SENTENCES), atol=1e-5)


# ---- the real model ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.integration
def test_minilm_trains_a_few_steps_and_the_shared_fixture_is_untouched(minilm):
    encoder = minilm.copy()
    events = list(train(encoder, SENTENCES, replace(FAST, lr=3e-5, steps=2, pooler="cls_before_pooler")))
    assert all(math.isfinite(loss) for loss in _losses(events))
    assert not encoder.training and minilm.pooler.name == "mean"


# --- issue 8.4: one rule for the cls head's MLP, shared by the CLI and the app ---------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "expected"), [("unsup", True), ("sup", False)])
def test_mlp_only_train_follows_the_papers_rule_by_default(tiny_encoder, mode, expected):
    from simcse_core.training.train import inference_pooler, paper_mlp_only_train

    data = SENTENCES if mode == "unsup" else [(s, s) for s in SENTENCES]
    config = replace(FAST, mode=mode, pooler="cls")
    assert config.mlp_only_train is None and config.resolved_mlp_only_train is expected
    assert paper_mlp_only_train(mode) is expected
    list(train(tiny_encoder, data, config))
    assert tiny_encoder.pooler.mlp_only_train is expected and tiny_encoder.config.mlp_only_train is expected
    assert inference_pooler(config, "cls") == ("cls_before_pooler" if expected else "cls")


def test_cli_and_trainconfig_share_the_mlp_rule():
    from simcse_core.cli import _train_config, build_parser

    args = build_parser().parse_args(["train", "--data", "x.txt", "--out", "o"])
    # None = not given: the recipe's value, else TrainConfig's (the CLI states the default, never re-types it)
    assert args.mlp_only_train is None and args.train_max_length is None
    config = _train_config(args, None, "unsup", 10)
    assert config.mlp_only_train is None and config.max_length == TrainConfig().max_length == 32


@pytest.mark.integration
def test_training_the_cls_head_starts_fresh_as_the_official_code_does(minilm):
    student = minilm.with_pooler("cls").copy()
    assert student.config.head == "checkpoint"
    checkpoint_weight = student.pooler.mlp[0].weight.detach().clone()
    events = train(student, SENTENCES, replace(FAST, steps=1, pooler="cls"))
    next(events)  # the step-0 event: the head is in place, nothing trained yet
    assert not torch.allclose(student.pooler.mlp[0].weight, checkpoint_weight)
    events.close()
    assert student.config.head == "trained"

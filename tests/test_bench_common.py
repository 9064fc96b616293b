"""Tests of the pure helpers in bench/common.py against independent computations (no timings here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from bench.common import (
    Target,
    TransformerShape,
    approx_train_flops,
    forward_flops,
    padded_lengths,
    percentile,
    spearman_from_vectors,
    strict_json,
    train_step_flops,
)


def _tiny_bert(layers: int = 2, hidden: int = 32, intermediate: int = 37):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=intermediate, max_position_embeddings=64, attn_implementation="eager")
    return BertModel(config, add_pooling_layer=False)


def _counted_flops(model, batch: int, length: int, backward: bool) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    ids = torch.randint(5, 99, (batch, length))
    with FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        if backward:
            out.sum().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("q", [0, 5, 25, 50, 73.5, 95, 99, 100])
def test_percentile_matches_numpy_linear_interpolation(q: float) -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 100):
        values = rng.exponential(size=n).tolist()
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-15)


def test_percentile_by_definition_and_errors() -> None:
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)  # halfway between the 2nd and 3rd smallest
    assert percentile([4, 1, 3, 2], 100) == 4
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_matmul_params_count_the_blocks_weight_matrices() -> None:
    model = _tiny_bert()
    shape = TransformerShape.of(model)
    weights = sum(m.weight.numel() for name, m in model.named_modules()
                  if isinstance(m, torch.nn.Linear) and name.startswith("encoder."))
    assert shape.matmul_params == weights


@pytest.mark.parametrize("batch,length", [(3, 7), (2, 16)])
def test_forward_flops_match_torch_flop_counter(batch: int, length: int) -> None:
    model = _tiny_bert().eval()
    with torch.no_grad():
        counted = _counted_flops(model, batch, length, backward=False)
    assert forward_flops(TransformerShape.of(model), [length] * batch) == counted


def test_train_step_flops_match_torch_flop_counter_forward_and_backward() -> None:
    model = _tiny_bert(layers=1).train()
    counted = _counted_flops(model, 4, 9, backward=True)
    shape = TransformerShape.of(model)
    assert train_step_flops(shape, [9] * 4, views=1) == counted
    assert train_step_flops(shape, [9] * 4, views=2) == 2 * counted


def test_approx_flops_is_six_params_tokens_per_view() -> None:
    assert approx_train_flops(10, 7, views=2) == 6 * 10 * 7 * 2


def test_padded_lengths_match_a_naive_batch_loop() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 33, size=203).tolist()
    order = rng.permutation(len(lengths)).tolist()
    expected = [0] * len(lengths)
    batches = [order[i : i + 64] for i in range(0, len(order), 64)]
    for batch in batches:
        for i in batch:
            expected[i] = max(lengths[j] for j in batch)
    assert padded_lengths(lengths, 64, order) == expected
    assert padded_lengths([3, 5, 2], 2) == [5, 5, 2]
    assert padded_lengths(lengths, 1) == lengths


def test_spearman_from_vectors_matches_rank_correlation_by_hand() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    scores = rng.uniform(0, 5, size=50)
    cosine = [float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) for x, y in zip(a, b)]

    def ranks(values):  # no ties in continuous random data
        order = sorted(range(len(values)), key=lambda i: values[i])
        r = [0] * len(values)
        for rank, i in enumerate(order):
            r[i] = rank
        return np.array(r, dtype=float)

    ra, rb = ranks(cosine), ranks(scores.tolist())
    expected = float(np.corrcoef(ra, rb)[0, 1] * 100)
    assert spearman_from_vectors(a, b, scores) == pytest.approx(expected, abs=1e-9)
    assert spearman_from_vectors(a * 3.0, b, scores) == pytest.approx(expected, abs=1e-9)  # scale-free


def test_strict_json_turns_non_finite_floats_into_null() -> None:
    value = {"a": math.nan, "b": [1.0, math.inf, np.float32(2.5)], "c": {"d": -math.inf}, "e": "x"}
    text = json.dumps(strict_json(value), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.0, None, 2.5], "c": {"d": None}, "e": "x"}


def test_target_direction_and_nan() -> None:
    assert Target("speed", 1.6, 1.5).met
    assert not Target("speed", 1.4, 1.5).met
    assert Target("latency", 9.0, 10.0, higher_is_better=False).met
    assert not Target("latency", 11.0, 10.0, higher_is_better=False).met
    assert not Target("latency", math.nan, 10.0, higher_is_better=False).met


def test_update_readme_replaces_only_the_marked_table(tmp_path) -> None:
    from bench.run_all import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n{README_START}\nold table\n{README_END}\n\n## After\n", encoding="utf-8")
    targets = [{"benchmark": "encode_speed", "target": "ratio", "goal": ">= 1.5", "measured": 2.8954, "met": "yes"},
               {"benchmark": "encode_speed", "target": "|a - b|", "goal": "<= 0.2", "measured": 0.01883, "unit": " ms",
                "met": "yes"}]
    assert update_readme(readme, targets, "2026-11-22T12:00:00+00:00")
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nintro\n") and text.endswith(f"{README_END}\n\n## After\n")
    assert "old table" not in text and "2026-11-22" in text
    assert "| encode_speed | ratio     | >= 1.5 | 2.9       | yes |" in text
    assert "| encode_speed | \\|a - b\\| | <= 0.2 | 0.0188 ms | yes |" in text  # pipes escaped for Markdown
    assert update_readme(readme, targets, "2026-11-23T12:00:00+00:00")  # again: still one table
    assert readme.read_text(encoding="utf-8").count(README_START) == 1
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers\n", encoding="utf-8")
    assert not update_readme(plain, targets, "2026-11-22") and plain.read_text(encoding="utf-8") == "# no markers\n"


def test_collect_targets_reads_the_latest_files_and_leaves_out_failed_runs(tmp_path, monkeypatch) -> None:
    import json

    from bench import run_all

    monkeypatch.setattr(run_all, "RESULTS_DIR", tmp_path)
    target = {"name": "speed ratio", "value": 2.5, "threshold": 1.5, "higher_is_better": True, "unit": "x",
              "met": True}
    for name in ("encode_speed", "train_speed"):
        payload = {"created": "2026-11-22T10:00:00+00:00", "targets": [{**target, "name": f"{name} ratio"}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(payload), encoding="utf-8")
    rows = run_all.collect_targets(skip=["train_speed"])
    assert [r["target"] for r in rows] == ["encode_speed ratio"]
    assert rows[0]["goal"] == ">= 1.5x" and rows[0]["met"] == "yes" and rows[0]["measured_on"] == "2026-11-22"
    assert [r["benchmark"] for r in run_all.collect_targets()] == ["encode_speed", "train_speed"]


def test_soak_measures_growth_per_class_only_over_two_empty_rooms() -> None:
    """A one-class soak (the default) ended in ZeroDivisionError after its whole run, losing its results."""
    from bench.soak import empty_rooms

    one = [(0.0, 900.0, "visitors"), (5.0, 1500.0, "after visitors left"), (10.0, 1400.0, "after visitors left")]
    assert empty_rooms(one, 1) == [1400.0]
    two = [*one, (15.0, 2000.0, "visitors, class 2"), (20.0, 1480.0, "after class 2 left")]
    assert empty_rooms(two, 2) == [1400.0, 1480.0]
    assert empty_rooms(one, 2) == [1400.0]  # the second room never sampled: no growth to report

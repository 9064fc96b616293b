"""simcse_loss against a naive per-row loop of the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch

from simcse_core.training.losses import simcse_loss


def _cos(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def _naive_loss(z1, z2, neg, temperature: float, alpha: float) -> float:
    """loss_i = -log e^{c(i,i+)/τ} / (Σ_j e^{c(i,j+)/τ} + Σ_j w_ij e^{c(i,j-)/τ}); w_ii = α, else 1."""
    a, p = z1.double().tolist(), z2.double().tolist()
    n = neg.double().tolist() if neg is not None else None
    total = 0.0
    for i in range(len(a)):
        numerator = math.exp(_cos(a[i], p[i]) / temperature)
        denominator = sum(math.exp(_cos(a[i], p[j]) / temperature) for j in range(len(p)))
        if n is not None:
            for j in range(len(n)):
                weight = alpha if j == i else 1.0
                denominator += weight * math.exp(_cos(a[i], n[j]) / temperature)
        total += -math.log(numerator / denominator)
    return total / len(a)


def _batch(batch: int = 6, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(batch, dim, generator=generator)
    z2 = z1 + 0.5 * torch.randn(batch, dim, generator=generator)  # positives near their anchors
    neg = torch.randn(batch, dim, generator=generator)
    return z1, z2, neg


@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_matches_naive_loop_without_hard_negatives(temperature: float) -> None:
    z1, z2, _ = _batch(seed=1)
    got = simcse_loss(z1, z2, temperature=temperature).item()
    assert got == pytest.approx(_naive_loss(z1, z2, None, temperature, 1.0), abs=1e-5)


@pytest.mark.parametrize("temperature", [0.05, 0.2])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_matches_naive_loop_with_hard_negatives(temperature: float, alpha: float) -> None:
    z1, z2, neg = _batch(seed=2)
    got = simcse_loss(z1, z2, neg, temperature=temperature, hard_negative_weight=alpha).item()
    assert got == pytest.approx(_naive_loss(z1, z2, neg, temperature, alpha), abs=1e-5)


def test_hard_negative_weight_changes_the_loss_in_the_right_direction() -> None:
    z1, z2, neg = _batch(seed=3)
    losses = [simcse_loss(z1, z2, neg, hard_negative_weight=a).item() for a in (0.5, 1.0, 2.0)]
    assert losses[0] < losses[1] < losses[2]  # a heavier denominator term means a larger loss


def test_scale_invariant_in_its_inputs() -> None:
    z1, z2, neg = _batch(seed=4)
    scales = torch.rand(z1.shape[0], 1) * 10 + 0.1  # (B, 1)
    assert simcse_loss(z1 * scales, z2 * 3.0, neg * scales).item() == pytest.approx(
        simcse_loss(z1, z2, neg).item(), abs=1e-5)


def test_gradient_flows_to_every_input() -> None:
    z1, z2, neg = (t.clone().requires_grad_(True) for t in _batch(seed=5))
    simcse_loss(z1, z2, neg, hard_negative_weight=2.0).backward()
    for tensor in (z1, z2, neg):
        assert tensor.grad is not None
        assert torch.isfinite(tensor.grad).all()
        assert tensor.grad.abs().sum() > 0


def test_batch_of_one_has_zero_loss_without_negatives() -> None:
    z1, z2, _ = _batch(batch=1)
    assert simcse_loss(z1, z2).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("z1", "z2", "neg", "match"),
    [
        (torch.zeros(4, 8), torch.zeros(3, 8), None, "z2 must have the same shape"),
        (torch.zeros(4, 8), torch.zeros(4, 8), torch.zeros(4, 7), "hard_negatives must have the same shape"),
        (torch.zeros(8), torch.zeros(8), None, "z1 must be a"),
        (torch.zeros(0, 8), torch.zeros(0, 8), None, "at least one row"),
    ],
)
def test_bad_shapes_raise_a_clear_error(z1, z2, neg, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simcse_loss(z1, z2, neg)


def test_bad_temperature_and_weight_raise() -> None:
    z1, z2, neg = _batch()
    with pytest.raises(ValueError, match="temperature"):
        simcse_loss(z1, z2, temperature=0.0)
    with pytest.raises(ValueError, match="hard_negative_weight"):
        simcse_loss(z1, z2, neg, hard_negative_weight=0.0)


@pytest.mark.parametrize("with_negatives", [False, True])
def test_equals_sentence_transformers_mnrl_with_scale_one_over_temperature(with_negatives: bool) -> None:
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    z1, z2, neg = _batch(seed=6)
    temperature = 0.05
    mnrl = st_losses.MultipleNegativesRankingLoss(torch.nn.Module(), scale=1.0 / temperature)
    columns = [z1, z2, neg] if with_negatives else [z1, z2]
    expected = mnrl.compute_loss_from_embeddings(columns, None).item()
    got = simcse_loss(z1, z2, neg if with_negatives else None, temperature=temperature).item()
    assert got == pytest.approx(expected, abs=1e-5)


def test_chance_loss_is_the_loss_of_identical_vectors() -> None:
    """All-equal vectors make every logit equal: the loss is ln(candidates), with or without hard negatives."""
    from simcse_core.training.losses import chance_loss

    same = torch.ones(6, 4)
    assert float(simcse_loss(same, same)) == pytest.approx(chance_loss(6), abs=1e-6)
    assert float(simcse_loss(same, same, same)) == pytest.approx(chance_loss(6, hard_negatives=True), abs=1e-6)
    assert chance_loss(64) == pytest.approx(math.log(64))

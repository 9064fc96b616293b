"""Pooling against hand-computed references, and padding invariance through the real encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simcse_core.model.pooling import POOLERS, Pooler, masked_mean


def _naive_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    rows = []
    for b in range(states.shape[0]):
        real = [states[b, t] for t in range(states.shape[1]) if mask[b, t] == 1]
        rows.append(sum(real) / len(real))
    return torch.stack(rows)


def test_masked_mean_ignores_padding() -> None:
    torch.manual_seed(0)
    states = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    torch.testing.assert_close(masked_mean(states, mask), _naive_mean(states, mask))


def test_layer_averaging_poolers_match_hand_computation() -> None:
    torch.manual_seed(1)
    layers = tuple(torch.randn(2, 4, 6) for _ in range(4))  # embeddings + 3 layers
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    first_last = Pooler("avg_first_last", 6)(layers[-1], mask, layers)
    top2 = Pooler("avg_top2", 6)(layers[-1], mask, layers)
    torch.testing.assert_close(first_last, _naive_mean((layers[1] + layers[-1]) / 2, mask))
    torch.testing.assert_close(top2, _naive_mean((layers[-2] + layers[-1]) / 2, mask))


def test_cls_mlp_only_in_training_when_asked() -> None:
    torch.manual_seed(2)
    states = torch.randn(2, 3, 8)
    mask = torch.ones(2, 3, dtype=torch.long)
    pooler = Pooler("cls", 8, mlp_only_train=True)
    pooler.train()
    torch.testing.assert_close(pooler(states, mask), torch.tanh(pooler.mlp[0](states[:, 0])))
    pooler.eval()
    torch.testing.assert_close(pooler(states, mask), states[:, 0])
    always = Pooler("cls", 8, mlp_only_train=False).eval()
    torch.testing.assert_close(always(states, mask), torch.tanh(always.mlp[0](states[:, 0])))


def test_unknown_pooler_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        Pooler("max", 8)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", POOLERS)
def test_encode_alone_equals_encode_in_a_padded_batch(tiny_model_dir, name: str) -> None:
    """A short sentence gets the same vector alone and padded next to a long one."""
    from simcse_core.model.loading import load_encoder

    encoder = load_encoder(tiny_model_dir, pooler=name, device="cpu", precision="fp32")
    short, long = "a dog runs", "the man plays the guitar in the park with the big red dog"
    alone = encoder.encode([short])
    batched = encoder.encode([long, short], batch_size=2)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)

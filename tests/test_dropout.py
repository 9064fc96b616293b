"""The project's dropout: each element dropped with probability p, independently, the rest scaled to keep the mean."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from simcse_core.model.dropout import dropout

N = 1_000_003  # not a multiple of 4: the last 64-bit draw is only partly used


def _within(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * (p * (1 - p) / n) ** 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.02])
def test_each_element_is_dropped_with_probability_p_and_the_rest_keep_the_mean(p) -> None:
    torch.manual_seed(0)
    x = torch.ones(N)
    y = dropout(x, p)
    dropped = y == 0
    assert _within(dropped.float().mean().item(), p, N)
    # Every lane of the 16-bit words a 64-bit draw is cut into: a lane with a fixed bit drops at another rate.
    for lane in range(4):
        assert _within(dropped[lane::4].float().mean().item(), p, N // 4), f"lane {lane}"
    kept = y[~dropped]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-4)
    assert abs(y.mean().item() - 1.0) < 5 * (p / (1 - p) / N) ** 0.5  # inverted dropout keeps the expectation


def test_neighbours_are_dropped_independently() -> None:
    torch.manual_seed(1)
    dropped = (dropout(torch.ones(N), 0.3) == 0).float()
    both = (dropped[:-1] * dropped[1:]).mean().item()  # next element, usually in the same 64-bit draw
    assert _within(both, 0.3**2, N)
    apart = (dropped[:-4] * dropped[4:]).mean().item()  # the same lane of the next draw
    assert _within(apart, 0.3**2, N)


def test_its_drop_rate_matches_torchs_dropout() -> None:
    torch.manual_seed(2)
    ours = (dropout(torch.ones(N), 0.1) == 0).float().mean().item()
    theirs = (F.dropout(torch.ones(N), 0.1, training=True) == 0).float().mean().item()
    assert abs(ours - theirs) <= 5 * (2 * 0.1 * 0.9 / N) ** 0.5


def test_seeded_draws_repeat_and_unseeded_ones_differ() -> None:
    x = torch.randn(3, 7, 5)
    torch.manual_seed(3)
    first, second = dropout(x, 0.2), dropout(x, 0.2)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.2), first)
    assert not torch.equal(first, second)


def test_gradients_flow_through_kept_elements_only_with_the_same_scale() -> None:
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.25)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 65536 / (65536 - 16384)))
    assert torch.all(x.grad[~kept] == 0)


def test_eval_mode_and_zero_rate_return_the_input_and_bf16_stays_bf16() -> None:
    x = torch.randn(10, 4)
    assert dropout(x, 0.1, training=False) is x
    assert dropout(x, 0.0) is x
    half = torch.randn(8, 16, dtype=torch.bfloat16)
    assert dropout(half, 0.1).dtype == torch.bfloat16
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))

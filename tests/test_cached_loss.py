"""GradCache: the cached contrastive loss gives the loss and gradients of the plain one, dropout included."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from simcse_core.training.cached_loss import cached_backward
from simcse_core.training.train import TrainConfig, _contrast, _embed, _prepare_encoder, train

SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
    "a red car drives on the road", "the bird sings in the rain",
]
TRIPLETS = [(a, SENTENCES[(i + 1) % 10], SENTENCES[(i + 4) % 10]) for i, a in enumerate(SENTENCES)]
BASE = TrainConfig(batch_size=10, pooler="cls", mlp_only_train=False, eval_every=0)


def _gradients(encoder) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}


def _plain(encoder, batch, config) -> tuple[float, dict]:
    encoder.zero_grad(set_to_none=True)
    loss = _contrast(_embed(encoder, batch, config), config)
    loss.backward()
    return float(loss.detach()), _gradients(encoder)


def _cached(encoder, batch, config, mini_batch_size) -> tuple[float, dict]:
    encoder.zero_grad(set_to_none=True)
    loss = cached_backward(lambda chunk: _embed(encoder, chunk, config), batch, mini_batch_size,
                           lambda columns: _contrast(columns, config))
    return float(loss), _gradients(encoder)


def _chunked_with_graph(encoder, batch, config, mini_batch_size) -> tuple[float, dict]:
    """The reference with dropout: every mini-batch encoded once WITH a graph, in order, then one backward."""
    encoder.zero_grad(set_to_none=True)
    parts = [_embed(encoder, batch[i : i + mini_batch_size], config) for i in range(0, len(batch), mini_batch_size)]
    loss = _contrast([torch.cat(column) for column in zip(*parts)], config)
    loss.backward()
    return float(loss.detach()), _gradients(encoder)


def _assert_same(got, expected) -> None:
    assert got[0] == pytest.approx(expected[0], abs=1e-5)
    assert got[1].keys() == expected[1].keys() and len(got[1]) > 10
    for name, grad in got[1].items():
        torch.testing.assert_close(grad, expected[1][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("mode,batch", [("unsup", SENTENCES), ("sup", TRIPLETS)])
@pytest.mark.parametrize("mini_batch_size", [1, 3, 10])
def test_cached_equals_plain_without_dropout(tiny_encoder, mode, batch, mini_batch_size):
    config = replace(BASE, mode=mode, dropout=0.0, hard_negative_weight=2.0)
    _prepare_encoder(tiny_encoder, config)
    tiny_encoder.train()
    _assert_same(_cached(tiny_encoder, batch, config, mini_batch_size), _plain(tiny_encoder, batch, config))


@pytest.mark.slow
@pytest.mark.parametrize("mini_batch_size", [3, 10])
def test_dropout_masks_are_replayed(tiny_encoder, mini_batch_size):
    config = replace(BASE, dropout=0.3)
    _prepare_encoder(tiny_encoder, config)
    tiny_encoder.train()
    torch.manual_seed(1)
    expected = _chunked_with_graph(tiny_encoder, SENTENCES, config, mini_batch_size)
    torch.manual_seed(1)
    got = _cached(tiny_encoder, SENTENCES, config, mini_batch_size)
    _assert_same(got, expected)
    if mini_batch_size == len(SENTENCES):  # one mini-batch: exactly the plain step, same random numbers
        torch.manual_seed(1)
        _assert_same(got, _plain(tiny_encoder, SENTENCES, config))
    torch.manual_seed(2)  # and the check can fail: other masks give another loss
    assert abs(_chunked_with_graph(tiny_encoder, SENTENCES, config, mini_batch_size)[0] - got[0]) > 1e-4


def test_the_trainer_with_mini_batches_trains_like_without(tiny_encoder):
    twin = tiny_encoder.copy()
    config = replace(BASE, steps=2, dropout=0.0, lr=1e-3)
    plain = [e.loss for e in train(tiny_encoder, SENTENCES, config)][1:]
    cached = [e.loss for e in train(twin, SENTENCES, replace(config, mini_batch_size=4))][1:]
    assert cached == pytest.approx(plain, abs=1e-5)  # the second loss is computed after one update
    # AdamW divides each gradient by its own size, so 1e-9 gradients (equal to rounding) may move a weight
    # by up to lr either way: the weights agree to one learning rate, the gradients (above) to 1e-5.
    for (name, a), b in zip(tiny_encoder.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(b, a, atol=config.lr, rtol=0, msg=name)


def test_mini_batch_size_is_checked():
    with pytest.raises(ValueError, match="mini_batch_size"):
        TrainConfig(mini_batch_size=0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        cached_backward(lambda chunk: [], ["a"], 0, lambda columns: torch.zeros(()))

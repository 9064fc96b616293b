"""Kept runs store only the word-embedding rows training changed (simcse_core.model.compact)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from simcse_core.model.compact import SharedRowsEmbedding, materialize, share_unchanged_rows
from simcse_core.model.loading import load_encoder
from simcse_core.training.train import TrainConfig, train

SENTENCES = ["a man plays the guitar", "the dog runs in the park", "she reads a book", "the stock market fell"]


def test_lookups_equal_the_full_table() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(20, 6, generator=generator)
    rows = torch.tensor([2, 5, 11])
    values = torch.randn(3, 6, generator=generator)
    full = base.clone()
    for k, row in enumerate(rows.tolist()):  # the table written out row by row
        full[row] = values[k]
    table = SharedRowsEmbedding(base, rows, values, padding_idx=0)
    ids = torch.tensor([[0, 2, 5, 7], [11, 11, 3, 19]])
    torch.testing.assert_close(table(ids), full[ids], rtol=0, atol=0)
    torch.testing.assert_close(table.weight, full, rtol=0, atol=0)


def test_unchanged_models_share_every_row_and_mismatched_ones_are_left_alone() -> None:
    model = nn.Module()
    model.table = nn.Embedding(10, 4)
    model.get_input_embeddings = lambda: model.table
    model.set_input_embeddings = lambda new: setattr(model, "table", new)
    twin = nn.Module()
    twin.table = nn.Embedding(10, 4)
    twin.table.weight.data.copy_(model.table.weight.data)
    twin.get_input_embeddings = lambda: twin.table
    assert share_unchanged_rows(model, twin) == 0
    assert model.table.base.data_ptr() == twin.table.weight.data_ptr()  # stored once
    other = nn.Module()
    other.get_input_embeddings = lambda: nn.Embedding(11, 4)
    assert share_unchanged_rows(model, other) is None


def test_a_compact_run_reads_the_base_rows_and_gives_the_same_vectors(tiny_model_dir) -> None:
    base = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="bf16")
    run = base.copy()
    for _ in train(run, SENTENCES * 2, TrainConfig(steps=2, batch_size=4, lr=1e-2, eval_every=0)):
        pass
    probe = SENTENCES + ["unseen words only: zebra quantum"]
    alone = run.copy()
    alone.compact()
    expected = alone.encode(probe)
    run.compact(base=base)
    np.testing.assert_array_equal(run.encode(probe), expected)
    table = run.model.get_input_embeddings()
    vocab = base.model.get_input_embeddings().weight.shape[0]
    assert isinstance(table, SharedRowsEmbedding) and 0 < len(table.values) < vocab
    assert table.base.data_ptr() == base.inference.get().get_input_embeddings().weight.data_ptr()
    trainable = run.copy()  # a full float32 table again, equal to what was kept
    full = trainable.model.get_input_embeddings()
    assert type(full) is nn.Embedding and full.weight.dtype == torch.float32 and full.weight.requires_grad
    torch.testing.assert_close(full.weight, table.weight.float(), rtol=0, atol=0)


def test_materialize_leaves_an_ordinary_table_alone(tiny_encoder) -> None:
    table = tiny_encoder.model.get_input_embeddings()
    materialize(tiny_encoder.model)
    assert tiny_encoder.model.get_input_embeddings() is table

"""The unpadded forward against Hugging Face's own padded forward: outputs, loss and gradients, every pooler."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from simcse_core.model.encoder import Encoder, EncoderConfig
from simcse_core.model.loading import load_encoder
from simcse_core.model.pooling import POOLERS, Pooler
from simcse_core.model.unpadded import pooled_forward, unsupported_reason
from simcse_core.training.losses import simcse_loss
from simcse_core.training.train import TrainConfig, _loss

# Lengths from 2 tokens ("" is [CLS] [SEP]) to the truncation limit, so rows carry very different padding.
SENTENCES = [
    "a man plays the guitar",
    "",
    "the dog runs in the park with a red ball and the cat is eating food in the kitchen of the big house",
    "she reads",
    "the stock market fell and the price of the bank rose",
    "it rains",
]


def _set_dropout(model: nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def _padded_reference(encoder: Encoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Hugging Face's padded forward + the project's pooler, under the encoder's autocast."""
    dtype = encoder.autocast_dtype
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        out = encoder.model(**batch, output_hidden_states=True, return_dict=True)
        return encoder.pooler(out.last_hidden_state, batch["attention_mask"], out.hidden_states)


def _unpadded(encoder: Encoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    dtype = encoder.autocast_dtype
    with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        return pooled_forward(encoder.model, encoder.pooler, batch)


def _loss_and_grads(encoder: Encoder, forward, batch: dict[str, torch.Tensor]):
    """Vectors, a scalar loss that reads every vector entry (in the model's dtype), and its gradients."""
    encoder.zero_grad(set_to_none=True)
    z = forward(encoder, batch)  # (B, D)
    probe = torch.randn(z.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (B, D)
    loss = (z * probe.to(z.dtype)).sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}
    return z.detach(), loss.detach(), grads


def _assert_grads_close(got: dict, want: dict, rel: float, bf16: bool = False) -> None:
    """Each gradient within ``rel`` x its largest entry (fp32/fp64), or of its norm (bf16: rounding is coarse)."""
    assert got.keys() == want.keys()
    for name, g in want.items():
        if name.endswith("attention.self.key.bias"):
            continue  # analytically zero (softmax ignores a shift shared by all keys): rounding noise only
        if bf16:
            error = float((got[name] - g).norm() / g.norm().clamp(min=1e-30))
            assert error < rel, f"{name}: relative error {error:.2e} of the gradient's norm"
            continue
        scale = float(g.abs().max()) or 1.0
        torch.testing.assert_close(got[name], g, rtol=0, atol=rel * scale, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("pooler", POOLERS)
@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.float64, marks=pytest.mark.slow), torch.float32],
                         ids=["fp64", "fp32"])
def test_outputs_and_gradients_match_the_padded_model(tiny_model_dir, pooler, train_mode, dtype) -> None:
    encoder = load_encoder(tiny_model_dir, pooler=pooler, device="cpu", precision="fp32", token_limit=24).to(dtype)
    _set_dropout(encoder.model, 0.0)  # train mode without randomness: MLP head on for cls
    encoder.train(train_mode)
    batch = encoder.tokenize(SENTENCES)
    assert batch["attention_mask"].sum(1).min() == 2 and batch["attention_mask"].shape[1] == 24
    z_ref, loss_ref, grads_ref = _loss_and_grads(encoder, _padded_reference, batch)
    z, loss, grads = _loss_and_grads(encoder, _unpadded, batch)
    # float64 shows the two computations are the same function; float32 that rounding stays at its level.
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(z, z_ref, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(loss, loss_ref, rtol=tolerance, atol=tolerance)
    _assert_grads_close(grads, grads_ref, rel=tolerance if dtype == torch.float64 else 1e-3)


def test_fp32_simcse_loss_matches_the_padded_model(tiny_model_dir) -> None:
    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")
    _set_dropout(encoder.model, 0.0)
    encoder.train()
    batch = encoder.tokenize(SENTENCES)
    losses = [simcse_loss(*forward(encoder, batch).chunk(2), temperature=0.05)
              for forward in (_padded_reference, _unpadded)]
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pooler", ["mean", "cls", "avg_top2"])
def test_bf16_autocast_matches_the_padded_model(tiny_model_dir, pooler) -> None:
    encoder = load_encoder(tiny_model_dir, pooler=pooler, device="cpu", precision="bf16")
    _set_dropout(encoder.model, 0.0)
    encoder.train()
    batch = encoder.tokenize(SENTENCES)
    z_ref, loss_ref, grads_ref = _loss_and_grads(encoder, _padded_reference, batch)
    z, loss, grads = _loss_and_grads(encoder, _unpadded, batch)
    torch.testing.assert_close(z, z_ref, rtol=2e-2, atol=2e-2 * float(z_ref.abs().max()))
    torch.testing.assert_close(loss, loss_ref, rtol=2e-2, atol=2e-2 * float(loss_ref.abs()))
    _assert_grads_close(grads, grads_ref, rel=2e-2, bf16=True)


@pytest.mark.slow
def test_dropout_gives_two_views_drawn_like_the_padded_models(tiny_model_dir) -> None:
    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")
    _set_dropout(encoder.model, 0.2)
    encoder.train()
    batch = encoder.tokenize(SENTENCES[:3])
    stacked = {key: torch.cat([value, value]) for key, value in batch.items()}  # two views in one call
    torch.manual_seed(0)
    z1, z2 = _unpadded(encoder, stacked).chunk(2)
    assert not torch.allclose(z1, z2), "the two dropout views must differ"
    torch.manual_seed(0)
    torch.testing.assert_close(torch.cat([z1, z2]), _unpadded(encoder, stacked))  # seeded: reproducible
    # The dropout masks differ from the padded model's, their distribution must not: compare the mean
    # vector over many draws (Monte Carlo error ~ std / sqrt(draws)) with the padded model's.
    draws = 400
    with torch.no_grad():
        unpadded = torch.stack([_unpadded(encoder, batch) for _ in range(draws)])  # (draws, 3, D)
        padded = torch.stack([_padded_reference(encoder, batch) for _ in range(draws)])
    error = 5 * padded.std(0) / draws**0.5 * 2**0.5  # 5 sigma of a difference of two means
    assert ((unpadded.mean(0) - padded.mean(0)).abs() <= error).float().mean() > 0.99
    encoder.eval()
    with torch.no_grad():
        deterministic = _padded_reference(encoder, batch)
    assert (padded.mean(0) - deterministic).abs().max() > 1e-3, "dropout must change the vectors"


def test_roberta_positions_follow_fairseq(tmp_path) -> None:
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=40, pad_token_id=1)
    model = RobertaModel(config, add_pooling_layer=False).eval()
    assert unsupported_reason(model) is None
    lengths = [5, 2, 9, 3]
    input_ids = torch.ones(4, 9, dtype=torch.long)  # (B, T) right-padded with pad id 1
    mask = torch.zeros(4, 9, dtype=torch.long)
    for row, n in enumerate(lengths):
        input_ids[row, :n] = torch.randint(3, 99, (n,))
        mask[row, :n] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    pooler = Pooler("mean", 32)
    with torch.no_grad():
        want = pooler(model(**batch).last_hidden_state, mask)
        got = pooled_forward(model, pooler, batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_other_architectures_train_on_padded_batches_and_say_so(tiny_model_dir, caplog) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    tokenizer = load_encoder(tiny_model_dir, device="cpu", precision="fp32").tokenizer
    model = DistilBertModel(DistilBertConfig(vocab_size=99, dim=32, n_layers=1, n_heads=4, hidden_dim=37))
    assert "DistilBertModel" in unsupported_reason(model)
    with caplog.at_level(logging.INFO, logger="simcse_core.model.encoder"):
        encoder = Encoder(model, tokenizer, Pooler("mean", 32), EncoderConfig("tiny-distilbert"),
                          torch.device("cpu"))
    assert not encoder.unpadded_training
    assert any("padded batches" in r.getMessage() and "DistilBertModel" in r.getMessage() for r in caplog.records)
    encoder.train()
    loss = _loss(encoder, SENTENCES, TrainConfig(batch_size=2))
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("owner, attribute", [
    ("encoder.layer.1.attention.self", "scaling"), ("encoder.layer.0.intermediate", "intermediate_act_fn"),
    ("embeddings", "token_type_embeddings"),
])
def test_a_missing_attribute_sends_training_down_the_padded_path_with_one_log_line(
        tiny_model_dir, monkeypatch, caplog, owner, attribute) -> None:
    """What a transformers release that renames an attribute the unpadded forward reads would look like."""
    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")
    assert encoder.unpadded_training
    monkeypatch.delattr(encoder.model.get_submodule(owner), attribute)
    with caplog.at_level(logging.INFO, logger="simcse_core.model.encoder"):
        rebuilt = Encoder(encoder.model, encoder.tokenizer, encoder.pooler, encoder.config, encoder.device)
    assert not rebuilt.unpadded_training
    said = [r.getMessage() for r in caplog.records if "padded batches" in r.getMessage()]
    assert len(said) == 1 and attribute in said[0]
    monkeypatch.undo()  # the padded forward reads the attribute too; the unpadded one must not be called

    def refuse(*args, **kwargs):
        raise AssertionError("the unpadded forward ran")

    monkeypatch.setattr("simcse_core.model.encoder.pooled_forward", refuse)
    rebuilt.train()
    loss = _loss(rebuilt, SENTENCES, TrainConfig(batch_size=2))
    loss.backward()
    assert torch.isfinite(loss)


def test_unknown_modules_are_refused() -> None:
    assert unsupported_reason(nn.Linear(2, 2)) is not None


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_minilm_training_loss_and_gradients_match_the_padded_path(minilm, shared_stsb, precision) -> None:
    """The trainer's own loss (both views in one call) on 32 STS-B sentences, against the padded fp32 path.

    bf16 autocast rounds differently on packed rows than on padded ones, so its reference is the exact
    (fp32) gradient: measured, the padded bf16 path is within 0.5-1.1 % of it (norm), the unpadded 0.5-2.5 %.
    """
    import csv

    with open(shared_stsb / "train.csv", encoding="utf-8", newline="") as f:
        sentences = [row[0] for row, _ in zip(csv.reader(f), range(32))]
    encoder = minilm.copy()
    assert encoder.unpadded_training
    _set_dropout(encoder.model, 0.0)
    encoder.train()
    results = {}
    for unpadded, dtype in ((False, None), (True, torch.bfloat16 if precision == "bf16" else None)):
        encoder.unpadded_training, encoder.autocast_dtype = unpadded, dtype
        encoder.zero_grad(set_to_none=True)
        loss = _loss(encoder, sentences, TrainConfig(max_length=32))
        loss.backward()
        results[unpadded] = loss.detach(), {n: p.grad.clone() for n, p in encoder.named_parameters()
                                            if p.grad is not None}
    (loss_ref, grads_ref), (loss, grads) = results[False], results[True]
    tolerance = 1e-4 if precision == "fp32" else 4e-2
    torch.testing.assert_close(loss, loss_ref, rtol=tolerance, atol=tolerance)
    _assert_grads_close(grads, grads_ref, rel=tolerance, bf16=precision == "bf16")


def test_packed_tokens_are_rounded_up_with_padding_tokens_after_the_real_ones(tiny_model_dir) -> None:
    """oneDNN keeps kernels per shape: the packed matrix has a multiple of 64 rows (or the whole batch), its real
    tokens first; the tests above compare such a batch (some of its padding packed) with the padded model."""
    from simcse_core.model.unpadded import TOKEN_MULTIPLE, Packing

    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32", token_limit=24)
    mask = encoder.tokenize(SENTENCES)["attention_mask"]  # (6, 24)
    real = int(mask.sum())
    packing = Packing.of(mask)
    assert real < TOKEN_MULTIPLE < mask.numel() and packing.index.numel() == TOKEN_MULTIPLE
    flat = mask.reshape(-1).bool()
    assert flat[packing.index[:real]].all() and not flat[packing.index[real:]].any()
    assert packing.index[:real].tolist() == flat.nonzero().squeeze(1).tolist()  # row after row
    assert Packing.of(mask, multiple=1).index.numel() == real
    assert Packing.of(torch.ones(2, 3, dtype=torch.long)).index.numel() == 6  # fewer than 64 in all: all of them

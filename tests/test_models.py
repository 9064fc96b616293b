"""The model catalogue and precision resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simcse_core.model.catalogue import ModelNotAvailableError, packaged_model_dir, resolve_model
from simcse_core.model.encoder import load_encoder
from simcse_core.runtime import resolve_precision


def test_catalogue_kinds(tiny_model_dir) -> None:
    packaged = resolve_model("minilm")
    assert packaged.kind == "packaged" and (packaged_model_dir() / "config.json").is_file()
    assert resolve_model(tiny_model_dir).kind == "local"
    hub = resolve_model("princeton-nlp/sup-simcse-bert-base-uncased")
    assert hub.kind == "hub" and not hub.is_local
    with pytest.raises(ModelNotAvailableError, match="No model name"):
        resolve_model("  ")


def test_precision_choices() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16


def test_bf16_autocast_stays_close_to_fp32(tiny_model_dir) -> None:
    sentences = ["a man plays the guitar", "the dog runs in the park", "it rains on the sea"]
    fp32 = load_encoder(tiny_model_dir, device="cpu", precision="fp32").encode(sentences)
    bf16 = load_encoder(tiny_model_dir, device="cpu", precision="bf16").encode(sentences)
    assert bf16.dtype == np.float32
    cosines = (fp32 * bf16).sum(axis=1)
    assert cosines.min() > 0.99 and not np.array_equal(fp32, bf16)

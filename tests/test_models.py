"""The model catalogue and precision resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simcse_core.model.catalogue import ModelNotAvailableError, packaged_model_dir, resolve_model
from simcse_core.model.loading import load_encoder
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


def test_the_shipped_raw_model_loads_offline_in_fp32_from_files_a_space_accepts() -> None:
    from transformers import AutoModel, AutoTokenizer

    from simcse_core import load_encoder
    from simcse_core.model.catalogue import RAW_MODEL, SHIPPED_MODELS, packaged_model_dir, resolve_model

    folder = SHIPPED_MODELS[RAW_MODEL]
    files = [p for p in folder.iterdir() if p.is_file()]
    assert all(p.stat().st_size <= 9_000_000 for p in files)  # a Space refuses files over 10 MB without LFS
    assert sum(p.stat().st_size for p in files) <= 30_000_000
    assert resolve_model(RAW_MODEL).location == str(folder)
    model = AutoModel.from_pretrained(folder)
    assert next(model.parameters()).dtype.is_floating_point and str(next(model.parameters()).dtype) == "torch.float32"
    ours = AutoTokenizer.from_pretrained(folder)
    minilm = AutoTokenizer.from_pretrained(packaged_model_dir())
    sentence = "A man is playing a guitar on the street."
    assert ours(sentence)["input_ids"] == minilm(sentence)["input_ids"]  # both models read sentences alike
    encoder = load_encoder(RAW_MODEL, pooler="mean")
    assert encoder.encode([sentence]).shape == (1, 128)
    assert (folder / "MODEL.md").is_file()

"""Export for the official SimCSE tool and sentence-transformers; official checkpoints with their own pooler."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from simcse_core.cli import main
from simcse_core.interop.interchange import export_simcse, load_official, official_pooler, official_tool_pooler
from simcse_core.model.loading import load_encoder
from simcse_core.training.train import TrainConfig, train

SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
]
QUERIES = ["a man plays the guitar in the park", "the price of food fell", "she reads"]
FAST = TrainConfig(steps=2, batch_size=4, lr=1e-2, eval_every=0)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _official_tool_vectors(folder: Path, pooler: str) -> np.ndarray:
    """What ``simcse.SimCSE(folder, pooler=pooler).encode`` computes (simcse 0.4, tool.py), written out."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        out = model(**tokenizer(QUERIES, padding=True, truncation=True, max_length=128, return_tensors="pt"))
    vectors = out.pooler_output if pooler == "cls" else out.last_hidden_state[:, 0]  # (N, D)
    return _unit(vectors.numpy())


def _trained(tiny_model_dir: Path, mode: str) -> object:
    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32")
    data = SENTENCES if mode == "unsup" else list(zip(SENTENCES, SENTENCES[1:] + SENTENCES[:1]))
    list(train(encoder, data, replace(FAST, mode=mode, pooler="cls")))  # the paper's rule for the MLP
    return encoder


@pytest.mark.slow
@pytest.mark.parametrize("mode,tool_pooler", [("sup", "cls"), ("unsup", "cls_before_pooler")])
def test_exported_model_gives_the_same_vectors_everywhere(tiny_model_dir, tmp_path, mode, tool_pooler):
    from sentence_transformers import SentenceTransformer

    encoder = _trained(tiny_model_dir, mode)
    assert encoder.pooler.mlp_only_train == (mode == "unsup")
    expected = _unit(encoder.encode(QUERIES, normalize=False))
    folder = export_simcse(encoder, tmp_path / "export")
    assert official_tool_pooler(encoder) == tool_pooler
    # simcse_to_huggingface.py: the training MLP is now BERT's pooler layer.
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    torch.testing.assert_close(weights["pooler.dense.weight"], encoder.pooler.mlp[0].weight.detach())
    np.testing.assert_allclose(_official_tool_vectors(folder, tool_pooler), expected, atol=1e-5)
    st_vectors = SentenceTransformer(str(folder), device="cpu").encode(QUERIES)
    np.testing.assert_allclose(_unit(st_vectors), expected, atol=1e-5)
    again = load_encoder(folder, device="cpu", precision="fp32")
    np.testing.assert_allclose(_unit(again.encode(QUERIES, normalize=False)), expected, atol=1e-5)
    if importlib.util.find_spec("simcse") is not None:  # the official tool itself, when installed
        from simcse import SimCSE

        tool = SimCSE(str(folder), device="cpu", pooler=tool_pooler)
        np.testing.assert_allclose(tool.encode(QUERIES, return_numpy=True), expected, atol=1e-5)


def test_the_wrong_tool_pooler_would_differ(tiny_model_dir, tmp_path):
    """The check above can fail: the supervised model read through the raw [CLS] gives other vectors."""
    encoder = _trained(tiny_model_dir, "sup")
    folder = export_simcse(encoder, tmp_path / "export")
    expected = _unit(encoder.encode(QUERIES, normalize=False))
    assert np.abs(_official_tool_vectors(folder, "cls_before_pooler") - expected).max() > 1e-2


def test_mean_pooler_exports_for_sentence_transformers(tiny_encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = export_simcse(tiny_encoder, tmp_path / "mean")
    st_vectors = SentenceTransformer(str(folder), device="cpu").encode(QUERIES)
    np.testing.assert_allclose(_unit(st_vectors), _unit(tiny_encoder.encode(QUERIES, normalize=False)), atol=1e-5)


def test_poolers_without_an_equivalent_are_refused(tiny_model_dir, tmp_path):
    encoder = load_encoder(tiny_model_dir, pooler="avg_top2", device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="avg_top2"):
        export_simcse(encoder, tmp_path / "x")


@pytest.fixture
def official_copies(tiny_model_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """Folders laid out like the official checkpoints: a BertModel whose pooler layer holds the MLP."""
    from transformers import BertConfig, BertModel

    folders = {}
    for name in ("unsup-simcse-tiny-bert", "sup-simcse-tiny-bert"):
        folder = Path(shutil.copytree(tiny_model_dir, tmp_path / name))
        config = BertConfig.from_pretrained(folder)
        model = BertModel.from_pretrained(folder, config=config)  # pooler missing: initialised now
        torch.manual_seed(5)
        torch.nn.init.normal_(model.pooler.dense.weight, std=0.5)
        model.save_pretrained(folder, safe_serialization=True)
        folders[name] = folder
    return folders


def test_official_checkpoints_load_with_their_pooler(official_copies):
    assert official_pooler(official_copies["unsup-simcse-tiny-bert"]) == "cls_before_pooler"
    assert official_pooler(official_copies["sup-simcse-tiny-bert"]) == "cls"
    assert official_pooler("princeton-nlp/sup-simcse-roberta-large") == "cls"
    assert official_pooler("bert-base-uncased") is None
    for name, tool_pooler in (("unsup-simcse-tiny-bert", "cls_before_pooler"), ("sup-simcse-tiny-bert", "cls")):
        encoder = load_official(official_copies[name], device="cpu", precision="fp32")
        assert encoder.pooler.name == tool_pooler
        got = _unit(encoder.encode(QUERIES, normalize=False))
        np.testing.assert_allclose(got, _official_tool_vectors(official_copies[name], tool_pooler), atol=1e-5)


def test_a_folder_saved_here_keeps_its_own_pooler(tiny_encoder, tmp_path):
    folder = tiny_encoder.save(tmp_path / "my-sup-simcse-model")
    assert official_pooler(folder) is None
    with pytest.raises(ValueError, match="not an official SimCSE checkpoint"):
        load_official(tmp_path / "other-model")


def test_cli_export_and_eval_of_an_official_copy(official_copies, tmp_path, capsys):
    sup = official_copies["sup-simcse-tiny-bert"]
    assert main(["export", "--model", str(sup), "--device", "cpu", "--precision", "fp32",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "pooler='cls'" in out and "[cls]" in out  # read with its own pooler, no --pooler needed
    np.testing.assert_allclose(_official_tool_vectors(tmp_path / "out", "cls"),
                               _official_tool_vectors(sup, "cls"), atol=1e-5)

"""The Encoder: order, batching, similarity, copies, dropout, saving and the packaged model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from simcse_core.encoder import load_encoder
from simcse_core.models import ModelNotAvailableError, packaged_model_dir

SENTENCES = [
    "a man plays the guitar",
    "the dog runs in the park",
    "she reads a book",
    "the stock market fell",
    "a child eats food in the kitchen",
    "it rains on the sea",
    "they drive a red car",
]


def test_encode_shape_dtype_norm_and_order(tiny_encoder) -> None:
    vectors = tiny_encoder.encode(SENTENCES, batch_size=3)
    assert vectors.shape == (len(SENTENCES), tiny_encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([tiny_encoder.encode(s)[0] for s in SENTENCES])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


def test_encode_without_normalisation_and_empty_input(tiny_encoder) -> None:
    raw = tiny_encoder.encode(SENTENCES[:2], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert tiny_encoder.encode([]).shape == (0, tiny_encoder.dim)
    with pytest.raises(ValueError, match="batch_size"):
        tiny_encoder.encode(SENTENCES, batch_size=0)


def test_similarity_is_the_cosine_matrix(tiny_encoder) -> None:
    raw = tiny_encoder.encode(SENTENCES[:3], normalize=False)
    expected = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in raw] for a in raw])
    np.testing.assert_allclose(tiny_encoder.similarity(SENTENCES[:3], SENTENCES[:3]), expected, atol=1e-5)
    np.testing.assert_allclose(tiny_encoder.similarity(raw, SENTENCES[:3]), expected, atol=1e-5)
    # Both sides as sentences, overlapping and of different lengths: encoded together, each once.
    a, b = SENTENCES[:2], SENTENCES[1:4]
    vectors = tiny_encoder.encode(SENTENCES[:4])
    np.testing.assert_allclose(tiny_encoder.similarity(a, b), vectors[:2] @ vectors[1:4].T, atol=1e-5)
    assert tiny_encoder.similarity(SENTENCES[0], SENTENCES[1]).shape == (1, 1)


def test_train_mode_uses_dropout_and_encode_does_not(tiny_model_dir) -> None:
    encoder = load_encoder(tiny_model_dir, device="cpu", dropout=0.3, precision="fp32")
    assert encoder.model.config.hidden_dropout_prob == 0.3
    batch = encoder.tokenize(SENTENCES[:4])
    encoder.train()
    z1, z2 = encoder(batch), encoder(batch)
    assert not torch.allclose(z1, z2), "two train-mode passes must differ (dropout is the augmentation)"
    first = encoder.encode(SENTENCES[:4])
    assert encoder.training, "encode must restore the caller's mode"
    np.testing.assert_array_equal(first, encoder.encode(SENTENCES[:4]))


def test_copy_is_independent(tiny_encoder) -> None:
    clone = tiny_encoder.copy()
    before = tiny_encoder.encode(SENTENCES[:2])
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(0.1)
    np.testing.assert_array_equal(before, tiny_encoder.encode(SENTENCES[:2]))
    assert not np.allclose(before, clone.encode(SENTENCES[:2]))


def test_with_pooler_shares_weights(tiny_encoder) -> None:
    cls_view = tiny_encoder.with_pooler("cls_before_pooler")
    assert cls_view.model is tiny_encoder.model
    batch = tiny_encoder.tokenize(SENTENCES[:2])
    with torch.no_grad():
        states = tiny_encoder.model(**batch).last_hidden_state
    expected = torch.nn.functional.normalize(states[:, 0], dim=-1).numpy()
    np.testing.assert_allclose(cls_view.encode(SENTENCES[:2]), expected, atol=1e-5)


@pytest.mark.parametrize("pooler", ["mean", "cls_before_pooler", "cls", "avg_top2"])
def test_saved_model_loads_back_with_its_pooler(tiny_model_dir, tmp_path, pooler: str) -> None:
    encoder = load_encoder(tiny_model_dir, pooler=pooler, device="cpu", max_length=24, precision="fp32")
    encoder.save(tmp_path / "saved")
    settings = json.loads((tmp_path / "saved" / "simcse_config.json").read_text())
    assert settings["pooler"] == pooler and settings["max_length"] == 24
    reloaded = load_encoder(tmp_path / "saved", device="cpu", precision="fp32")  # pooler read, not guessed
    assert reloaded.config.pooler == pooler and reloaded.config.max_length == 24
    np.testing.assert_allclose(reloaded.encode(SENTENCES), encoder.encode(SENTENCES), atol=1e-5)


def test_missing_folder_and_offline_hub_id_are_explained(tmp_path, monkeypatch) -> None:
    with pytest.raises(ModelNotAvailableError, match="No model folder"):
        load_encoder(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        load_encoder(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="bert-base-uncased.*offline"):
        load_encoder("bert-base-uncased")


def test_unknown_pooler_and_bad_max_length(tiny_model_dir) -> None:
    with pytest.raises(ValueError, match="Unknown pooler"):
        load_encoder(tiny_model_dir, pooler="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        load_encoder(tiny_model_dir, max_length=1)


@pytest.mark.integration
def test_packaged_model_matches_sentence_transformers(minilm) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(packaged_model_dir()), device="cpu")
    st.max_seq_length = minilm.config.max_length
    sentences = SENTENCES + ["A much longer sentence that goes on and on, so that it is cut at the token limit " * 3]
    ours = minilm.encode(sentences)
    theirs = st.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines


@pytest.mark.integration
def test_packaged_model_saved_folder_loads_in_sentence_transformers(minilm, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    for pooler in ("mean", "cls_before_pooler"):
        view = minilm.with_pooler(pooler)
        folder = view.save(tmp_path / pooler)
        st = SentenceTransformer(str(folder), device="cpu")
        theirs = st.encode(SENTENCES, normalize_embeddings=True)
        np.testing.assert_allclose(view.encode(SENTENCES), theirs, atol=1e-4)

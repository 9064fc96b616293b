"""The Encoder: order, batching, similarity, copies, dropout, saving and the packaged model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from simcse_core.model.catalogue import ModelNotAvailableError, packaged_model_dir
from simcse_core.model.loading import load_encoder

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
    encoder = load_encoder(tiny_model_dir, pooler=pooler, device="cpu", token_limit=24, precision="fp32")
    encoder.save(tmp_path / "saved")
    settings = json.loads((tmp_path / "saved" / "simcse_config.json").read_text())
    assert settings["pooler"] == pooler and settings["token_limit"] == 24
    reloaded = load_encoder(tmp_path / "saved", device="cpu", precision="fp32")  # pooler read, not guessed
    assert reloaded.config.pooler == pooler and reloaded.config.token_limit == 24
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


def test_unknown_pooler_and_bad_token_limit(tiny_model_dir) -> None:
    with pytest.raises(ValueError, match="Unknown pooler"):
        load_encoder(tiny_model_dir, pooler="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token_limit"):
        load_encoder(tiny_model_dir, token_limit=1)


@pytest.mark.slow
@pytest.mark.integration
def test_packaged_model_matches_sentence_transformers(minilm) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(packaged_model_dir()), device="cpu")
    st.max_seq_length = minilm.config.token_limit
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


# --- issue 8: what the engine reads must be what it says -------------------------------------------------


@pytest.mark.integration
def test_inference_reads_whole_sentences_not_32_tokens(minilm) -> None:
    # Two 40-token sentences that differ only after token 32: cut to 32 tokens they would read 1.00.
    head = "the quick brown fox jumps over the lazy dog near the river bank while children play " * 2
    a, b = head + "with a red ball.", head + "and stock prices crash on wall street."
    assert all(report.tokens > 32 and not report.truncated for report in minilm.token_report([a, b]))
    assert minilm.config.token_limit == 256  # the model's own limit (sentence_bert_config.json)
    assert float(minilm.similarity([a], [b])[0, 0]) < 0.95
    cut = float(minilm.similarity(minilm.encode([a], token_limit=32), minilm.encode([b], token_limit=32))[0, 0])
    assert cut > 0.999  # what the app showed before


def test_training_length_is_not_the_inference_limit(tiny_model_dir, tmp_path) -> None:
    from simcse_core.training.train import TrainConfig, train

    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32")
    assert encoder.config.token_limit == 64  # the tiny model's position embeddings
    list(train(encoder, ["a man plays", "a dog runs", "the sun"], TrainConfig(steps=1, batch_size=2, max_length=8,
                                                                             eval_every=0)))
    assert encoder.config.token_limit == 64
    reloaded = load_encoder(encoder.save(tmp_path / "m"), device="cpu", precision="fp32")
    assert reloaded.config.token_limit == 64
    st_config = json.loads((tmp_path / "m" / "sentence_bert_config.json").read_text())
    assert st_config["max_seq_length"] == 64


def test_token_report_counts_truncation_and_unknown_pieces(tiny_encoder) -> None:
    long = " ".join(["the man plays guitar"] * 30)
    report_long, report_unknown, report_plain = tiny_encoder.token_report([long, "🐶 🍕 dog", "a man plays"])
    assert report_long.tokens == 120 and report_long.kept == 62 and report_long.truncated
    assert report_long.truncated_text.startswith("guitar") or report_long.truncated_text  # where the cut starts
    assert report_unknown.unknown == 2 and report_unknown.unknown_text == ("🐶", "🍕")
    assert report_unknown.unknown_share == pytest.approx(2 / 5)  # 2 of the 5 non-space characters
    assert not report_unknown.mostly_unknown
    assert report_plain.unknown == 0 and not report_plain.truncated
    assert tiny_encoder.token_report(["🐶"])[0].mostly_unknown


@pytest.mark.integration
def test_emoji_and_chinese_are_reported_unknown_by_the_bundled_model(minilm) -> None:
    dog, pizza, chinese = minilm.token_report(["🐶", "🍕", "我喜欢吃苹果"])
    assert dog.mostly_unknown and pizza.mostly_unknown and dog.unknown_text == ("🐶",)
    assert chinese.mostly_unknown and chinese.unknown_share == pytest.approx(5 / 6)


@pytest.mark.integration
def test_cls_pooler_uses_the_checkpoints_pooler_weights() -> None:
    from safetensors.torch import load_file

    from simcse_core.model.catalogue import packaged_model_dir

    weights = load_file(str(packaged_model_dir() / "model.safetensors"))
    first = load_encoder("minilm", pooler="cls", device="cpu", precision="fp32")
    second = load_encoder("minilm", pooler="cls", device="cpu", precision="fp32")
    assert first.config.head == "checkpoint"
    assert torch.equal(first.pooler.mlp[0].weight, weights["pooler.dense.weight"])
    sentences = ["A man plays a guitar.", "The market fell."]
    np.testing.assert_array_equal(first.encode(sentences), second.encode(sentences))


def test_cls_head_without_checkpoint_weights_is_seeded_and_made_once(tiny_model_dir) -> None:
    torch.manual_seed(123)
    first = load_encoder(tiny_model_dir, pooler="cls", device="cpu", precision="fp32")
    torch.manual_seed(456)
    second = load_encoder(tiny_model_dir, pooler="cls", device="cpu", precision="fp32")
    assert first.config.head == second.config.head == "random"
    assert torch.equal(first.pooler.mlp[0].weight, second.pooler.mlp[0].weight)
    mean = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")
    view = mean.with_pooler("cls")
    assert view is mean.with_pooler("cls")  # never re-created per request
    np.testing.assert_array_equal(view.encode(["a man plays"]), mean.with_pooler("cls").encode(["a man plays"]))
    np.testing.assert_allclose(view.encode(["a man plays"]), first.encode(["a man plays"]), atol=1e-6)


def test_cls_view_of_a_model_trained_with_another_pooler_is_deterministic(tiny_encoder) -> None:
    from simcse_core.training.train import TrainConfig, train

    list(train(tiny_encoder, ["a man plays", "a dog runs", "the sun"], TrainConfig(steps=1, batch_size=2,
                                                                                  eval_every=0)))
    first = tiny_encoder.with_pooler("cls").encode(["a man plays", "the sun"])
    second = tiny_encoder.with_pooler("cls").encode(["a man plays", "the sun"])
    np.testing.assert_array_equal(first, second)


def test_concurrent_tokenizer_calls_with_different_settings_do_not_interfere(tiny_encoder) -> None:
    import threading

    errors: list[BaseException] = []
    sentences = ["the man plays guitar " * k for k in range(1, 9)]

    def work(kind: int) -> None:
        try:
            for _ in range(300):
                if kind % 2:
                    tiny_encoder.tokenizer(sentences, truncation=True, max_length=8)
                else:
                    out = tiny_encoder.tokenizer(sentences, padding=True, return_tensors="pt")
                    assert out["input_ids"].shape[0] == len(sentences)
        except BaseException as err:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]


def _mean_pooled_by_hand(model, tokenizer, sentences: list[str]) -> np.ndarray:
    """Unit mean-pooled vectors of ``model`` (any dtype), computed here without the encoder's code."""
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state.float()  # (B, T, H)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)  # (B, H)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


def test_bf16_inference_reads_a_bf16_copy_made_once_and_remade_after_the_weights_change(tiny_model_dir) -> None:
    import copy

    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="bf16")
    first = encoder.encode(SENTENCES)
    inference = encoder.inference.get()
    assert next(inference.parameters()).dtype == torch.bfloat16
    assert next(encoder.model.parameters()).dtype == torch.float32  # training keeps fp32 weights
    assert encoder.inference.get() is inference  # made once
    assert encoder.with_pooler("cls_before_pooler").inference is encoder.inference  # one copy per weights
    reference = _mean_pooled_by_hand(copy.deepcopy(encoder.model).to(torch.bfloat16), encoder.tokenizer, SENTENCES)
    np.testing.assert_allclose(first, reference, atol=2e-2)

    with torch.no_grad():  # an optimizer step changes the weights in place, and says so
        words = encoder.model.embeddings.word_embeddings.weight
        words.add_(torch.randn(words.shape, generator=torch.Generator().manual_seed(0)))
    assert encoder.inference.get() is inference  # no signal yet: the copy is kept (no version counters)
    encoder.weights_changed()
    after = encoder.encode(SENTENCES)
    assert encoder.inference.get() is not inference
    reference = _mean_pooled_by_hand(copy.deepcopy(encoder.model).to(torch.bfloat16), encoder.tokenizer, SENTENCES)
    np.testing.assert_allclose(after, reference, atol=2e-2)
    assert np.abs(after - first).max() > 0.05  # a stale copy would give the old vectors


def test_fp32_inference_reads_the_model_itself(tiny_encoder) -> None:
    assert tiny_encoder.inference.get() is tiny_encoder.model


def test_compact_halves_the_weights_and_keeps_the_vectors(tiny_model_dir, tmp_path) -> None:
    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="bf16")
    before = encoder.encode(SENTENCES)
    fp32_bytes = sum(p.numel() * p.element_size() for p in encoder.model.parameters())
    encoder.compact()
    assert sum(p.numel() * p.element_size() for p in encoder.model.parameters()) == fp32_bytes // 2
    assert encoder.inference.get() is encoder.model  # no second copy is kept
    np.testing.assert_array_equal(encoder.encode(SENTENCES), before)
    with pytest.raises(ValueError, match="save it before"):
        encoder.save(tmp_path / "model")
    trainable = encoder.copy()
    assert next(trainable.model.parameters()).dtype == torch.float32
    trainable.train()
    trainable(trainable.tokenize(SENTENCES)).sum().backward()  # the copy trains


def test_fp32_encoder_is_not_compacted(tiny_encoder) -> None:
    tiny_encoder.compact()
    assert next(tiny_encoder.model.parameters()).dtype == torch.float32


@pytest.mark.slow
@pytest.mark.integration
def test_bf16_inference_keeps_stsb_spearman_within_0_05(minilm) -> None:
    from simcse_core.evaluation.metrics import sts_spearman
    from simcse_core.evaluation.sets import load_stsb

    pairs = load_stsb("test")
    fast = load_encoder("minilm", pooler="mean", device="cpu", precision="bf16")
    assert next(fast.inference.get().parameters()).dtype == torch.bfloat16
    assert abs(sts_spearman(fast, pairs) - sts_spearman(minilm, pairs)) < 0.05  # both x100


@pytest.mark.slow
def test_encode_after_every_training_step_reads_that_steps_weights(tiny_model_dir) -> None:
    """The live STS curve: the trainer's signal after each step is the only thing that refreshes the bf16 copy,
    so a step whose signal is missed leaves encode() on the previous step's weights, and this test fails."""
    import copy

    from simcse_core.training.train import TrainConfig, train

    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="bf16")
    previous = encoder.encode(SENTENCES)  # makes the inference copy
    steps = 0
    for event in train(encoder, SENTENCES * 4, TrainConfig(steps=3, batch_size=8, lr=1e-2, eval_every=0)):
        if event.step == 0:
            continue
        now = encoder.encode(SENTENCES)
        reference = _mean_pooled_by_hand(copy.deepcopy(encoder.model).to(torch.bfloat16), encoder.tokenizer,
                                         SENTENCES)  # recomputed from this step's fp32 weights
        np.testing.assert_allclose(now, reference, atol=2e-2)
        assert np.abs(now - previous).max() > 0.05  # a stale copy would give the previous step's vectors
        previous, steps = now, steps + 1
    assert steps == 3


def test_inference_batches_come_in_few_shapes_and_padding_changes_no_vector(tiny_encoder, monkeypatch) -> None:
    """oneDNN keeps compiled kernels per shape: batches padded to a multiple of 8 tokens come in few shapes, and
    the vectors are those of the batch padded to its longest only (the padding is masked)."""
    from simcse_core.model.encoder import PAD_MULTIPLE

    shapes = []
    real = tiny_encoder._inference_forward
    monkeypatch.setattr(tiny_encoder, "_inference_forward", lambda batch: shapes.append(
        tuple(batch["input_ids"].shape)) or real(batch))
    vectors = tiny_encoder.encode(SENTENCES, batch_size=2)
    assert shapes and all(length % PAD_MULTIPLE == 0 for _, length in shapes)
    tight = tiny_encoder.tokenizer(SENTENCES, padding=True, return_tensors="pt")  # padded to the longest only
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(tiny_encoder(dict(tight)), dim=-1).numpy()
    np.testing.assert_allclose(vectors, reference, atol=1e-5)

"""Masked-LM pretraining and its corpus: BERT's masking, exact resumption, clear refusals."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from simcse_core.cli import main
from simcse_core.pretraining.corpus import CorpusError, evaluation_sentences, is_clean, normalise
from simcse_core.pretraining.mlm import PretrainConfig, PretrainError, PretrainRun, mask_tokens, pretrain

TINY = dict(layers=1, hidden=16, heads=2, intermediate=24, max_length=16, batch_size=4, lr=1e-3, warmup=2,
            steps=6, seed=3)
SENTENCES = [
    "the man plays the guitar in the park", "a woman reads a book", "the dog runs on the road",
    "children play football with a red ball", "the stock market fell", "she cooks food in the kitchen",
    "a bird sings on the big house", "the boat is on the river", "he drives a blue car to school",
    "the cat eats fish", "they are running in the rain", "the sun rose on the green sea",
]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    train, held = tmp_path / "train.txt", tmp_path / "held.txt"
    train.write_text("\n".join(SENTENCES * 2) + "\n", encoding="utf-8")
    held.write_text("\n".join(SENTENCES[:4]) + "\n", encoding="utf-8")
    return train, held


def _run(corpus, out: Path, tokenizer: Path, stop_after: int | None = None, **changes) -> None:
    events = pretrain(*corpus, out, PretrainConfig(**{**TINY, **changes}),
                      PretrainRun(tokenizer_source=str(tokenizer), report_every=1, eval_every=3))
    for event in itertools.islice(events, stop_after):
        assert event.loss > 0
    events.close()  # a consumer that stops early: the generator checkpoints on the way out


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def test_masking_follows_bert_80_10_10_and_never_touches_special_pieces():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, 1000, (400, 50))
    attention = torch.ones_like(input_ids)
    attention[:, 40:] = 0  # padding is never chosen
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    special[:, 0] = True  # nor is [CLS]
    config = PretrainConfig(mask_probability=0.15)
    corrupted, labels = mask_tokens(input_ids, attention, special, config, mask_id=5, vocab_size=1000,
                                    generator=generator)
    chosen = labels != -100
    assert not chosen[:, 40:].any() and not chosen[:, 0].any()
    assert chosen.sum() / (400 * 39) == pytest.approx(0.15, abs=0.01)
    assert torch.equal(labels[chosen], input_ids[chosen])  # labels are the original pieces
    masked = (corrupted == 5) & chosen
    kept = (corrupted == input_ids) & chosen
    assert masked.sum() / chosen.sum() == pytest.approx(0.8, abs=0.02)
    assert kept.sum() / chosen.sum() == pytest.approx(0.1 + 0.1 / 1000, abs=0.02)
    assert torch.equal(corrupted[~chosen], input_ids[~chosen])  # nothing else changes


def test_same_seed_same_weights_and_a_resumed_run_reaches_them(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "a", tiny_model_dir)
    _run(corpus, tmp_path / "b", tiny_model_dir)
    _run(corpus, tmp_path / "c", tiny_model_dir, stop_after=2)  # stopped after 2 of 6 steps ...
    assert not all(torch.equal(v, _weights(tmp_path / "a")[k]) for k, v in _weights(tmp_path / "c").items())
    _run(corpus, tmp_path / "c", tiny_model_dir)  # ... and resumed
    a, b, c = (_weights(tmp_path / name) for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_another_seed_gives_other_weights(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "a", tiny_model_dir)
    _run(corpus, tmp_path / "b", tiny_model_dir, seed=4)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_the_saved_model_loads_with_automodel(corpus, tmp_path, tiny_model_dir):
    from transformers import AutoModel

    _run(corpus, tmp_path / "a", tiny_model_dir)
    model = AutoModel.from_pretrained(tmp_path / "a" / "model")
    assert model.config.hidden_size == 16 and model.config.max_position_embeddings == 16


@pytest.mark.parametrize(("content", "message"), [
    (b"", "has 0 sentences"),
    (b"\n\n  \n", "has 0 sentences"),
    (b"one sentence\n", "at least 4"),
    (b"\x00\x01binary\x00", "not text"),
    (b"\xff\xfe\xfa bad", "not UTF-8"),
])
def test_bad_corpus_is_refused_with_the_file_named(tmp_path, tiny_model_dir, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(PretrainError, match=message) as err:
        next(pretrain(bad, bad, tmp_path / "out", PretrainConfig(**TINY), PretrainRun(str(tiny_model_dir))))
    assert "bad.txt" in str(err.value)


def test_resume_folder_of_another_config_is_refused(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "a", tiny_model_dir, stop_after=1)
    with pytest.raises(PretrainError, match="other settings \\(hidden\\)"):
        _run(corpus, tmp_path / "a", tiny_model_dir, hidden=32)


def test_a_size_that_does_not_fit_in_memory_is_refused_before_starting(corpus, tmp_path, tiny_model_dir):
    huge = dict(TINY, layers=12, hidden=768, heads=12, intermediate=3072, max_length=512, batch_size=4096)
    with pytest.raises(PretrainError, match="GiB"):
        next(pretrain(*corpus, tmp_path / "out", PretrainConfig(**huge), PretrainRun(str(tiny_model_dir))))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes", [dict(hidden=30, heads=4), dict(lr=0.0), dict(dropout=True),
                                     dict(batch_size=1)])
def test_bad_settings_name_the_field(changes):
    with pytest.raises(PretrainError, match="hidden|lr|dropout|batch_size"):
        PretrainConfig(**changes)


def test_cli_pretrain_refuses_an_empty_corpus_without_a_traceback(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["pretrain", "--corpus", str(empty), "--heldout", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "empty.txt" in err and "Traceback" not in err


def test_corpus_cleaning_and_the_evaluation_check(tmp_path):
    assert normalise("The Cat, sat!") == "the cat sat"
    assert is_clean("A vicious angry growl of a dog.")
    assert not is_clean("x = f(a) | b")
    assert not is_clean("Too short.")
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("demo_sts_pairs.csv", "corpus.csv", "sample_sup.csv"):
        (assets / name).write_text("sentence1,sentence2\nA man is playing a guitar.,Someone plays\n")
    (assets / "sample_unsup.txt").write_text("The stock market went up sharply today.\n")
    found, checked = evaluation_sentences(None, assets)
    assert "a man is playing a guitar" in found and "the stock market went up sharply today" in found
    assert "sample_unsup.txt" in checked
    with pytest.raises(CorpusError, match="nowhere"):
        evaluation_sentences(tmp_path / "nowhere", assets)


def test_stop_at_step_reproduces_a_run_stopped_there(corpus, tmp_path, tiny_model_dir):
    events = pretrain(*corpus, tmp_path / "a", PretrainConfig(**TINY),
                      PretrainRun(str(tiny_model_dir), report_every=1, eval_every=100, stop_at_step=4))
    assert [e.step for e in events] == [1, 2, 3, 4]
    _run(corpus, tmp_path / "b", tiny_model_dir, stop_after=4)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_on_a_changed_corpus_is_refused_naming_it(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "a", tiny_model_dir, stop_after=1)
    corpus[0].write_text("\n".join(reversed(SENTENCES * 2)) + "\n", encoding="utf-8")
    with pytest.raises(PretrainError, match="another corpus file"):
        _run(corpus, tmp_path / "a", tiny_model_dir)


def test_init_from_starts_from_those_weights_and_refuses_another_size(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "first", tiny_model_dir, stop_after=6)
    start = _weights(tmp_path / "first")
    events = pretrain(*corpus, tmp_path / "next", PretrainConfig(**{**TINY, "lr": 1e-6}),
                      PretrainRun(str(tiny_model_dir), init_from=tmp_path / "first" / "model", stop_at_step=1))
    list(events)
    continued = _weights(tmp_path / "next")
    assert all(torch.allclose(start[k], continued[k], atol=1e-4) for k in start if "embeddings" in k)
    with pytest.raises(PretrainError, match="another size or vocabulary"):
        next(pretrain(*corpus, tmp_path / "other", PretrainConfig(**{**TINY, "hidden": 32, "heads": 2}),
                      PretrainRun(str(tiny_model_dir), init_from=tmp_path / "first" / "model")))
    with pytest.raises(PretrainError, match="init-from"):  # resuming it without its starting weights
        next(pretrain(*corpus, tmp_path / "next", PretrainConfig(**{**TINY, "lr": 1e-6}),
                      PretrainRun(str(tiny_model_dir))))


def test_bf16_precision_trains_and_an_unknown_precision_names_the_field(corpus, tmp_path, tiny_model_dir):
    _run(corpus, tmp_path / "bf16", tiny_model_dir, precision="bf16")
    assert all(torch.isfinite(v.float()).all() for v in _weights(tmp_path / "bf16").values())
    with pytest.raises(PretrainError, match="precision"):
        PretrainConfig(precision="fp8")


def test_dictionary_and_fortune_readers_strip_markup(tmp_path):
    import gzip

    from simcse_core.pretraining.corpus import dictd_sentences, fortune_sentences

    entry = ('Affect \\Af*fect"\\, v. t. [L. affectus.]\n   1. To act upon; to produce an effect upon.\n'
             "   [1913 Webster]\n\n            The climate affected their health and spirits.\n"
             "                                                  --Macaulay.\n      [1913 Webster]\n")
    (tmp_path / "gcide.dict.dz").write_bytes(gzip.compress(entry.encode()))
    assert list(dictd_sentences("gcide", tmp_path)) == ["The climate affected their health and spirits."]
    (tmp_path / "fortunes").write_text("A banker lends you an umbrella when the sun shines.\n\t\t-- Mark Twain\n%\n"
                                       "Second saying here.\n")
    assert list(fortune_sentences(tmp_path)) == ["A banker lends you an umbrella when the sun shines.",
                                                 "Second saying here."]
    with pytest.raises(CorpusError, match="dict-foldoc"):
        list(dictd_sentences("foldoc", tmp_path / "nowhere"))


def test_ship_encoder_writes_bf16_shards_that_load_back_in_fp32(tiny_encoder, tmp_path):
    from simcse_core.model.loading import load_encoder
    from simcse_core.teaching.prepared import ship_encoder

    files = ship_encoder(tiny_encoder, tmp_path / "shipped", max_shard_mb=9)
    assert all(f.stat().st_size <= 9_000_000 for f in files)
    loaded = load_encoder(str(tmp_path / "shipped"))
    assert next(loaded.model.parameters()).dtype == torch.float32
    before, after = tiny_encoder.encode(["the man plays the guitar"]), loaded.encode(["the man plays the guitar"])
    assert abs(float((before * after).sum())) > 0.99  # bf16 rounding only


def test_model_md_prints_the_shipped_recipe_and_the_files_fit_a_space():
    from simcse_core.pretraining.shipped import commands

    folder = Path(__file__).resolve().parents[1] / "models" / "raw-bert"
    text = (folder / "MODEL.md").read_text()
    assert all(line in text for line in commands())
    assert all(f.stat().st_size <= 9_000_000 for f in folder.iterdir())

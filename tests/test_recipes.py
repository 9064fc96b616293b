"""Recipes, checkpoints and resuming: a resumed run equals one that never stopped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from simcse_core.cli import main
from simcse_core.model.loading import load_encoder
from simcse_core.training.checkpoint import CHECKPOINT_DIR, check_same_run, load_checkpoint, save_checkpoint
from simcse_core.training.recipes import RECIPES, get_recipe, recipe_data
from simcse_core.training.train import TrainConfig, train

SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
    "a red car drives on the road", "the bird sings in the rain", "they play football with a ball",
    "he drives a big blue car",
]
CONFIG = TrainConfig(steps=4, batch_size=4, lr=1e-3, dropout=0.1, pooler="cls", eval_every=0)


def _assert_same_weights(a, b) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(y, x, atol=1e-6, rtol=0, msg=name)


def test_a_resumed_run_equals_one_that_never_stopped(tiny_encoder, tmp_path):
    twin = tiny_encoder.copy()
    straight = [e.loss for e in train(tiny_encoder, SENTENCES, CONFIG)]
    for event in train(twin, SENTENCES, CONFIG):  # stop after step 2, write a checkpoint to disk
        if event.step == 2:
            save_checkpoint(tmp_path / "ckpt", twin, event.snapshot(), CONFIG)
            break
    checkpoint = load_checkpoint(tmp_path / "ckpt")
    assert checkpoint.state.step == 2 and checkpoint.config["steps"] == 4
    resumed_encoder = load_encoder(checkpoint.model_dir, device="cpu", precision="fp32")
    resumed = list(train(resumed_encoder, SENTENCES, CONFIG, resume=checkpoint.state))
    assert [e.step for e in resumed] == [2, 3, 4] and resumed[-1].done
    assert [e.loss for e in resumed[1:]] == pytest.approx(straight[3:], abs=1e-6)  # dropout masks continue
    _assert_same_weights(tiny_encoder, resumed_encoder)


def test_resuming_without_the_random_state_would_differ(tiny_encoder, tmp_path):
    """The check above can fail: the same checkpoint with a fresh random state draws other dropout masks."""
    twin = tiny_encoder.copy()
    straight = [e.loss for e in train(tiny_encoder, SENTENCES, CONFIG)]
    for event in train(twin, SENTENCES, CONFIG):
        if event.step == 2:
            state = event.snapshot()
            break
    torch.manual_seed(0)
    other = replace(state, random={**state.random, "torch": torch.get_rng_state()})
    resumed = [e.loss for e in train(twin, SENTENCES, CONFIG, resume=other)]
    assert abs(resumed[1] - straight[3]) > 1e-5


def test_resuming_with_other_settings_is_refused():
    saved = {**vars(CONFIG)}
    check_same_run(saved, replace(CONFIG, time_budget_s=10.0))  # may change
    with pytest.raises(ValueError, match="lr 0.001 -> 0.002"):
        check_same_run(saved, replace(CONFIG, lr=2e-3))


def test_cli_resume_continues_to_the_same_model(tiny_model_dir, tmp_path):
    data = tmp_path / "sentences.txt"
    data.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    common = ["train", "--model", str(tiny_model_dir), "--device", "cpu", "--precision", "fp32", "--data",
              str(data), "--steps", "4", "--batch-size", "4", "--lr", "1e-3", "--pooler", "cls",
              "--eval-set", "none", "--checkpoint-every", "2"]
    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    assert main([*common, "--out", str(tmp_path / "cut"), "--time-budget", "0.001"]) == 0  # stops after step 1
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_DIR).state.step == 1  # the end of a run is saved
    assert main([*common, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_DIR).state.step == 4
    straight = load_encoder(tmp_path / "straight", device="cpu", precision="fp32")
    _assert_same_weights(straight, load_encoder(tmp_path / "cut", device="cpu", precision="fp32"))


def test_cli_recipe_keeps_the_best_evaluation(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "wiki.txt"
    data.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    scored = tmp_path / "dev.csv"
    scored.write_text("sentence1,sentence2,score\n" + "\n".join(
        f"{a},{b},{k % 5}" for k, (a, b) in enumerate(zip(SENTENCES, SENTENCES[1:]))) + "\n", encoding="utf-8")
    code = main(["train", "--recipe", "unsup-bert", "--model", str(tiny_model_dir), "--device", "cpu",
                 "--precision", "fp32", "--data", str(data), "--eval-set", str(scored), "--batch-size", "4",
                 "--steps", "4", "--eval-every", "2", "--lr", "1e-3", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "recipe unsup-bert: 4 steps" in out and "holds the best model" in out
    best_line = [line for line in out.splitlines() if "best so far" in line][-1]
    best_step = int(best_line.split("at step ")[1].split(")")[0])
    saved = load_encoder(tmp_path / "out", device="cpu", precision="fp32")
    assert saved.config.pooler == "cls" and saved.config.mlp_only_train  # the paper's unsup pooler
    assert load_checkpoint(tmp_path / "out" / CHECKPOINT_DIR).best.step == best_step


def test_recipes_hold_the_paper_settings():
    unsup, sup = get_recipe("unsup-bert"), get_recipe("sup-bert")
    assert (unsup.model, unsup.batch_size, unsup.lr, unsup.epochs, unsup.max_length) == (
        "bert-base-uncased", 64, 3e-5, 1, 32)
    assert unsup.steps(1_000_000) == 15_625 and unsup.mlp_only_train and unsup.eval_every == 125
    assert (sup.batch_size, sup.lr, sup.epochs, sup.mlp_only_train) == (512, 5e-5, 3, False)
    assert sup.steps(275_601) == 3 * 538
    assert sup.train_config(275_601, batch_size=128).batch_size == 128  # an option overrides the recipe
    assert set(RECIPES) == {"unsup-bert", "sup-bert"}
    with pytest.raises(ValueError, match="unsup-bert"):
        get_recipe("unsup-roberta")


def test_recipe_data_reads_the_official_files(tmp_path, monkeypatch):
    nli = tmp_path / "nli_for_simcse.csv"
    nli.write_text('sent0,sent1,hard_neg\n"a man, tall",a man,a woman\nthe dog,a dog,a cat\n', encoding="utf-8")
    examples, source = recipe_data(get_recipe("sup-bert"), nli)
    assert examples == [("a man, tall", "a man", "a woman"), ("the dog", "a dog", "a cat")]
    wiki = tmp_path / "wiki1m_for_simcse.txt"
    wiki.write_text("one\n\ntwo\none\n", encoding="utf-8")
    assert recipe_data(get_recipe("unsup-bert"), wiki)[0] == ["one", "two", "one"]  # duplicates kept


def test_recipe_offline_without_data_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["train", "--recipe", "sup-bert", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--data" in err and "nli_for_simcse.csv" in err and len(err.strip().splitlines()) == 1


def test_missing_data_without_recipe_is_one_line(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "out")]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_no_checkpoint_to_resume_is_one_line(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "s.txt"
    data.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert main(["train", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(tmp_path / "x"),
                 "--resume"]) == 2
    assert "No checkpoint to resume from" in capsys.readouterr().err


def test_checkpoint_files_load_with_weights_only(tiny_encoder, tmp_path):
    for event in train(tiny_encoder, SENTENCES, replace(CONFIG, steps=1)):
        if event.done:
            folder = save_checkpoint(tmp_path / "c", tiny_encoder, event.snapshot(), CONFIG)
    state = torch.load(Path(folder) / "train_state.pt", weights_only=True)  # no pickled code in a checkpoint
    assert state["step"] == 1 and not (tmp_path / "c.tmp").exists()

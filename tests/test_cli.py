"""Tests of ``python -m simcse_core``: in process via ``main(argv)`` on the tiny model, and in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_core.cli import main
from simcse_core.model.loading import load_encoder

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
    "a red car drives on the road", "the bird sings in the rain", "they play football with a ball",
    "he drives a big blue car",
]
SCORED = [
    ("a man plays a guitar", "a man plays the piano", 4.2), ("the dog runs in the park", "a dog runs", 4.6),
    ("a cat eats food", "the stock price fell", 0.2), ("the child reads a book", "a child reads", 4.1),
    ("she cooks in the kitchen", "the boat is on the sea", 0.5), ("the bank of the river", "the river", 2.5),
    ("a red car drives on the road", "he drives a big blue car", 3.1), ("the sun is big", "it rains", 1.0),
]


def _model_options(folder: Path) -> list[str]:
    return ["--model", str(folder), "--device", "cpu", "--precision", "fp32"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    pairs = tmp_path / "pairs.csv"
    rows = "\n".join(f"{a},{b}" for a, b, _ in SCORED)
    pairs.write_text(f"anchor,positive\n{rows}\n", encoding="utf-8")
    scored = tmp_path / "scored.csv"
    scored.write_text("sentence1,sentence2,score\n" + "\n".join(f"{a},{b},{s}" for a, b, s in SCORED) + "\n",
                      encoding="utf-8")
    return {"sentences": sentences, "pairs": pairs, "scored": scored}


def _assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    assert fragment in lines[0]


def _subprocess(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "simcse_core", *argv], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


# ---- help and errors -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_module_help_lists_the_four_commands():
    done = _subprocess("--help")
    assert done.returncode == 0, done.stderr
    for command in ("eval", "train", "encode", "search"):
        assert command in done.stdout


@pytest.mark.parametrize(("command", "option"), [
    ("eval", "--sets"), ("train", "--hard-negative-weight"), ("encode", "--input"), ("search", "--top-k")])
def test_each_command_has_help(capsys, command, option):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert option in capsys.readouterr().out


@pytest.mark.slow
def test_a_missing_file_is_one_line_on_stderr_and_exit_2_in_a_subprocess(tiny_model_dir, tmp_path):
    done = _subprocess("encode", *_model_options(tiny_model_dir), "--input", str(tmp_path / "nothere.txt"),
                       "--out", str(tmp_path / "v.npy"))
    _assert_one_line_error(done.returncode, done.stderr, "nothere.txt")
    assert done.stdout == ""


def test_a_missing_model_is_a_friendly_error(capsys, files, tmp_path):
    code = main(["eval", "--model", str(tmp_path / "no-model"), "--sets", str(files["scored"])])
    _assert_one_line_error(code, capsys.readouterr().err, "no-model")


def test_an_unknown_set_is_a_friendly_error(capsys, tiny_model_dir):
    code = main(["eval", *_model_options(tiny_model_dir), "--sets", "stsb-validation"])
    _assert_one_line_error(code, capsys.readouterr().err, "stsb-validation")
    code = main(["eval", *_model_options(tiny_model_dir), "--sets", "mystery"])
    _assert_one_line_error(code, capsys.readouterr().err, "Unknown evaluation set")


# ---- eval -----------------------------------------------------------------------------------------------

def test_eval_prints_the_metrics_of_each_set(capsys, tiny_model_dir, files):
    code = main(["eval", *_model_options(tiny_model_dir), "--pooler", "mean", "--sets", str(files["scored"])])
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("scored.csv"))
    _, pairs, spearman, align, *_ = row.split()
    encoder = load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")
    a = encoder.encode([s1 for s1, _, _ in SCORED])
    b = encoder.encode([s2 for _, s2, _ in SCORED])
    cosines = (a * b).sum(axis=1)
    expected = spearmanr(cosines, [s for *_, s in SCORED]).statistic * 100
    assert int(pairs) == len(SCORED)
    assert float(spearman) == pytest.approx(expected, abs=0.006)
    positive = [i for i, (*_, s) in enumerate(SCORED) if s > 4]
    expected_align = np.mean([np.sum((a[i] - b[i]) ** 2) for i in positive])
    assert float(align) == pytest.approx(expected_align, abs=6e-4)


# ---- train ----------------------------------------------------------------------------------------------

def test_train_prints_steps_and_saves_a_model_that_reloads(capsys, tiny_model_dir, files, tmp_path):
    out_dir = tmp_path / "trained"
    code = main(["train", *_model_options(tiny_model_dir), "--data", str(files["sentences"]), "--steps", "5",
                 "--batch-size", "4", "--lr", "1e-3", "--pooler", "avg_first_last", "--eval-set",
                 str(files["scored"]), "--eval-every", "2", "--log-every", "2", "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0
    steps = [line.split()[1] for line in out.splitlines() if line.startswith("step ")]
    assert steps == ["0/5", "2/5", "4/5", "5/5"]  # every 2nd step, and the last
    assert "unsupervised" in out and "Before -> after" in out and str(out_dir) in out
    trained = load_encoder(out_dir, device="cpu", precision="fp32")
    base = load_encoder(tiny_model_dir, pooler="avg_first_last", device="cpu", precision="fp32")
    assert trained.pooler.name == "avg_first_last"
    assert not np.allclose(trained.encode(SENTENCES), base.encode(SENTENCES), atol=1e-4)


def test_train_on_pairs_is_supervised_and_unsup_mode_uses_their_sentences(capsys, tiny_model_dir, files,
                                                                           tmp_path):
    common = [*_model_options(tiny_model_dir), "--data", str(files["pairs"]), "--steps", "2",
              "--batch-size", "4", "--eval-set", "none"]
    assert main(["train", *common, "--out", str(tmp_path / "sup")]) == 0
    assert "pairs (supervised)" in capsys.readouterr().out
    assert main(["train", *common, "--mode", "unsup", "--out", str(tmp_path / "unsup")]) == 0
    distinct = len({s for a, b, _ in SCORED for s in (a, b)})
    assert f"the {distinct} distinct sentences" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--mode", "sup"], "--mode sup"),
    (["--temperature", "0"], "temperature"),
    (["--batch-size", "1"], "batch_size"),
    (["--log-every", "0"], "--log-every"),
])
def test_train_refuses_bad_settings_in_one_line(capsys, tiny_model_dir, files, tmp_path, extra, fragment):
    code = main(["train", *_model_options(tiny_model_dir), "--data", str(files["sentences"]), "--eval-set",
                 "none", "--out", str(tmp_path / "out"), *extra])
    _assert_one_line_error(code, capsys.readouterr().err, fragment)
    assert not (tmp_path / "out").exists()


def test_train_refuses_a_bad_file_and_a_used_folder(capsys, tiny_model_dir, files, tmp_path):
    word = tmp_path / "notes.docx"
    word.write_bytes(b"PK\x03\x04")
    code = main(["train", *_model_options(tiny_model_dir), "--data", str(word), "--out", str(tmp_path / "o")])
    _assert_one_line_error(code, capsys.readouterr().err, "notes.docx")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine", encoding="utf-8")
    code = main(["train", *_model_options(tiny_model_dir), "--data", str(files["sentences"]),
                 "--out", str(used)])
    _assert_one_line_error(code, capsys.readouterr().err, "--overwrite")
    assert (used / "keep.txt").read_text(encoding="utf-8") == "mine"


# ---- encode and search ----------------------------------------------------------------------------------

def test_encode_writes_the_vectors_of_the_file_in_order(capsys, tiny_model_dir, files, tmp_path):
    code = main(["encode", *_model_options(tiny_model_dir), "--input", str(files["sentences"]), "--out",
                 str(tmp_path / "vectors"), "--sentences-out", str(tmp_path / "rows.txt")])
    assert code == 0
    assert "12 x 32" in capsys.readouterr().out
    vectors = np.load(tmp_path / "vectors.npy")
    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32")
    np.testing.assert_allclose(vectors, encoder.encode(SENTENCES), atol=1e-6)
    assert (tmp_path / "rows.txt").read_text(encoding="utf-8").splitlines() == SENTENCES


def test_search_prints_the_brute_force_nearest_sentences(capsys, tiny_model_dir, files):
    queries = ["a dog runs in the park", "the price of stock"]
    code = main(["search", *_model_options(tiny_model_dir), "--corpus", str(files["sentences"]),
                 "--query", queries[0], "--query", queries[1], "--top-k", "3", "--index", "numpy"])
    out = capsys.readouterr().out
    assert code == 0
    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32")
    corpus = encoder.encode(SENTENCES)
    blocks = out.split("Query: ")[1:]
    assert len(blocks) == 2
    for query, block in zip(queries, blocks):
        lines = block.strip().splitlines()
        assert lines[0] == query
        scores = encoder.encode([query])[0] @ corpus.T  # (N,) brute force
        for rank, line in enumerate(lines[1:]):
            number, score, sentence = line.split(maxsplit=2)
            assert number == f"{rank + 1}."
            assert float(score) == pytest.approx(np.sort(scores)[::-1][rank], abs=1e-4)
            assert float(score) == pytest.approx(scores[SENTENCES.index(sentence)], abs=1e-4)
        assert len(lines) == 4

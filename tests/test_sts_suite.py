"""The paper's STS suite (Table 5 row) on small local files in the hub layout, against a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_core.cli import main
from simcse_core.evaluation import sts_suite
from simcse_core.evaluation.sets import EvaluationDataUnavailable
from simcse_core.model.loading import load_encoder

WORDS = "man woman dog cat plays runs eats reads guitar piano park food book car road river".split()


def _pairs(seed: int, n: int = 12) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    return [(" ".join(rng.choice(WORDS, 4)), " ".join(rng.choice(WORDS, 4)), float(rng.integers(0, 51)) / 10)
            for _ in range(n)]


@pytest.fixture
def sts_dir(tmp_path: Path) -> Path:
    """One file per task, as a copy of the hub sets would be saved: csv, tsv or jsonl with named columns."""
    for k, task in enumerate(sts_suite.ALL_TASKS):
        rows = _pairs(k)
        if k % 3 == 0:
            lines = ["sentence1,sentence2,score"] + [f"{a},{b},{s}" for a, b, s in rows]
            (tmp_path / f"{task}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        elif k % 3 == 1:
            lines = ["sentence1\tsentence2\tscore"] + [f"{a}\t{b}\t{s}" for a, b, s in rows]
            (tmp_path / f"{task}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            lines = [json.dumps({"sentence1": a, "sentence2": b, "score": s}) for a, b, s in rows]
            (tmp_path / f"{task}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _direct_spearman(encoder, rows) -> float:
    first = encoder.encode([a for a, _, _ in rows], normalize=False, token_limit=128)  # (N, D)
    second = encoder.encode([b for _, b, _ in rows], normalize=False, token_limit=128)  # (N, D)
    cosines = (first * second).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    return 100 * spearmanr(cosines, [s for _, _, s in rows]).statistic


def test_suite_scores_each_task_over_all_its_pairs(tiny_encoder, sts_dir):
    sets = sts_suite.load_tasks(sts_suite.ALL_TASKS, sts_dir)
    result = sts_suite.evaluate_suite(tiny_encoder, sets)
    assert list(result.scores) == list(sts_suite.ALL_TASKS)
    for k, task in enumerate(sts_suite.ALL_TASKS):
        assert result.sizes[task] == 12
        assert result.scores[task] == pytest.approx(_direct_spearman(tiny_encoder, _pairs(k)), abs=1e-3)
    assert result.average == pytest.approx(np.mean(list(result.scores.values())))
    assert len({round(v, 3) for v in result.scores.values()}) > 1  # the sets differ, so do the scores


def test_cli_prints_a_table5_row(tiny_model_dir, sts_dir, capsys):
    code = main(["eval", "--model", str(tiny_model_dir), "--device", "cpu", "--precision", "fp32",
                 "--tasks", "sts12,stsb,sickr", "--data-dir", str(sts_dir)])
    out = capsys.readouterr().out
    assert code == 0
    header, _, row, *reference = out.splitlines()
    assert header.split()[1:] == ["STS12", "STS-B", "SICK-R", "Avg."]
    encoder = load_encoder(tiny_model_dir, device="cpu", precision="fp32")
    expected = [_direct_spearman(encoder, _pairs(k)) for k in (0, 5, 6)]
    printed = [float(x) for x in row.split()[-4:]]
    assert printed == pytest.approx([*expected, np.mean(expected)], abs=0.011)
    assert "Unsup-SimCSE-BERT-base (paper)" in out and "76.25" not in out  # 3 of 7 tasks: no paper average
    assert "not measured here" in out


def test_a_missing_set_is_one_line_naming_the_file(tiny_model_dir, tmp_path, capsys):
    code = main(["eval", "--model", str(tiny_model_dir), "--tasks", "sts13", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "sts13.csv" in err and len(err.strip().splitlines()) == 1


def test_offline_without_local_files_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EvaluationDataUnavailable, match="--data-dir"):
        sts_suite.load_task("sts12")


def test_task_names_are_checked():
    assert sts_suite.parse_tasks("all") == list(sts_suite.ALL_TASKS)
    assert sts_suite.parse_tasks(" STS12, stsb,sts12") == ["sts12", "stsb"]
    with pytest.raises(ValueError, match="sts17"):
        sts_suite.parse_tasks("sts12,sts17")
    with pytest.raises(ValueError, match="none given"):
        sts_suite.parse_tasks(" , ")


def test_paper_rows_average_to_the_published_figures():
    averages = {name: np.mean(list(row.values())) for name, row in sts_suite.PAPER_TABLE5.items()}
    assert averages["Unsup-SimCSE-BERT-base (paper)"] == pytest.approx(76.25, abs=0.005)
    assert averages["Sup-SimCSE-BERT-base (paper)"] == pytest.approx(81.57, abs=0.005)

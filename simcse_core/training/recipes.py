"""The paper's two BERT-base runs as recipes: ``python -m simcse_core train --recipe unsup-bert|sup-bert``.

Settings from the paper (Gao, Yao & Chen, 2021, Section 3-4 and Appendix A): bert-base-uncased, the [CLS]
pooler with an MLP head (in training only for the unsupervised run), temperature 0.05, dropout 0.1, batch size
and learning rate of Table A.1, the best checkpoint on STS-B dev kept (the paper evaluates every 250 steps).
From the official scripts ``run_unsup_example.sh`` / ``run_sup_example.sh`` alone (the paper's text does not
give them): max length 32, AdamW with a linear decay and no warmup, and an evaluation every 125 steps, which
these recipes follow.

Data: the official files of the hub dataset ``princeton-nlp/datasets-for-simcse`` (``wiki1m_for_simcse.txt``,
1M Wikipedia sentences; ``nli_for_simcse.csv``, 275,601 SNLI+MNLI triplets ``sent0, sent1, hard_neg`` — the
paper counts its NLI set as 314k pairs, Section 6.1), read
from the hub when online, or from a local copy given with ``--data``.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from simcse_core.data import DataError, DataLimits, load_training_data
from simcse_core.model.catalogue import hub_offline
from simcse_core.model.pooling import PoolerName
from simcse_core.training.config import TrainConfig, TrainMode, setting_default

logger = logging.getLogger(__name__)

HUB_DATASET = "princeton-nlp/datasets-for-simcse"
# Big enough for the official files (1M lines; 275k triplets), unlike the app's upload caps.
RECIPE_LIMITS = DataLimits(max_rows=5_000_000, max_chars=20_000, max_bytes=2_000_000_000)


@dataclass(frozen=True)
class Recipe:
    """One of the paper's training runs."""

    name: str  # as typed after --recipe
    summary: str  # one line for --help and the log
    model: str  # hub id of the starting checkpoint
    pooler: PoolerName  # "cls": [CLS] through an MLP head (dense + tanh)
    mlp_only_train: bool  # the MLP in training only, raw [CLS] at test time (the paper's unsup setting)
    data_file: str  # file name in HUB_DATASET
    mode: TrainMode
    batch_size: int  # the global batch (split over processes when distributed)
    lr: float
    epochs: int
    paper_row: str  # its row in simcse_core.evaluation.sts_suite.PAPER_TABLE5
    paper_average: float  # the paper's STS average (Table 5), not measured here
    # The paper's values of these are TrainConfig's defaults (simcse_core.training.config).
    max_length: int = setting_default("max_length")  # the training length
    temperature: float = setting_default("temperature")
    dropout: float = setting_default("dropout")
    hard_negative_weight: float = setting_default("hard_negative_weight")  # α = 1: the official 0 (log α)
    eval_every: int = 125  # STS-B dev every 125 steps (the official scripts' --eval_steps)

    def steps(self, n_examples: int) -> int:
        """Optimizer steps of ``epochs`` passes over ``n_examples`` (each epoch's short remainder dropped)."""
        return self.epochs * max(1, n_examples // self.batch_size)

    def train_config(self, n_examples: int, **changes) -> TrainConfig:
        """The recipe's TrainConfig for a data set of ``n_examples``; ``changes`` override single fields."""
        config = TrainConfig(
            mode=self.mode, steps=self.steps(n_examples), batch_size=self.batch_size, lr=self.lr,
            temperature=self.temperature, dropout=self.dropout, max_length=self.max_length, pooler=self.pooler,
            mlp_only_train=self.mlp_only_train, hard_negative_weight=self.hard_negative_weight,
            eval_every=self.eval_every)
        return replace(config, **changes)


RECIPES: dict[str, Recipe] = {
    "unsup-bert": Recipe(
        name="unsup-bert", summary="unsupervised SimCSE, BERT-base on 1M Wikipedia sentences (paper: STS avg 76.25)",
        model="bert-base-uncased", pooler="cls", mlp_only_train=True, data_file="wiki1m_for_simcse.txt",
        mode="unsup", batch_size=64, lr=3e-5, epochs=1, paper_row="Unsup-SimCSE-BERT-base (paper)",
        paper_average=76.25),
    "sup-bert": Recipe(
        name="sup-bert", summary="supervised SimCSE, BERT-base on SNLI+MNLI triplets (paper: STS avg 81.57)",
        model="bert-base-uncased", pooler="cls", mlp_only_train=False, data_file="nli_for_simcse.csv",
        mode="sup", batch_size=512, lr=5e-5, epochs=3, paper_row="Sup-SimCSE-BERT-base (paper)",
        paper_average=81.57),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: no such recipe.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.") from None


def recipe_data(recipe: Recipe, path: str | os.PathLike[str] | None = None) -> tuple[list, str]:
    """The recipe's training examples and where they were read from.

    ``path``: a local copy (the official ``.txt`` / ``.csv``, or any file ``load_training_data`` reads);
    ``None``: the official file from the hub (needs a connection the first time, then the hub cache).

    Raises:
        DataError: the file does not fit the recipe, or it is not local and the hub cannot be reached.
    """
    if path is None:
        path = _download(recipe)
    path = Path(path).expanduser()
    if path.suffix == ".txt" and recipe.mode == "unsup":
        examples = _read_lines(path)  # every line, duplicates kept, as the official trainer reads it
    elif path.suffix == ".csv" and _header(path)[:3] == ["sent0", "sent1", "hard_neg"]:
        examples = _read_nli(path)
    else:
        data = load_training_data(path, RECIPE_LIMITS)
        if data.mode != recipe.mode:
            raise DataError(f"{path.name} holds {data.kind}, but the {recipe.name} recipe trains on "
                            f"{'sentences' if recipe.mode == 'unsup' else 'pairs or triplets'}.")
        examples = data.examples
    if len(examples) < recipe.batch_size:
        logger.warning("%s has %d examples, fewer than the recipe's batch of %d.", path.name, len(examples),
                       recipe.batch_size)
    return examples, str(path)


def _download(recipe: Recipe) -> str:
    if hub_offline():
        raise DataError(f"The {recipe.name} recipe trains on {recipe.data_file} from the hub dataset "
                        f"{HUB_DATASET}, and this machine is offline (HF_HUB_OFFLINE). Download it once, then "
                        f"pass it with --data.")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(HUB_DATASET, recipe.data_file, repo_type="dataset")
    except (OSError, EntryNotFoundError) as err:  # the hub's connection and HTTP errors derive from OSError
        raise DataError(f"Cannot download {recipe.data_file} from {HUB_DATASET} ({type(err).__name__}); "
                        "pass a local copy with --data.") from err


def _read_lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [cell.strip().lower() for cell in next(csv.reader(f), [])]


def _read_nli(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)  # the header
        triplets = [tuple(cell.strip() for cell in row[:3]) for row in rows if len(row) >= 3]
    return [t for t in triplets if all(t)]

"""A run's folder on disk: the best model kept as training goes, and checkpoints to resume from.

Layout of ``OUT`` (``python -m simcse_core train --out OUT``)::

    OUT/                      the trained model (the best evaluation's with --keep-best, else the last step's)
    OUT/checkpoint/model/     the weights at the last checkpoint (an Encoder.save folder)
    OUT/checkpoint/train_state.pt   optimizer, schedule, loss scaler, step, random state (torch.load-safe)
    OUT/checkpoint/progress.json    the TrainConfig of the run and the best evaluation so far

A checkpoint is written to ``checkpoint.tmp`` and then renamed, so a run killed while saving leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from simcse_core.training.train import TrainConfig, TrainEvent, TrainState

if TYPE_CHECKING:
    from simcse_core.model.encoder import Encoder

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "train_state.pt"
PROGRESS_NAME = "progress.json"
# Settings that may change between a run and its resumption (none changes the maths); others are refused.
_MAY_CHANGE = ("time_budget_s", "eval_every", "mini_batch_size")


@dataclass(frozen=True)
class Best:
    """The best evaluation of a run so far."""

    spearman: float
    step: int


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back from disk."""

    model_dir: Path  # load the encoder from here
    state: TrainState
    config: dict  # the TrainConfig fields of the run that wrote it
    best: Best | None


def save_checkpoint(folder: str | os.PathLike[str], encoder: Encoder, state: TrainState, config: TrainConfig,
                    best: Best | None = None) -> Path:
    """Write ``encoder`` and ``state`` to ``folder`` (replacing an older checkpoint there only once complete)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    encoder.save(tmp / "model")
    torch.save(_to_safe(state), tmp / STATE_NAME)
    progress = {"step": state.step, "config": asdict(config), "best": asdict(best) if best else None}
    (tmp / PROGRESS_NAME).write_text(json.dumps(progress, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    logger.info("Checkpoint at step %d saved to %s", state.step, folder)
    return folder


def load_checkpoint(folder: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: there is no complete checkpoint in ``folder``.
    """
    folder = Path(folder)
    if not (folder / STATE_NAME).is_file() or not (folder / PROGRESS_NAME).is_file():
        raise FileNotFoundError(f"No checkpoint to resume from in {folder} (expected {STATE_NAME} and "
                                f"{PROGRESS_NAME}; a run writes them with --checkpoint-every).")
    progress = json.loads((folder / PROGRESS_NAME).read_text(encoding="utf-8"))
    state = _from_safe(torch.load(folder / STATE_NAME, weights_only=True))
    best = Best(**progress["best"]) if progress.get("best") else None
    return Checkpoint(folder / "model", state, progress["config"], best)


def check_same_run(saved: dict, config: TrainConfig) -> None:
    """Refuse to resume with other settings than the run had (except time budget, eval_every, mini-batch).

    Raises:
        ValueError: naming each setting that differs.
    """
    now = asdict(config)
    changed = [f"{name} {saved.get(name)!r} -> {now[name]!r}" for name in now
               if name not in _MAY_CHANGE and saved.get(name) != now[name]]
    if changed:
        raise ValueError("The checkpoint was written by a run with other settings (" + "; ".join(changed) +
                         "); resume with the same settings, or start a new run in another --out folder.")


class RunKeeper:
    """Writes a run's folder while it trains: the best model by Spearman, and periodic checkpoints.

    Feed it every event with :meth:`observe`; call :meth:`finish` after the last. With ``keep_best`` the
    model in ``out`` is the one of the best evaluation (the paper keeps the best STS-B dev checkpoint), saved
    as soon as it appears, so a run that dies still leaves it.
    """

    def __init__(self, out: Path, config: TrainConfig, keep_best: bool, checkpoint_every: int,
                 best: Best | None = None) -> None:
        self.out = out
        self.config = config
        self.keep_best = keep_best
        self.checkpoint_every = checkpoint_every
        self.best = best

    def observe(self, encoder: Encoder, event: TrainEvent) -> list[str]:
        """Save what is due after ``event``; returns one line per thing saved."""
        said = []
        spearman = (event.metrics or {}).get("spearman")
        if self.keep_best and spearman is not None and (self.best is None or spearman > self.best.spearman):
            self.best = Best(spearman=float(spearman), step=event.step)
            encoder.save(self.out)
            said.append(f"  best so far (Spearman {spearman:.2f} at step {event.step}): saved to {self.out}")
        due = self.checkpoint_every > 0 and event.step > 0 and (
            event.step % self.checkpoint_every == 0 or event.done)
        if due and event.snapshot is not None:
            folder = save_checkpoint(self.out / CHECKPOINT_DIR, encoder, event.snapshot(), self.config, self.best)
            said.append(f"  checkpoint at step {event.step}: {folder}")
        return said

    def finish(self, encoder: Encoder) -> str:
        """Save the last model unless the best one is kept; a line saying what ``out`` holds."""
        if self.keep_best and self.best is not None:
            return f"{self.out} holds the best model: Spearman {self.best.spearman:.2f} at step {self.best.step}"
        encoder.save(self.out)
        return f"{self.out} holds the model after the last step"


def _to_safe(state: TrainState) -> dict:
    """The state as plain containers and tensors, which ``torch.load(weights_only=True)`` accepts."""
    out = {f.name: getattr(state, f.name) for f in fields(TrainState)}  # no copies of the tensors
    kind, keys, pos, has_gauss, cached = state.random["numpy"]
    out["random"] = {**state.random, "numpy": [kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), pos,
                                               has_gauss, cached]}
    return out


def _from_safe(data: dict) -> TrainState:
    kind, keys, pos, has_gauss, cached = data["random"]["numpy"]
    random_state = {**data["random"], "numpy": (kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached)}
    python = random_state["python"]
    random_state["python"] = (python[0], tuple(python[1]), python[2])
    values = {f.name: data[f.name] for f in fields(TrainState)}
    return TrainState(**{**values, "random": random_state})

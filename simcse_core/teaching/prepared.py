"""The prepared run: the lesson's recipe trained longer, shipped as ``models/raw-bert-simcse``.

A live lesson run lasts about a minute; the prepared run is the same recipe (pooler, batch, temperature, dropout,
training length, seed, the same 20,000 lesson sentences) for :data:`PREPARED_STEPS` steps — at most 15 minutes
on two idle cores — at the learning rate and schedule measured for that length (``lessons.PREPARED``), so a class
sees where the one-minute run is heading. The last step's weights are kept (no checkpoint is picked on an STS set).

    python -m simcse_core prepare-lesson-model            # writes models/raw-bert-simcse

The weights are stored in bf16, in shards of at most 9 MB (a Hugging Face Space accepts them without Git LFS),
and load in fp32.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from simcse_core.model.catalogue import PREPARED_MODEL, SHIPPED_MODELS
from simcse_core.teaching import lessons

logger = logging.getLogger(__name__)

PREPARED_DIR = SHIPPED_MODELS[PREPARED_MODEL]
PREPARED_STEPS = 4_000  # about 14 minutes of training steps on two idle cores (see MODEL.md)
PREPARED_RUN = replace(lessons.LESSON_RUN, steps=PREPARED_STEPS, lr=lessons.PREPARED.lr, eval_every=500,
                       decay_fraction=lessons.PREPARED.decay_fraction, adam_beta2=lessons.PREPARED.adam_beta2)
MAX_SHARD_MB = 9


def prepare(out_dir: Path = PREPARED_DIR, say: Callable[[str], None] = logger.info) -> dict:
    """Train the prepared run from the raw model and ship it to ``out_dir``; returns what it measured."""
    from simcse_core.evaluation.sets import default_eval_pairs
    from simcse_core.model.loading import load_encoder
    from simcse_core.training.train import train

    encoder = load_encoder(lessons.START_MODEL, pooler=lessons.START_POOLER)
    sentences = list(lessons.lesson_sentences())
    eval_pairs = default_eval_pairs()
    history = []
    wall = time.perf_counter()
    last = None
    for last in train(encoder, sentences, PREPARED_RUN, eval_pairs=eval_pairs):
        if last.metrics is not None:
            history.append({"step": last.step, "spearman": round(last.metrics["spearman"], 2)})
            say(f"step {last.step}: {eval_pairs.name} Spearman {last.metrics['spearman']:.2f}")
    facts = {"steps": last.step, "train_s": round(last.train_s, 1), "wall_s": round(time.perf_counter() - wall, 1),
             "eval_set": eval_pairs.name, "history": history}
    ship_encoder(encoder, out_dir)
    (out_dir / "training.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return facts


def ship_encoder(encoder, out_dir: Path, max_shard_mb: int = MAX_SHARD_MB) -> list[Path]:
    """Save ``encoder`` with bf16 weights in shards of at most ``max_shard_mb`` MB (loaded back in fp32)."""
    import torch
    from transformers import AutoModel

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("model*.safetensors*"):
        old.unlink()
    encoder.save(out_dir)
    model = AutoModel.from_pretrained(out_dir, dtype=torch.float32).to(torch.bfloat16)
    for old in out_dir.glob("model*.safetensors*"):
        old.unlink()
    model.save_pretrained(out_dir, max_shard_size=f"{max_shard_mb}MB")
    config_path = out_dir / "config.json"  # stored in bf16, loaded in fp32: training needs fp32 weights
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    too_big = [p.name for p in files if p.stat().st_size > max_shard_mb * 1_000_000]
    if too_big:
        raise ValueError(f"{', '.join(too_big)} exceed {max_shard_mb} MB: one tensor is larger than a shard.")
    return files

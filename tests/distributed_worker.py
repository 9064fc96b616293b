"""One of the training processes that tests/test_distributed.py starts, as torchrun would (RANK, WORLD_SIZE, ...).

Usage: python tests/distributed_worker.py MODEL_DIR DATA_FILE OUT_DIR

1. For each case of ``CASES``: the loss and the parameter gradients of one step of the real trainer step
   (``simcse_core.training.train._step``, DDP + gathered vectors), saved to ``OUT_DIR/grads-rank{R}.pt``.
2. ``python -m simcse_core train`` for 2 steps on DATA_FILE, saving to ``OUT_DIR/cli-model`` (rank 0 only).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from simcse_core.cli import main
from simcse_core.model.loading import load_encoder
from simcse_core.training import distributed
from simcse_core.training.train import TrainConfig, _Embedder, _prepare_encoder, _step

SENTENCES = [
    "a man plays a guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats food",
    "the child reads a book", "she cooks in the kitchen", "the stock price fell", "the bank of the river",
]
TRIPLETS = [(a, SENTENCES[(i + 1) % 8], SENTENCES[(i + 3) % 8]) for i, a in enumerate(SENTENCES)]
BASE = TrainConfig(steps=1, batch_size=8, lr=1e-3, dropout=0.0, pooler="cls", mlp_only_train=False,
                   max_grad_norm=0.0, eval_every=0)
# name -> (config, global batch); the test replays the same cases in one process.
CASES = {
    "unsup": (BASE, SENTENCES),
    "sup": (replace(BASE, mode="sup", hard_negative_weight=2.0), TRIPLETS),
    "unsup-cached": (replace(BASE, mini_batch_size=3), SENTENCES),
}


def step_gradients(model_dir: str, config: TrainConfig, batch: list, processes: distributed.Processes):
    """(loss, {parameter name: gradient}) of one trainer step on this process's shard of ``batch``."""
    torch.manual_seed(0)
    encoder = load_encoder(model_dir, device="cpu", precision="fp32")
    _prepare_encoder(encoder, config)
    embedder = processes.wrap(_Embedder(encoder, config))
    frozen = torch.optim.SGD(encoder.parameters(), lr=0.0)  # the step leaves the gradients in .grad
    encoder.train()
    loss = _step(encoder, embedder, processes.shard(batch), config, frozen, processes)
    return loss, {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}


if __name__ == "__main__":
    model_dir, data_file, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    processes = distributed.start("cpu")
    assert processes.world_size == int(os.environ["WORLD_SIZE"]) > 1
    results = {name: step_gradients(model_dir, config, batch, processes) for name, (config, batch) in CASES.items()}
    torch.save(results, out / f"grads-rank{processes.rank}.pt")
    code = main(["train", "--model", model_dir, "--device", "cpu", "--precision", "fp32", "--data", data_file,
                 "--out", str(out / "cli-model"), "--steps", "2", "--batch-size", "8", "--lr", "1e-3",
                 "--dropout", "0", "--pooler", "cls", "--eval-set", "none"])
    sys.exit(code)

"""Large batches in small memory: peak memory and step time of GradCache (mini_batch_size) vs the plain step.

Each configuration runs in a fresh process (peak resident memory only grows): load the bundled all-MiniLM-L6-v2
(fp32, mean pooling), make one warm-up step and then ``--steps`` timed steps of unsupervised SimCSE on STS-B
train sentences (batch ``--batch``, max length 32), and report the growth of the peak resident set size
(``ru_maxrss``) over the loaded model, i.e. what the training step itself needs, and the median step time.
The loss is the same either way (tests/test_cached_loss.py proves the gradients equal); what changes is how many
activations are alive at once: all 2B rows' for the plain step, 2m rows' with mini-batches of m.
Run ``python -m bench.cached_loss_memory --help``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys

from bench.common import REPO, Target, load_stsb_split, make_parser, ratio, report, setup

NAME = "cached_loss_memory"


def _child(batch: int, mini_batch: int | None, steps: int) -> dict:
    """One configuration, in this process: peak memory growth (MiB) and median step seconds."""
    from simcse_core import load_encoder
    from simcse_core.training.train import TrainConfig, train

    sentences = load_stsb_split("train").sentences()
    encoder = load_encoder("minilm", pooler="mean", device="cpu", precision="fp32")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    config = TrainConfig(steps=steps + 1, batch_size=batch, mini_batch_size=mini_batch, eval_every=0)
    events = list(train(encoder, sentences, config))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step_times = [b.train_s - a.train_s for a, b in zip(events[1:], events[2:])]  # the warm-up step dropped
    return {"peak_growth_mib": peak - base, "step_s": statistics.median(step_times),
            "first_loss": events[1].loss}


def _run(batch: int, mini_batch: int | None, steps: int, threads: int | None) -> dict:
    code = (f"import json; from bench.cached_loss_memory import _child; from bench.common import setup; "
            f"import argparse; setup(argparse.Namespace(threads={threads!r})); "
            f"print('RESULT', json.dumps(_child({batch}, {mini_batch!r}, {steps})))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=3600, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 256; quick 64)")
    parser.add_argument("--mini-batch", type=int, default=None, help="GradCache mini-batch (default 32; quick 16)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 3; quick 1)")
    args = parser.parse_args()
    setup(args)
    batch = args.batch or (64 if args.quick else 256)
    mini = args.mini_batch or (16 if args.quick else 32)
    steps = args.steps or (1 if args.quick else 3)
    plain = _run(batch, None, steps, args.threads)
    cached = _run(batch, mini, steps, args.threads)
    rows = [{"step": f"plain, batch {batch}", **plain},
            {"step": f"GradCache, batch {batch}, mini-batch {mini}", **cached}]
    memory_ratio = ratio(cached["peak_growth_mib"], plain["peak_growth_mib"])
    time_ratio = ratio(cached["step_s"], plain["step_s"])
    targets = [
        Target(f"GradCache / plain peak memory of a step (batch {batch})", memory_ratio, 0.5, higher_is_better=False,
               unit="x"),
        Target(f"GradCache / plain step time (batch {batch})", time_ratio, 1.6, higher_is_better=False, unit="x"),
    ]
    notes = [f"first-step losses: plain {plain['first_loss']:.5f}, GradCache {cached['first_loss']:.5f} (the "
             "dropout masks differ with the mini-batch shapes, so equal only in distribution here; the tests "
             "prove equal gradients for the same masks)"]
    report(NAME, args, rows, targets=targets, notes=notes, extra={"memory_ratio": memory_ratio,
                                                                  "time_ratio": time_ratio})


if __name__ == "__main__":
    main()

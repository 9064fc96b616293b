"""Acceptance experiment: unsupervised SimCSE from MiniLM's [CLS] vector raises STS-B dev Spearman.

Starting from all-MiniLM-L6-v2 read through its raw [CLS] vector (pooler ``cls_before_pooler``, a poor
sentence vector for a model trained with mean pooling), 100 steps of unsupervised SimCSE with the paper's
settings (batch 64, lr 3e-5, τ 0.05, max length 32, dropout 0.1) on the unlabelled STS-B train sentences.
STS-B dev Spearman, alignment, uniformity and anisotropy are measured before, every ``--eval-every`` steps
and after. The run passes when dev Spearman rises by at least 3 points and anisotropy ends below 0.25.

Run from the repository root::

    python bench/unsup_from_cls.py            # writes bench/results/unsup_from_cls.json

Timings: ``train_s`` counts training steps only; ``elapsed_s`` also counts the evaluations. The machine facts
and load averages are stored beside the figures, because the box may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from simcse_core.evaluation.sets import load_stsb, stsb_train_sentences  # noqa: E402
from simcse_core.model.loading import load_encoder  # noqa: E402
from simcse_core.runtime import machine_facts  # noqa: E402
from simcse_core.training.train import TrainConfig, train  # noqa: E402

RESULTS = REPO / "bench" / "results" / "unsup_from_cls.json"
MIN_SPEARMAN_GAIN = 3.0  # points of Spearman x100
MAX_ANISOTROPY_AFTER = 0.25


def run(steps: int = 100, eval_every: int = 10, precision: str = "auto", seed: int = 42) -> dict:
    """Train, evaluate and return the figures (also printed as they come)."""
    load_before = os.getloadavg()
    encoder = load_encoder("minilm", pooler="cls_before_pooler", precision=precision)
    sentences = stsb_train_sentences()
    dev = load_stsb("dev")
    config = TrainConfig(mode="unsup", steps=steps, seed=seed, eval_every=eval_every)  # the paper's otherwise
    print(f"{encoder.description}, autocast {encoder.autocast_dtype}; {len(sentences)} STS-B train "
          f"sentences; {dev.name}: {len(dev)} pairs")
    history, losses = [], []
    wall = time.perf_counter()
    for event in train(encoder, sentences, config, eval_pairs=dev):
        if event.loss is not None:
            losses.append(round(event.loss, 5))
        if event.metrics is not None:
            history.append({"step": event.step, "train_s": round(event.train_s, 2),
                            "elapsed_s": round(event.elapsed_s, 2), **event.metrics})
            print(f"step {event.step:>4}  train {event.train_s:7.1f} s  total {event.elapsed_s:7.1f} s  "
                  f"Spearman {event.metrics['spearman']:6.2f}  anisotropy {event.metrics['anisotropy']:.3f}",
                  flush=True)
    wall = time.perf_counter() - wall
    before, after = history[0], history[-1]
    gain = after["spearman"] - before["spearman"]
    first_plus_3 = next((h for h in history if h["spearman"] - before["spearman"] >= MIN_SPEARMAN_GAIN), None)
    return {
        "experiment": "unsupervised SimCSE from all-MiniLM-L6-v2 [CLS] (cls_before_pooler) on STS-B train",
        "config": asdict(config),
        "precision": str(encoder.autocast_dtype or "fp32"),
        "train_sentences": len(sentences),
        "eval_set": {"name": dev.name, "pairs": len(dev), "source": dev.source},
        "before": {k: before[k] for k in ("spearman", "alignment", "uniformity", "anisotropy")},
        "after": {k: after[k] for k in ("spearman", "alignment", "uniformity", "anisotropy")},
        "spearman_gain": gain,
        "steps_done": after["step"],
        "train_s": after["train_s"],
        "wall_s_with_evaluations": wall,
        "first_plus_3": None if first_plus_3 is None else {
            "step": first_plus_3["step"], "train_s": first_plus_3["train_s"],
            "elapsed_s": first_plus_3["elapsed_s"], "spearman": first_plus_3["spearman"]},
        "history": history,
        "losses": losses,
        "passed": bool(gain >= MIN_SPEARMAN_GAIN and after["anisotropy"] < MAX_ANISOTROPY_AFTER),
        "criteria": f"Spearman gain >= {MIN_SPEARMAN_GAIN} and anisotropy after < {MAX_ANISOTROPY_AFTER}",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine_facts(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def print_table(result: dict) -> None:
    """Before / after table and the verdict."""
    print(f"\n{'STS-B dev':<12} {'before':>8} {'after':>8} {'change':>8}")
    for key in ("spearman", "alignment", "uniformity", "anisotropy"):
        b, a = result["before"][key], result["after"][key]
        print(f"{key:<12} {b:>8.3f} {a:>8.3f} {a - b:>+8.3f}")
    first = result["first_plus_3"]
    when = "never" if first is None else f"step {first['step']} ({first['train_s']:.1f} s of training)"
    print(f"\n{result['steps_done']} steps: {result['train_s']:.1f} s of training, "
          f"{result['wall_s_with_evaluations']:.1f} s with evaluations; first +3 points: {when}")
    print(f"{'PASS' if result['passed'] else 'FAIL'}: {result['criteria']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps (default: %(default)s)")
    parser.add_argument("--eval-every", type=int, default=10,
                        help="evaluate every N steps (default: %(default)s)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file (default: %(default)s)")
    args = parser.parse_args(argv)
    result = run(args.steps, args.eval_every, args.precision, args.seed)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

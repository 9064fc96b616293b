"""Dropout speed: the project's dropout masks (16-bit random words) against torch's own dropout, on the CPU.

Two measurements, each contender in turns so the machine's noise hits both:
- the dropout call itself, forward and backward, on the shapes of the lesson run (raw-bert, batch 128: two
  views of 128 lesson sentences, about 4,200 real tokens packed (16.6 a sentence); hidden size 128, 2 heads);
- the lesson run's training step (``lessons.LESSON_RUN`` from ``raw-bert``), the same run twice, one of them with
  torch's ``F.dropout`` put back in the unpadded forward; blocks of ``--block`` steps in turns, the first block
  of each dropped, the median seconds per step quoted.

    python bench/dropout_speed.py            # about 3 minutes on 2 cores
    python bench/dropout_speed.py --quick

Writes ``bench/results/dropout_speed.json``.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `simcse_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, interleaved_repeats, make_parser, ratio, report, setup  # noqa: E402

P = 0.1  # the paper's dropout, the lesson's


def _op_rows(repeats: int, tokens: int) -> list[dict]:
    import torch
    from torch.nn import functional as F

    from simcse_core.model.dropout import dropout

    # BERT drops out its hidden states (after the embeddings and after each attention and feed-forward output)
    # and its attention weights.
    shapes = {"hidden states (tokens x 128)": (tokens, 128), "attention weights (256 x 2 x 24 x 24)": (256, 2, 24, 24)}
    rows = []
    for label, shape in shapes.items():
        x = torch.randn(shape, dtype=torch.bfloat16, requires_grad=True)

        def run(fn, x=x):
            fn(x).float().sum().backward()

        times = interleaved_repeats({"torch": lambda: run(lambda t: F.dropout(t, P, training=True)),
                                     "ours": lambda: run(lambda t: dropout(t, P))}, repeats, warmup=3)
        torch_ms, ours_ms = (1e3 * statistics.median(times[k]) for k in ("torch", "ours"))
        rows.append({"measure": f"dropout forward + backward, {label}, bf16", "torch_ms": round(torch_ms, 3),
                     "ours_ms": round(ours_ms, 3), "ours_over_torch": round(ratio(ours_ms, torch_ms), 3)})
    return rows


class _Run:
    """One lesson run as a resumable source of per-step seconds, with its own choice of dropout."""

    def __init__(self, use_torch_dropout: bool, steps: int) -> None:
        from simcse_core.model.loading import load_encoder
        from simcse_core.teaching import lessons
        from simcse_core.training.train import train

        self.use_torch_dropout = use_torch_dropout
        encoder = load_encoder(lessons.START_MODEL, pooler="cls_before_pooler")
        config = replace(lessons.LESSON_RUN, steps=steps, eval_every=0)
        self._events = train(encoder, list(lessons.lesson_sentences()), config)
        self._last = 0.0
        next(self._events)  # step 0: the baseline event, before any step

    def block(self, steps: int) -> list[float]:
        from torch.nn import functional as F

        from simcse_core.model import dropout as ours
        from simcse_core.model import unpadded

        unpadded.apply_dropout = ((lambda x, p, training=True: F.dropout(x, p, training=training))
                                  if self.use_torch_dropout else ours.dropout)
        seconds = []
        try:
            for _ in range(steps):
                event = next(self._events)
                seconds.append(event.train_s - self._last)
                self._last = event.train_s
        finally:
            unpadded.apply_dropout = ours.dropout
        return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=20, help="training steps per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks of each contender, in turns")
    args = parser.parse_args(argv)
    setup(args)
    if args.quick:
        args.block, args.rounds = 5, 3
    rows = _op_rows(repeats=10 if args.quick else 50, tokens=4224)
    runs = {"torch": _Run(True, args.block * args.rounds), "ours": _Run(False, args.block * args.rounds)}
    per_step: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.rounds):
        for name, run in runs.items():
            seconds = run.block(args.block)
            if round_ > 0:  # the first block of each run warms its kernels up
                per_step[name].extend(seconds)
    torch_s, ours_s = (statistics.median(per_step[k]) for k in ("torch", "ours"))
    rows.append({"measure": "the lesson run's training step (raw-bert, batch 128, first-last average)",
                 "torch_ms": round(1e3 * torch_s, 1), "ours_ms": round(1e3 * ours_s, 1),
                 "ours_over_torch": round(ratio(ours_s, torch_s), 3)})
    targets = [Target("lesson step time, our dropout / torch's", ratio(ours_s, torch_s), 0.9,
                      higher_is_better=False)]
    notes = [f"medians over {args.rounds - 1} blocks of {args.block} steps each (the first block dropped); "
             f"dropout {P}; the same seed, so both runs draw the same batches"]
    return report("dropout_speed", args, rows, targets=targets, notes=notes,
                  columns=["measure", "torch_ms", "ours_ms", "ours_over_torch"])


if __name__ == "__main__":
    main()

"""Memory a process keeps from tensor shapes: training's packed tokens and inference's padded batches, rounded or not.

oneDNN, which runs bf16 matmuls on the CPU, compiles and keeps kernels per tensor shape. Each contender runs in a
fresh process (``--child``): the resident memory it keeps after the work is freed (``gc`` and ``malloc_trim``), and
the time taken, against the same process's memory after loading the model.

- training: three runs of ``--steps`` steps of the lesson's recipe from ``raw-bert`` (batch 64), the packed
  tokens rounded up to a multiple of ``simcse_core.model.unpadded.TOKEN_MULTIPLE`` (64) or not rounded (1);
- inference: 400 batches of 1-8 sentences of 1-40 words through all-MiniLM-L6-v2, padded to a multiple of
  ``simcse_core.model.encoder.PAD_MULTIPLE`` (8) or to their longest only (1).

Run ``python -m bench.packed_shapes --help``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import REPO, Target, make_parser, report, settled_rss_mib, setup

NAME = "packed_shapes"
WORDS = "the a man dog plays guitar park market fell sharply today someone instrument".split()



def _child(what: str, multiple: int, steps: int, rounds: int) -> dict:
    import random
    import time
    from dataclasses import replace

    from simcse_core import load_encoder, train
    from simcse_core.model import encoder as encoder_module
    from simcse_core.model import unpadded
    from simcse_core.teaching import lessons

    kept, seconds = [], []
    if what == "training":
        unpadded.TOKEN_MULTIPLE = multiple
        sentences = list(lessons.lesson_sentences())
        base = load_encoder("raw-bert", pooler=lessons.START_POOLER)
        base.encode(["warm up"])
        start = settled_rss_mib()
        for k in range(rounds):
            run = base.copy()
            config = replace(lessons.LESSON_RUN, steps=steps, batch_size=64, eval_every=0, seed=k)
            began = time.perf_counter()
            for _ in train(run, sentences, config):
                pass
            seconds.append(time.perf_counter() - began)
            del run
            kept.append(settled_rss_mib() - start)
    else:
        encoder_module.PAD_MULTIPLE = multiple
        encoder = load_encoder("minilm")
        encoder.encode(["warm up"])
        start = settled_rss_mib()
        rng = random.Random(0)
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(400):
                encoder.encode([" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
                                for _ in range(rng.randint(1, 8))])
            seconds.append(time.perf_counter() - began)
            kept.append(settled_rss_mib() - start)
    return {"kept_mib": kept, "seconds": seconds}


def _run_child(what: str, multiple: int, steps: int, rounds: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.packed_shapes", "--child", what, "--multiple", str(multiple),
                          "--steps", str(steps), "--rounds", str(rounds)],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help="(internal) run one contender and print its result")
    parser.add_argument("--multiple", type=int, default=1, help="(internal) the contender's rounding")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="training runs, or rounds of 400 batches")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.multiple, args.steps, args.rounds)))
        return {}
    setup(args)
    from simcse_core.model.encoder import PAD_MULTIPLE
    from simcse_core.model.unpadded import TOKEN_MULTIPLE

    steps, rounds = (10, 2) if args.quick else (args.steps, args.rounds)
    rows, measured = [], {}
    for what, ours in (("training", TOKEN_MULTIPLE), ("inference", PAD_MULTIPLE)):
        for multiple in (1, ours):
            result = _run_child(what, multiple, steps, rounds)
            measured[what, multiple] = result
            rows.append({"work": what, "rounded_to": multiple, "kept_mib_after_each": [round(m) for m in
                                                                                        result["kept_mib"]],
                         "seconds_each": [round(s, 1) for s in result["seconds"]]})
        plain, rounded = measured[what, 1], measured[what, ours]
        rows[-1]["kept_vs_unrounded"] = round(rounded["kept_mib"][-1] / max(plain["kept_mib"][-1], 1e-9), 3)
        rows[-1]["time_vs_unrounded"] = round(sum(rounded["seconds"]) / sum(plain["seconds"]), 3)
    targets = [Target(f"{what}: memory kept, rounded vs not", row["kept_vs_unrounded"], 0.5,
                      higher_is_better=False) for what, row in (("training", rows[1]), ("inference", rows[3]))]
    notes = [f"training: {rounds} runs of {steps} steps, lesson recipe at batch 64 from raw-bert, bf16 autocast "
             "where the CPU has it; inference: rounds of 400 batches of 1-8 sentences of 1-40 words, all-MiniLM-L6-v2.",
             "Memory kept: resident size after the work is freed (gc, malloc_trim), above the same process after "
             "loading the model. Each contender in a fresh process, one after the other."]
    return report(NAME, args, rows, targets=targets, notes=notes)


if __name__ == "__main__":
    main()

"""Choosing the prepared run's data, learning rate and batch by measurement, on STS-B dev.

The prepared run is the lesson's recipe trained longer (``simcse_core.teaching.prepared``). With the 20,000 lesson
sentences its STS-B dev score stops rising after about 1,000 steps (16 passes over the same sentences), below
whitening's. Each candidate here is the lesson's recipe (pooler, τ 0.05, dropout 0.1, training length 32, seed
42) from the raw model with one data source, learning rate and batch, for ``--steps`` steps:

- ``lesson``: the 20,000 lesson sentences;
- ``corpus``: ``--sample`` sentences drawn (seed 0) from the pretraining corpus's ``pretrain.txt`` (built by
  ``python -m simcse_core corpus``; no STS sentence is in it), the paper's setting of training SimCSE on text
  the language model was pretrained on (Wikipedia, for BERT).

Chosen on STS-B dev; STS-B test is reported, never used to choose.

    python bench/prepared_recipe.py --corpus-dir /path/to/corpus            # 1,500 steps a candidate

Writes ``bench/results/prepared_recipe.json``.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `simcse_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import make_parser, report, setup  # noqa: E402

# (data, learning rate, batch size)
CANDIDATES: tuple[tuple[str, float, int], ...] = (
    ("lesson", 1e-3, 64), ("lesson", 3e-4, 64), ("corpus", 1e-3, 64), ("corpus", 3e-4, 64),
    ("lesson", 2e-3, 64), ("lesson", 1e-3, 128))


def corpus_sample(corpus_dir: Path, size: int, seed: int = 0) -> list[str]:
    """``size`` sentences drawn without replacement from the corpus's pretraining sentences."""
    lines = [line.strip() for line in (corpus_dir / "pretrain.txt").read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    return random.Random(seed).sample(lines, min(size, len(lines)))


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--corpus-dir", type=Path, required=True, help="the built corpus (holds pretrain.txt)")
    parser.add_argument("--steps", type=int, default=1500, help="steps per candidate")
    parser.add_argument("--sample", type=int, default=320_000, help="corpus sentences drawn for 'corpus'")
    parser.add_argument("--only", default=None, help="run only these candidates: 'data,lr,batch;...'")
    parser.add_argument("--name", default="prepared_recipe", help="the result's name in bench/results/")
    args = parser.parse_args(argv)
    setup(args)

    from simcse_core.evaluation.metrics import embedding_report
    from simcse_core.evaluation.sets import load_stsb
    from simcse_core.model.loading import load_encoder
    from simcse_core.teaching import lessons
    from simcse_core.training.train import train

    dev, test = load_stsb("dev"), load_stsb("test")
    data = {"lesson": list(lessons.lesson_sentences()), "corpus": corpus_sample(args.corpus_dir, args.sample)}
    steps = max(2, args.steps // 10) if args.quick else args.steps
    rows = []
    for source, lr, batch in CANDIDATES:
        if args.only and f"{source},{lr:g},{batch}" not in args.only.split(";"):
            continue
        encoder = load_encoder(lessons.START_MODEL, pooler=lessons.START_POOLER)
        config = replace(lessons.LESSON_RUN, steps=steps, lr=lr, batch_size=batch, eval_every=0)
        last = None
        for last in train(encoder, data[source], config):
            pass
        on_dev, on_test = embedding_report(encoder, dev), embedding_report(encoder, test)
        rows.append({"data": source, "sentences": len(data[source]), "lr": lr, "batch": batch, "steps": last.step,
                     "train_s": round(last.train_s, 1), "stsb_dev": round(on_dev["spearman"], 2),
                     "stsb_test": round(on_test["spearman"], 2), "anisotropy": round(on_dev["anisotropy"], 3)})
        print(rows[-1], flush=True)
    chosen = max(rows, key=lambda r: r["stsb_dev"])
    notes = [f"chosen on STS-B dev: {chosen['data']}, lr {chosen['lr']:g} (dev {chosen['stsb_dev']}, "
             f"test {chosen['stsb_test']})", f"{steps} steps a candidate, one seed (42)"]
    columns = ["data", "sentences", "lr", "batch", "steps", "train_s", "stsb_dev", "stsb_test", "anisotropy"]
    return report(args.name, args, rows, notes=notes, columns=columns, extra={"chosen": chosen})


if __name__ == "__main__":
    main()

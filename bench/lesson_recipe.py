"""Choosing the lesson's recipe by measurement: pooler (Table 6's rows), learning rate and batch, from the raw model.

Each candidate is the lesson run (the paper's unsupervised setting: τ 0.05, dropout 0.1, training length 32, on the
20,000 lesson sentences, seed 42) with one pooler, learning rate and batch (the paper's grid: 64, 128, 256, 512),
for the lesson's steps — or, with ``--same-examples``, for as many examples as the lesson run sees. It is scored on
the full STS-B dev and test sets, and its gain is measured against the raw model's *best* training-free reading
without whitening ([CLS], mean or first-last average: the one a class would pick instead) and against whitening,
not against the reading the run starts from. The recipe is chosen on STS-B dev (as the paper selects on STS-B dev);
STS-B test is reported, never used to choose.

    python bench/lesson_recipe.py                # the candidates below, one seed each
    python bench/lesson_recipe.py --seeds 3      # and more seeds
    python bench/lesson_recipe.py --quick        # a tenth of the steps
    python bench/lesson_recipe.py --same-examples --name lesson_recipe_batch \
        --only "avg_first_last,0.001,64;avg_first_last,0.001,128;avg_first_last,0.001,256;avg_first_last,0.002,256"

Writes ``bench/results/lesson_recipe.json`` (or ``--name``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `simcse_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, make_parser, report, setup  # noqa: E402

# (Table 6 row, pooler, MLP in training only, learning rate, batch)
CANDIDATES: tuple[tuple[str, str, bool, float, int], ...] = (
    ("[CLS] w/o MLP", "cls_before_pooler", False, 3e-3, 64),
    ("[CLS] w/ MLP (train)", "cls", True, 3e-3, 64),
    ("mean (not a Table 6 row)", "mean", False, 1e-3, 64),
    ("First-last avg.", "avg_first_last", False, 1e-3, 64),
    ("First-last avg.", "avg_first_last", False, 3e-3, 64),
    ("First-last avg.", "avg_first_last", False, 3e-4, 64),
    ("First-last avg.", "avg_first_last", False, 1e-3, 128),
    ("First-last avg.", "avg_first_last", False, 2e-3, 128),
    ("First-last avg.", "avg_first_last", False, 5e-4, 128),
    ("First-last avg.", "avg_first_last", False, 1.5e-3, 128),
    ("First-last avg.", "avg_first_last", False, 3e-3, 128),
    ("First-last avg.", "avg_first_last", False, 1e-3, 256),
    ("First-last avg.", "avg_first_last", False, 2e-3, 256),
)


def _chosen(only: str | None) -> tuple[tuple[str, str, bool, float, int], ...]:
    """The candidates ``--only`` names ('pooler,lr,batch;...'), or all of them."""
    if not only:
        return CANDIDATES
    wanted = {tuple(part.split(",")) for part in only.split(";")}
    picked = tuple(c for c in CANDIDATES if (c[1], f"{c[3]:g}", str(c[4])) in wanted)
    if not picked:
        raise SystemExit(f"--only: no candidate matches {only!r} "
                         "(write pooler,lr,batch; e.g. avg_first_last,0.001,128)")
    return picked


def _overrides(pairs: list[str]) -> dict:
    """``--set`` values as TrainConfig fields, each checked by TrainConfig (its error names the setting)."""
    from simcse_core.training.config import TrainConfig

    known = set(TrainConfig.__dataclass_fields__)
    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in known:
            raise SystemExit(f"--set: write SETTING=VALUE with a training setting ({', '.join(sorted(known))}), "
                             f"got {pair!r}")
        overrides[name] = _checked(f"--set {name}", name, text)
    return overrides


def _checked(option: str, name: str, value: object) -> object:
    """``value`` as TrainConfig's ``name`` takes it, or exit with its message under the command-line ``option``."""
    from simcse_core.training.config import SettingError, check_setting

    try:
        return check_setting(name, value)
    except SettingError as err:
        raise SystemExit(f"{option}: {err}") from None


_ROW_KEYS = {"recipe", "kind", "pooler", "lr", "batch", "dropout", "seed", "steps", "train_s", "stsb_dev",
             "stsb_test", "anisotropy", "gain_test_vs_best_unwhitened", "gain_test_vs_whitened"}


def _setting_items(row: dict) -> tuple:
    """The ``--set`` settings a row was run with, as sorted (name, value) pairs."""
    return tuple(sorted((k, v) for k, v in row.items() if k not in _ROW_KEYS))


def by_candidate(rows: list[dict]) -> list[dict]:
    """Each candidate's seeds summarised: mean and spread (sample sd) of its STS-B dev and test scores."""
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["kind"] == "SimCSE":
            groups.setdefault((row["recipe"], row.get("dropout"), *_setting_items(row)), []).append(row)
    summary = []
    for (recipe, dropout, *settings), runs in groups.items():
        entry = {"recipe": recipe, "pooler": runs[0]["pooler"], "lr": runs[0]["lr"], "batch": runs[0]["batch"],
                 "dropout": dropout, **dict(settings), "seeds": len(runs)}
        for key in ("stsb_dev", "stsb_test", "gain_test_vs_best_unwhitened"):
            values = [r[key] for r in runs]
            entry[f"{key}_mean"] = round(statistics.fmean(values), 2)
            entry[f"{key}_sd"] = round(statistics.stdev(values), 2) if len(values) > 1 else None
        summary.append(entry)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per candidate (42, 43, ...)")
    parser.add_argument("--first-seed", type=int, default=42, help="the first seed (more seeds for a grid run before)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the lesson's)")
    parser.add_argument("--same-examples", action="store_true",
                        help="each candidate sees as many examples as the lesson run (steps x batch), not its steps")
    parser.add_argument("--only", default=None, help="candidates to run, 'pooler,lr,batch;...'")
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout of every candidate (default: the lesson's, the paper's 0.1)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SETTING=VALUE",
                        help="a training setting of every candidate, e.g. warmup=30 or temperature=0.1 (repeatable)")
    parser.add_argument("--start-model", default=None,
                        help="the raw model every run starts from, a name or a folder (default: the lesson's); "
                             "compares pretraining candidates")
    parser.add_argument("--name", default="lesson_recipe", help="result file name under bench/results/")
    args = parser.parse_args(argv)
    overrides = _overrides(args.overrides)
    if args.dropout is not None:
        overrides["dropout"] = _checked("--dropout", "dropout", args.dropout)
    setup(args)

    from simcse_core.evaluation.metrics import embedding_report
    from simcse_core.evaluation.sets import load_stsb
    from simcse_core.model.loading import load_encoder
    from simcse_core.teaching import lessons, table5
    from simcse_core.training.train import train

    every = replace(lessons.LESSON_RUN, **overrides)  # the settings every candidate shares
    start_model = args.start_model or lessons.START_MODEL

    dev, test = load_stsb("dev"), load_stsb("test")
    sentences = list(lessons.lesson_sentences())
    free = table5.training_free_rows(start_model, dev, test, sentences[:10_000])
    rows = [{"recipe": r.label, "kind": "training-free", "stsb_dev": r.stsb_dev, "stsb_test": r.stsb_test}
            for r in free]
    unwhitened = [r for r in free if r.pooler in ("cls_before_pooler", "mean", "avg_first_last")]
    best_dev = max(unwhitened, key=lambda r: r.stsb_dev)
    whitened = next(r for r in free if r.pooler == "whitened")
    steps = args.steps or lessons.LESSON_STEPS
    if args.quick:
        steps = max(2, steps // 10)
    for row_name, pooler, mlp_only_train, lr, batch in _chosen(args.only):
        run_steps = steps * lessons.LESSON_BATCH // batch if args.same_examples else steps
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            encoder = load_encoder(start_model, pooler="cls_before_pooler")
            config = replace(lessons.LESSON_RUN, steps=run_steps, lr=lr, batch_size=batch, pooler=pooler,
                             mlp_only_train=mlp_only_train, seed=seed, eval_every=0)
            config = replace(config, **overrides)
            last = None
            for last in train(encoder, sentences, config):
                pass
            on_dev, on_test = embedding_report(encoder, dev), embedding_report(encoder, test)
            rows.append({"recipe": f"{row_name}, lr {lr:g}, batch {batch}", "kind": "SimCSE", "pooler": pooler,
                         "lr": lr, "batch": batch, "dropout": config.dropout,
                         "decay_fraction": config.decay_fraction, "adam_beta2": config.adam_beta2, **overrides,
                         "seed": seed, "steps": last.step, "train_s": round(last.train_s, 1),
                         "stsb_dev": round(on_dev["spearman"], 2), "stsb_test": round(on_test["spearman"], 2),
                         "anisotropy": round(on_dev["anisotropy"], 3),
                         "gain_test_vs_best_unwhitened": round(on_test["spearman"] - best_dev.stsb_test, 2),
                         "gain_test_vs_whitened": round(on_test["spearman"] - whitened.stsb_test, 2)})
            print(rows[-1], flush=True)
    candidates = by_candidate(rows)
    best = max(candidates, key=lambda c: c["stsb_dev_mean"])  # chosen on the seeds' mean STS-B dev
    runs = [r for r in rows if r["kind"] == "SimCSE" and r["recipe"] == best["recipe"]]
    chosen = max(runs, key=lambda r: r["stsb_dev"])
    targets = [Target("chosen recipe: STS-B test over the best unwhitened reading (points, mean of its seeds)",
                      best["gain_test_vs_best_unwhitened_mean"], 8.0)]
    notes = [f"every run starts from {start_model}",
             f"best unwhitened training-free reading (chosen on dev): {best_dev.label}, dev {best_dev.stsb_dev}, "
             f"test {best_dev.stsb_test}; whitened first-last: dev {whitened.stsb_dev}, test {whitened.stsb_test}",
             f"chosen on the mean STS-B dev of its {best['seeds']} seed(s): {best['recipe']} (dev "
             f"{best['stsb_dev_mean']}, test {best['stsb_test_mean']})",
             (f"each run sees {steps * lessons.LESSON_BATCH:,} examples (steps x batch)" if args.same_examples
              else f"{steps} steps a run") + f", τ {every.temperature}, dropout {every.dropout}, "
             f"training length {every.max_length}, lr decayed linearly over the last {every.decay_fraction:.0%} of "
             f"the steps (held before), AdamW β2 {every.adam_beta2:g}"
             + "".join(f", {k} {v}" for k, v in overrides.items()
                       if k not in ("temperature", "dropout", "max_length", "decay_fraction", "adam_beta2"))]
    columns = ["recipe", "kind", "seed", "steps", "train_s", "stsb_dev", "stsb_test", "anisotropy",
               "gain_test_vs_best_unwhitened", "gain_test_vs_whitened"]
    return report(args.name, args, rows, targets=targets, notes=notes, columns=columns,
                  extra={"chosen": chosen, "candidates": candidates, "chosen_candidate": best})


if __name__ == "__main__":
    main()

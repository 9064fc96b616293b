"""The paper's ablations in miniature: every preset of :mod:`simcse_core.teaching.ablations`, ours next to the paper's.

Each preset trains a private copy of the raw model (``raw-bert``) with the preset's settings and reports STS-B
dev Spearman before and after, the final alignment and uniformity, and the paper's figure for the same row
(table, row, setting). Per ablation table it says whether our best setting is the paper's and how well the
two rankings agree. Runs every step of every preset (no time budget), so results do not depend on the load.

    python bench/ablations.py                  # full: every preset, full STS-B dev
    python bench/ablations.py --quick          # 30 % of the steps, a 300-pair dev sample
    python bench/ablations.py --only dropout   # tables: augmentation, dropout, pooler, temperature, hard_negatives
    python bench/ablations.py --model minilm   # from a model already trained for similarity (no collapse)

Writes ``bench/results/ablations.json`` (``ablations_<groups>.json`` with ``--only``, ``_quick`` with ``--quick``).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `simcse_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, make_parser, report, setup  # noqa: E402

QUICK_STEP_SHARE = 0.3


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma list of groups: augmentation, dropout, pooler, "
                                                     "temperature, hard_negatives")
    parser.add_argument("--model", default="raw-bert", help="base model (default: the raw model, raw-bert)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per preset, seeds seed, seed+1, ...: rows give the mean and the spread")
    args = parser.parse_args(argv)
    setup(args)

    from simcse_core.evaluation.sets import default_eval_pairs
    from simcse_core.model.loading import load_encoder
    from simcse_core.teaching import ablations

    groups = [g.strip() for g in args.only.split(",")] if args.only else list(ablations.GROUPS)
    presets = [p for g in groups for p in ablations.presets_in(g)]
    base = load_encoder(args.model, pooler=ablations.START_POOLER)
    dev = default_eval_pairs()
    eval_pairs = ablations.eval_sample(dev) if args.quick else dev
    print(f"{base.description}; evaluating on {eval_pairs.name} ({len(eval_pairs)} pairs); "
          f"{len(presets)} presets", flush=True)

    results, rows, done = [], [], {}
    for preset in presets:
        if args.quick:
            preset = replace(preset, config=replace(preset.config, steps=max(2, round(
                preset.config.steps * QUICK_STEP_SHARE)), eval_every=0))
        wall = time.perf_counter()
        seeded = [replace(preset, config=replace(preset.config, seed=preset.config.seed + k))
                  for k in range(args.seeds)]
        runs, made = [], 0
        for one in seeded:
            # e.g. "τ 0.05" is "dropout 0.1": the same run, made once
            same = done.get((one.config, one.hard_negatives, one.positive, one.ratio))
            if same is None:
                _, events = ablations.start(one, base, eval_pairs)
                same = ablations.summarize(one, list(events), eval_pairs.name)
                done[(one.config, one.hard_negatives, one.positive, one.ratio)] = same
                made += 1
            runs.append(replace(same, key=preset.key, group=preset.group, label=preset.label,
                                paper_stsb_dev=preset.paper_stsb_dev, paper_source=preset.paper_source))
        afters = [r.after["spearman"] for r in runs]
        # the first seed's run (its history is drawn), with every seed's mean and spread (agreement reads them)
        result = replace(runs[0], seeds=len(runs), final_mean=statistics.fmean(afters) if len(runs) > 1 else None,
                         final_sd=statistics.stdev(afters) if len(runs) > 1 else None)
        results.append(result)
        row = runs[0].row()
        row.update(ours_after=statistics.fmean(afters), ours_gain=statistics.fmean(afters) - result.before["spearman"],
                   seeds=len(runs), ours_after_seeds=afters,
                   ours_after_sd=statistics.stdev(afters) if len(afters) > 1 else None)
        row["wall_s"] = time.perf_counter() - wall if made else 0.0
        rows.append(row)
        spread = f" ± {row['ours_after_sd']:.1f} ({len(runs)} seeds)" if row["ours_after_sd"] is not None else ""
        print(f"{preset.label:<40} paper {preset.paper_stsb_dev:5.1f}   ours {result.before['spearman']:5.1f} -> "
              f"{row['ours_after']:5.1f}{spread} ({row['ours_gain']:+.1f})  {row['wall_s']:.0f} s", flush=True)

    agreement = {}
    for group in groups:
        in_group = [r for r in results if r.group == group]
        agreement[group] = ablations.agreement(in_group)
    notes = [ablations.MINIATURE_CAVEAT]
    for group, verdict in agreement.items():
        rho = verdict["rank_correlation"]
        notes.append(f"{group}: paper's best {verdict['paper_best']}, ours {verdict['ours_best']}; rank "
                     f"correlation {'n/a' if isinstance(rho, float) and math.isnan(rho) else f'{rho:.2f}'}")
    notes.append(ablations.TEMPERATURE_NOTE)
    targets = _dropout_targets(rows)
    if args.quick:
        notes.append(f"quick: {QUICK_STEP_SHARE:.0%} of each preset's steps, evaluated on a 300-pair sample.")
    columns = ["group", "setting", "paper_stsb_dev", "paper_source", "ours_before", "ours_after", "ours_gain",
               "alignment_after", "uniformity_after", "steps", "train_s", "wall_s"]
    fingerprint = ablations.start_model_fingerprint() if args.model == ablations.START_MODEL else None
    extra = {"model": base.description, "model_sha256": fingerprint, "eval_set": eval_pairs.name,
             "agreement": agreement,
             "histories": {r.key: list(r.history) for r in results}}
    name = "ablations" if not args.only else "ablations_" + "_".join(groups)
    return report(name, args, rows, notes=notes, columns=columns, extra=extra, targets=targets)


def _dropout_targets(rows: list[dict]) -> list[Target]:
    """Table 3's targets (issues 20, 23): dropout 0.1 near our best; no dropout, 0.5 and the fixed mask at least
    5 points below it and, with several seeds, below it by more than both rows' spreads together."""
    final = {r["preset"]: r for r in rows if r["group"] == "dropout"}
    if "dropout-0.1" not in final:
        return []
    default = final["dropout-0.1"]
    best = max(r["ours_after"] for r in final.values())
    targets = [Target("dropout 0.1: points below our best dropout setting", best - default["ours_after"], 1.0,
                      higher_is_better=False)]
    for key, label in (("dropout-0", "no dropout"), ("dropout-0.5", "dropout 0.5"),
                       ("dropout-fixed-0.1", "fixed mask 0.1")):
        if key in final:
            gap = default["ours_after"] - final[key]["ours_after"]
            targets.append(Target(f"{label}: points below dropout 0.1", gap, 5.0))
            spread = (default["ours_after_sd"] or 0.0) + (final[key]["ours_after_sd"] or 0.0)
            if default["seeds"] > 1:
                targets.append(Target(f"{label}: gap beyond the seeds' spread (gap − both SDs)", gap - spread, 0.0))
    return targets


if __name__ == "__main__":
    main()

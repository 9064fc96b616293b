"""Quality per CPU-minute: STS-B dev Spearman and anisotropy against training seconds of the app's fine-tune.

Starts from the app's default: the bundled all-MiniLM-L6-v2 seen through its raw [CLS] vector
(``load_encoder("minilm", pooler="cls_before_pooler")``, precision auto) and unsupervised SimCSE with the
TrainConfig defaults (batch 64, lr 3e-5, τ 0.05, dropout 0.1, max length 32). ``steps`` is set high
(``--steps``, default 10 000) so that the run is limited by the clock, not the schedule: the learning rate then
decays only slightly (linearly towards 0 at ``steps``) over the measured minutes.

Training data (``--data``): ``sample`` = the bundled ``assets/sample_unsup.txt`` (what the app trains on by
default), ``stsb`` = the distinct STS-B train sentences; by default both, the first for ``--minutes`` 5,
the second for 1.5. The clock is ``TrainEvent.train_s`` (training steps only). Evaluations (full STS-B dev:
Spearman, anisotropy) are made by this script between steps, at fixed training-clock points, so they never
count as training time; their own time is reported separately. Reports seconds to +1, +3 and +4 Spearman
points over the baseline (the first evaluation point at which the gain was measured: an upper bound with the
granularity of the schedule). Run ``python -m bench.quality_per_minute --help``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.common import REPO, Target, load_stsb_split, make_parser, report, setup, time_call

NAME = "quality_per_minute"
GAINS = (1.0, 3.0, 4.0)
# Training-clock seconds at which to evaluate: dense early, where the curve moves.
SCHEDULE = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600)


def _dev_pairs(quick: bool):
    from simcse_core.evaluation.sets import ScoredPairs

    dev = load_stsb_split("dev")
    n = 300 if quick else len(dev.scores)
    return ScoredPairs(name=dev.name + (f" [first {n} pairs]" if quick else ""), sentence1=dev.sentence1[:n],
                       sentence2=dev.sentence2[:n], scores=dev.scores[:n], source="shared STS-B copy",
                       is_benchmark=True)


def _training_sentences(which: str) -> tuple[list[str], str]:
    if which == "sample":
        from simcse_core.data import load_sentences

        path = REPO / "assets" / "sample_unsup.txt"
        return load_sentences(path), f"assets/sample_unsup.txt ({path.name})"
    return load_stsb_split("train").sentences(), "STS-B train sentences (distinct)"


def run_curve(which: str, seconds: float, steps: int, eval_pairs, schedule: Sequence[float]) -> dict[str, Any]:
    """Train from the [CLS] state for ``seconds`` of training clock; evaluate at ``schedule`` points."""
    from simcse_core import load_encoder
    from simcse_core.evaluation.metrics import embedding_report
    from simcse_core.training.train import TrainConfig, train

    sentences, label = _training_sentences(which)
    encoder = load_encoder("minilm", pooler="cls_before_pooler", device="cpu")
    config = TrainConfig(mode="unsup", steps=steps, eval_every=0)
    events = train(encoder, sentences, config, eval_pairs=None)
    next(events)  # step 0: setup only
    eval_s, baseline = time_call(lambda: embedding_report(encoder, eval_pairs))
    curve = [{"train_s": 0.0, "step": 0, "spearman": baseline["spearman"], "anisotropy": baseline["anisotropy"],
              "alignment": baseline["alignment"], "uniformity": baseline["uniformity"], "loss": None}]
    eval_times = [eval_s]
    points = [t for t in schedule if t < seconds] + [seconds]
    event = None
    for point in points:
        for event in events:
            if event.train_s >= point or event.done:
                break
        if event is None:
            break
        took, metrics = time_call(lambda: embedding_report(encoder, eval_pairs))
        eval_times.append(took)
        curve.append({"train_s": event.train_s, "step": event.step, "spearman": metrics["spearman"],
                      "anisotropy": metrics["anisotropy"], "alignment": metrics["alignment"],
                      "uniformity": metrics["uniformity"], "loss": event.loss})
        print(f"  {which}: {event.train_s:6.1f} s  step {event.step:4d}  Spearman {metrics['spearman']:.2f} "
              f"(+{metrics['spearman'] - baseline['spearman']:.2f})  anisotropy {metrics['anisotropy']:.3f}")
        if event.done:
            break
    events.close()
    reach = {}
    for gain in GAINS:
        hit = next((p for p in curve if p["spearman"] - baseline["spearman"] >= gain), None)
        reach[gain] = hit["train_s"] if hit else math.nan
    return {"data": label, "sentences": len(sentences), "curve": curve, "reach_s": reach,
            "eval_s_median": sorted(eval_times)[len(eval_times) // 2], "eval_s_total": sum(eval_times),
            "seconds_per_step": curve[-1]["train_s"] / max(1, curve[-1]["step"])}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample,stsb", help="comma list of: sample, stsb (default both)")
    parser.add_argument("--minutes", default=None, help="training minutes per data set (default 5,1.5; quick 0.5)")
    parser.add_argument("--steps", type=int, default=10_000, help="TrainConfig.steps (sets the lr decay)")
    args = parser.parse_args(argv)
    setup(args)
    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    minutes = [float(m) for m in (args.minutes or ("0.5" if args.quick else "5,1.5")).split(",")]
    minutes += [minutes[-1]] * (len(datasets) - len(minutes))
    eval_pairs = _dev_pairs(args.quick)
    schedule = (5, 10, 20, 30) if args.quick else SCHEDULE

    runs = {d: run_curve(d, 60.0 * m, args.steps, eval_pairs, schedule) for d, m in zip(datasets, minutes)}
    rows = []
    for which, run in runs.items():
        base = run["curve"][0]
        for point in run["curve"]:
            rows.append({"data": which, "train_s": point["train_s"], "step": point["step"],
                         "spearman": point["spearman"], "gain": point["spearman"] - base["spearman"],
                         "anisotropy": point["anisotropy"], "alignment": point["alignment"],
                         "uniformity": point["uniformity"]})
    summary = [{"data": run["data"], "baseline": run["curve"][0]["spearman"],
                "best": max(p["spearman"] for p in run["curve"]), "final": run["curve"][-1]["spearman"],
                "s_to_+1": run["reach_s"][1.0], "s_to_+3": run["reach_s"][3.0], "s_to_+4": run["reach_s"][4.0],
                "s_per_step": run["seconds_per_step"], "eval_s_each": run["eval_s_median"]}
               for run in runs.values()]
    from bench.common import format_table

    print("\nSummary\n")
    print(format_table(summary))
    targets = []
    for which, run in runs.items():
        reached = run["reach_s"][3.0]
        targets.append(Target(f"training seconds to +3 Spearman points ({which})",
                              reached if not math.isnan(reached) else float("inf"), 60.0,
                              higher_is_better=False, unit=" s"))
    notes = [
        f"Evaluated on {eval_pairs.name} ({len(eval_pairs)} pairs) with "
        "simcse_core.evaluation.metrics.embedding_report; "
        "evaluation time is excluded from train_s and reported as eval_s_each.",
        f"TrainConfig(mode='unsup', steps={args.steps}, eval_every=0) otherwise defaults; encoder "
        "load_encoder('minilm', pooler='cls_before_pooler'), precision auto.",
        "s_to_+N = training seconds at the first evaluation point whose gain reached N (upper bound; "
        "inf/n/a = not reached).",
        "The app's own run: 250 steps in a 60 s budget (lr decays to 0 at step 250), evaluations on a sample of "
        "STS-B dev counted inside the budget.",
    ]
    return report(NAME, args, rows, targets=targets, notes=notes,
                  extra={"summary": summary, "runs": runs, "minutes": dict(zip(datasets, minutes))})


if __name__ == "__main__":
    main()

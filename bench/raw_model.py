"""The raw language model and the lesson's one-minute run from it, beside all-MiniLM-L6-v2.

Measures, on the full STS-B dev and test sets: Spearman x100 through the raw [CLS] vector and through mean
pooling, and anisotropy (mean cosine of distinct sentences; the paper's "cone"), for ``raw-bert`` and for
MiniLM; then the lesson's run (:data:`simcse_core.teaching.lessons.LESSON_RUN`, the paper's unsupervised
setting, on the lesson's sentences) from the raw model, its training time on this machine and what it
changed. Beside them, the paper's Table 5 training-free baselines in miniature (the static word-piece average
for "GloVe (avg.)", first-last average, whitening fitted on the lesson's sentences) with the paper's STS-B test
figure, and the singular-value spectrum of 1,000 lesson sentences before and after the run (Section 5).
Targets (issue 20): STS-B test gain >= +15 points, anisotropy at most half of its start.

    python bench/raw_model.py            # full
    python bench/raw_model.py --quick    # a tenth of the steps

Writes ``bench/results/raw_model.json``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `simcse_core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Target, make_parser, report, setup  # noqa: E402


def _scores(encoder, dev, test) -> dict[str, float]:
    from simcse_core.evaluation.metrics import embedding_report

    on_dev, on_test = embedding_report(encoder, dev), embedding_report(encoder, test)
    return {"stsb_dev": on_dev["spearman"], "stsb_test": on_test["spearman"], "anisotropy": on_dev["anisotropy"],
            "alignment": on_dev["alignment"], "uniformity": on_dev["uniformity"]}


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup(args)

    from simcse_core.evaluation.sets import load_stsb
    from simcse_core.model.catalogue import DEFAULT_MODEL, PREPARED_MODEL, ModelNotAvailableError
    from simcse_core.model.loading import load_encoder
    from simcse_core.teaching import baselines, lessons, table5
    from simcse_core.teaching.prepared import PREPARED_RUN
    from simcse_core.training.train import train

    dev, test = load_stsb("dev"), load_stsb("test")
    lesson_text = list(lessons.lesson_sentences())
    free = table5.training_free_rows(lessons.START_MODEL, dev, test, lesson_text[:10_000])
    rows = []
    for model in (lessons.START_MODEL, DEFAULT_MODEL):
        for pooler in ("cls_before_pooler", "mean", "avg_first_last"):
            scores = _scores(load_encoder(model, pooler=pooler), dev, test)
            rows.append({"model": model, "pooler": pooler, "when": "as shipped", **scores})
            print(rows[-1], flush=True)
    for row in free:
        if row.pooler in ("static", "whitened"):
            rows.append({"model": lessons.START_MODEL, "pooler": row.label, "when": "training-free baseline",
                         "stsb_dev": row.stsb_dev, "stsb_test": row.stsb_test})
    for row in rows:
        match = next((r for r in free if row["model"] == lessons.START_MODEL and row["pooler"] in (r.pooler, r.label)
                      and r.paper_row), None)
        if match is not None:
            row["paper_stsb_test"] = f"{match.paper_stsb_test:.2f} (Table 5, {match.paper_row})"

    config = lessons.LESSON_RUN
    if args.quick:
        config = replace(config, steps=max(2, config.steps // 10))
    encoder = load_encoder(lessons.START_MODEL, pooler=lessons.START_POOLER)
    spectrum_sentences = lesson_text[-1000:]
    spectrum_before = baselines.singular_spectrum(encoder.encode(spectrum_sentences))
    start = next(r for r in rows if r["model"] == lessons.START_MODEL and r["pooler"] == lessons.START_POOLER)
    wall = time.perf_counter()
    last = None
    for last in train(encoder, list(lessons.lesson_sentences()), replace(config, eval_every=0)):
        pass
    wall = time.perf_counter() - wall
    after = _scores(encoder, dev, test)
    spectrum_after = baselines.singular_spectrum(encoder.encode(spectrum_sentences))
    rows.append({"model": lessons.START_MODEL, "pooler": encoder.config.pooler,
                 "when": f"after the lesson run ({last.step} steps)", **after})
    live = table5.simcse_row(f"the lesson run ({last.step} steps, {last.train_s:.0f} s)", encoder.encode,
                             encoder.config.pooler, dev, test, note=lessons.RECIPE_NOTE)
    prepared_rows = []
    try:
        prepared = load_encoder(PREPARED_MODEL)
    except ModelNotAvailableError as err:
        print(f"prepared run not measured: {err}", flush=True)
    else:
        prepared_scores = _scores(prepared, dev, test)
        rows.append({"model": PREPARED_MODEL, "pooler": prepared.config.pooler,
                     "when": f"prepared run ({PREPARED_RUN.steps} steps)", **prepared_scores})
        prepared_rows.append(table5.simcse_row(f"the prepared run ({PREPARED_RUN.steps} steps)", prepared.encode,
                                               prepared.config.pooler, dev, test, note=lessons.RECIPE_NOTE))
    miniature = [*free, live, *prepared_rows]
    verdict = table5.verdict(miniature)
    print(verdict, flush=True)
    gain = after["stsb_test"] - start["stsb_test"]
    best_unwhitened = max((r for r in free if r.pooler in ("cls_before_pooler", "mean", "avg_first_last")),
                          key=lambda r: r.stsb_dev)
    whitened = next(r for r in free if r.pooler == "whitened")
    targets = [
        Target("lesson run: STS-B test over the best unwhitened reading (points)",
               after["stsb_test"] - best_unwhitened.stsb_test, 8.0),
        *([Target("prepared run: STS-B test over whitening (points)",
                  prepared_rows[0].stsb_test - whitened.stsb_test, 0.0)] if prepared_rows else []),
        Target("lesson run from raw-bert: STS-B test gain over its own start (points)", gain, 15.0),
        Target("lesson run: anisotropy after / before", after["anisotropy"] / start["anisotropy"], 0.5,
               higher_is_better=False),
    ]
    mlp = " (MLP in training only)" if config.pooler == "cls" and config.resolved_mlp_only_train else ""
    notes = [
        f"lesson run: {config.steps} steps of batch {config.batch_size}, lr {config.lr:g}, τ {config.temperature}, "
        f"dropout {config.dropout}, pooler {config.pooler}{mlp}, training length {config.max_length}, lr held "
        f"for the first {1 - config.decay_fraction:.0%} of the steps then decayed linearly, AdamW β2 "
        f"{config.adam_beta2:g}, on {len(lessons.lesson_sentences())} lesson sentences; {last.train_s:.1f} s of "
        f"training steps, {wall:.1f} s with set-up, on this machine",
        "STS-B dev and test: full sets (1,500 and 1,379 pairs); anisotropy: mean cosine of distinct dev sentences",
    ]
    notes.append(f"spectrum of 1,000 lesson sentences' unit vectors ({lessons.START_POOLER}), second / first "
                 f"singular value: "
                 f"{spectrum_before[1]:.3f} before, {spectrum_after[1]:.3f} after (flatter is larger)")
    notes.append(verdict)
    extra = {"table5": table5.as_records(miniature), "verdict": verdict, "spectrum_pooler": lessons.START_POOLER,
             "lesson_train_s": last.train_s, "lesson_wall_s": wall, "lesson_steps": last.step,
             "stsb_test_gain": gain, "spectrum_before": [round(float(v), 4) for v in spectrum_before[:32]],
             "spectrum_after": [round(float(v), 4) for v in spectrum_after[:32]]}
    columns = ["model", "pooler", "when", "stsb_dev", "stsb_test", "paper_stsb_test", "anisotropy", "alignment",
               "uniformity"]
    return report("raw_model", args, rows, targets=targets, notes=notes, columns=columns, extra=extra)


if __name__ == "__main__":
    main()

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

    from simcse_core.evaluation import paper
    from simcse_core.evaluation.sets import load_stsb
    from simcse_core.model.catalogue import DEFAULT_MODEL
    from simcse_core.model.encoder import load_encoder
    from simcse_core.teaching import baselines, lessons
    from simcse_core.training.train import train

    dev, test = load_stsb("dev"), load_stsb("test")
    stsb = paper.TABLE5_SETS.index("STS-B")
    paper_test = {"static word-piece average": paper.TABLE5_BASELINES["GloVe embeddings (avg.)"][stsb],
                  "avg_first_last": paper.TABLE5_BASELINES["BERTbase (first-last avg.)"][stsb],
                  "avg_first_last, whitened": paper.TABLE5_BASELINES["BERTbase-whitening"][stsb]}
    rows = []
    for model in (lessons.START_MODEL, DEFAULT_MODEL):
        for pooler in ("cls_before_pooler", "mean", "avg_first_last"):
            scores = _scores(load_encoder(model, pooler=pooler), dev, test)
            rows.append({"model": model, "pooler": pooler, "when": "as shipped", **scores})
            print(rows[-1], flush=True)
    raw_first_last = load_encoder(lessons.START_MODEL, pooler="avg_first_last")
    lesson_text = list(lessons.lesson_sentences())
    whitening = baselines.fit_whitening(raw_first_last.encode(lesson_text[:10_000]))
    for pooler, embed in (("static word-piece average", lambda s: baselines.static_average(raw_first_last, s)),
                          ("avg_first_last, whitened", lambda s: whitening(raw_first_last.encode(list(s))))):
        rows.append({"model": lessons.START_MODEL, "pooler": pooler, "when": "training-free baseline",
                     "stsb_dev": baselines.spearman_of(embed, dev), "stsb_test": baselines.spearman_of(embed, test)})
    for row in rows:
        if row["model"] == lessons.START_MODEL and row["pooler"] in paper_test:
            figure = paper_test[row["pooler"]]
            row["paper_stsb_test"] = f"{figure.value:.2f} ({figure.table}, {figure.row})"

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
    gain = after["stsb_test"] - start["stsb_test"]
    targets = [
        Target("lesson run from raw-bert: STS-B test gain (points)", gain, 15.0),
        Target("lesson run: anisotropy after / before", after["anisotropy"] / start["anisotropy"], 0.5,
               higher_is_better=False),
    ]
    mlp = " (MLP in training only)" if config.pooler == "cls" and config.resolved_mlp_only_train else ""
    notes = [
        f"lesson run: {config.steps} steps of batch {config.batch_size}, lr {config.lr:g}, τ {config.temperature}, "
        f"dropout {config.dropout}, pooler {config.pooler}{mlp}, training length "
        f"{config.max_length}, on {len(lessons.lesson_sentences())} lesson sentences; {last.train_s:.1f} s of "
        f"training steps, {wall:.1f} s with set-up, on this machine",
        "STS-B dev and test: full sets (1,500 and 1,379 pairs); anisotropy: mean cosine of distinct dev sentences",
    ]
    notes.append(f"spectrum of 1,000 lesson sentences' unit [CLS] vectors, second / first singular value: "
                 f"{spectrum_before[1]:.3f} before, {spectrum_after[1]:.3f} after (flatter is larger)")
    extra = {"lesson_train_s": last.train_s, "lesson_wall_s": wall, "lesson_steps": last.step,
             "stsb_test_gain": gain, "spectrum_before": [round(float(v), 4) for v in spectrum_before[:32]],
             "spectrum_after": [round(float(v), 4) for v in spectrum_after[:32]]}
    columns = ["model", "pooler", "when", "stsb_dev", "stsb_test", "paper_stsb_test", "anisotropy", "alignment",
               "uniformity"]
    return report("raw_model", args, rows, targets=targets, notes=notes, columns=columns, extra=extra)


if __name__ == "__main__":
    main()

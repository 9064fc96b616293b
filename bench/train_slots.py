"""How many fine-tunes should train at once on this machine? (the app's ``StudioConfig.training_slots``)

Runs ``--runs`` identical short unsupervised fine-tunes of the bundled model (fixed steps, no time budget, no
evaluation) two ways, interleaved over ``--repeats`` rounds: one after another (1 slot) and all at once in
threads (``--runs`` slots), each in a thread at nice 10 as the app trains. Reports the wall time of the
whole batch of runs and the time until the *first* run finishes — what a waiting visitor feels.

    python -m bench.train_slots            # 2 runs x 12 steps, 2 rounds
"""

from __future__ import annotations

import statistics
import threading
import time

from bench.common import make_parser, report, setup


def _one_run(encoder, sentences: list[str], steps: int, batch_size: int, finished: list[float], t0: float) -> None:
    from simcse_core.runtime import lower_thread_priority
    from simcse_core.training.train import TrainConfig, train

    lower_thread_priority(10)
    config = TrainConfig(steps=steps, batch_size=batch_size, pooler="cls_before_pooler", eval_every=0)
    for _ in train(encoder.copy(), sentences, config):
        pass
    finished.append(time.perf_counter() - t0)


def batch_of_runs(encoder, sentences: list[str], runs: int, steps: int, batch_size: int,
                  concurrent: bool) -> tuple[float, float]:
    """(seconds until every run finished, seconds until the first finished)."""
    finished: list[float] = []
    t0 = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=_one_run, args=(encoder, sentences, steps, batch_size, finished, t0))
                   for _ in range(runs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for _ in range(runs):
            _one_run(encoder, sentences, steps, batch_size, finished, t0)
    return max(finished), min(finished)


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs started together")
    parser.add_argument("--steps", type=int, default=12, help="steps per run")
    args = parser.parse_args(argv)
    setup(args)
    from simcse_core.data import load_labelled_sentences
    from simcse_core.model.loading import load_encoder
    from simcse_core.paths import ASSETS_DIR

    repeats = args.repeats or (1 if args.quick else 2)
    steps = 3 if args.quick else args.steps
    encoder = load_encoder("minilm", pooler="cls_before_pooler")
    sentences = load_labelled_sentences(ASSETS_DIR / "corpus.csv")[0]
    batch_of_runs(encoder, sentences, 1, 2, 64, concurrent=False)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"1 slot (one after another)": [],
                                                   f"{args.runs} slots (all at once)": []}
    for _ in range(repeats):
        for label in times:
            times[label].append(batch_of_runs(encoder, sentences, args.runs, steps, 64,
                                              concurrent=not label.startswith("1 ")))
    rows = []
    for label, samples in times.items():
        total = statistics.median(t for t, _ in samples)
        first = statistics.median(f for _, f in samples)
        rows.append({"slots": label, "runs": args.runs, "steps_each": steps, "all_done_s": round(total, 1),
                     "first_done_s": round(first, 1),
                     "steps_per_s": round(args.runs * steps / total, 2)})
    one, many = rows
    notes = [f"{args.runs} at once finish all runs in {many['all_done_s'] / one['all_done_s']:.2f}x the time of one "
             f"after another; the first visitor waits {many['first_done_s'] / one['first_done_s']:.2f}x as long.",
             "Median of interleaved rounds on a CPU shared with other jobs."]
    report("train_slots", args, rows, notes=notes)


if __name__ == "__main__":
    main()

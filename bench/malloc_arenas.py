"""Memory a threaded server keeps after its work, by the number of glibc malloc arenas it may use.

glibc gives each new thread its own arena (up to 8 per core) and ``malloc_trim`` returns only whole free pages of
each, so the small objects left alive in many arenas pin much memory a busy server freed. Each contender runs in a
fresh process (``--child``) with ``MALLOC_ARENA_MAX`` set (none: glibc's default): three rounds of one lesson run
of ``--steps`` steps from ``raw-bert`` in a thread while 12 request threads encode 400 small batches (70 % through
all-MiniLM-L6-v2, 30 % through raw-bert). After each round: the resident memory it keeps once the work is freed
(``gc`` and ``malloc_trim``) above the same process after loading its models, and the round's time; over all
rounds, the requests' p50 and p95 latency. The app limits itself to ``simcse_core.memory.MALLOC_ARENAS``.

Run ``python -m bench.malloc_arenas --help``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.common import REPO, Target, make_parser, report, rss_mib, settled_rss_mib, setup

NAME = "malloc_arenas"
WORDS = "the a man dog plays guitar park market fell sharply today someone instrument".split()
REQUEST_THREADS = 12
REQUESTS_PER_ROUND = 400



def _child(steps: int, rounds: int) -> dict:
    import random
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    import numpy as np

    from simcse_core import load_encoder, train
    from simcse_core.teaching import lessons

    minilm, raw = load_encoder("minilm"), load_encoder(lessons.START_MODEL, pooler=lessons.START_POOLER)
    for encoder in (minilm, raw):
        encoder.encode(["warm up"])
    sentences = list(lessons.lesson_sentences())
    start = settled_rss_mib()
    latencies: list[float] = []

    def request(seed: int) -> None:
        rng = random.Random(seed)
        encoder = minilm if rng.random() < 0.7 else raw
        batch = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 12))]
        began = time.perf_counter()
        encoder.encode(batch)
        latencies.append(time.perf_counter() - began)

    def lesson_run(seed: int) -> None:
        config = replace(lessons.LESSON_RUN, steps=steps, batch_size=64, eval_every=0, seed=seed)
        for _ in train(raw.copy(), sentences, config):
            pass

    kept, seconds, peak = [], [], start
    with ThreadPoolExecutor(REQUEST_THREADS) as pool:
        for k in range(rounds):
            began = time.perf_counter()
            trainer = threading.Thread(target=lesson_run, args=(k,))
            trainer.start()
            list(pool.map(request, range(k * REQUESTS_PER_ROUND, (k + 1) * REQUESTS_PER_ROUND)))
            trainer.join()
            seconds.append(time.perf_counter() - began)
            peak = max(peak, rss_mib())
            kept.append(settled_rss_mib() - start)
    return {"kept_mib": kept, "seconds": seconds, "peak_mib": peak - start,
            "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95))}


def _run_child(arenas: int | None, steps: int, rounds: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if arenas is not None:
        env["MALLOC_ARENA_MAX"] = str(arenas)
    out = subprocess.run([sys.executable, "-m", "bench.malloc_arenas", "--child", "--steps", str(steps),
                          "--rounds", str(rounds)], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help="(internal) run one contender and print its result")
    parser.add_argument("--steps", type=int, default=40, help="lesson-run steps a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds a contender")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.steps, args.rounds)))
        return {}
    setup(args)
    from simcse_core.memory import MALLOC_ARENAS

    steps, rounds = (5, 1) if args.quick else (args.steps, args.rounds)
    rows, measured = [], {}
    for arenas in (None, 4, MALLOC_ARENAS):
        result = measured[arenas] = _run_child(arenas, steps, rounds)
        rows.append({"malloc_arenas": "glibc default (8 per core)" if arenas is None else arenas,
                     "kept_mib_after_each": [round(m) for m in result["kept_mib"]],
                     "peak_above_start_mib": round(result["peak_mib"]),
                     "seconds_each": [round(s, 1) for s in result["seconds"]],
                     "request_p50_s": round(result["p50_s"], 4), "request_p95_s": round(result["p95_s"], 4)})
    plain, ours = measured[None], measured[MALLOC_ARENAS]
    kept_ratio = ours["kept_mib"][-1] / max(plain["kept_mib"][-1], 1e-9)
    time_ratio = sum(ours["seconds"]) / sum(plain["seconds"])
    p95_ratio = ours["p95_s"] / plain["p95_s"]
    targets = [Target(f"memory kept, {MALLOC_ARENAS} arenas vs glibc's default", round(kept_ratio, 3), 0.9,
                      higher_is_better=False),
               Target(f"time of the rounds, {MALLOC_ARENAS} arenas vs glibc's default", round(time_ratio, 3), 1.1,
                      higher_is_better=False),
               Target(f"request p95, {MALLOC_ARENAS} arenas vs glibc's default", round(p95_ratio, 3), 1.25,
                      higher_is_better=False)]
    notes = [f"{rounds} rounds: a lesson run of {steps} steps at batch 64 in one thread, {REQUESTS_PER_ROUND} "
             f"requests of 1-12 sentences of 1-30 words over {REQUEST_THREADS} threads; bf16 autocast where the CPU "
             "has it. Each contender in a fresh process, one after the other.",
             "Memory kept: resident size after the work is freed (gc, malloc_trim), above the same process after "
             "loading both models."]
    return report(NAME, args, rows, targets=targets, notes=notes)


if __name__ == "__main__":
    main()

"""Memory per visitor: server RSS with 1, 10 and 30 sessions each holding a fine-tuned copy of a model.

In one process, as the app does: the shared base encoder (``--model``: all-MiniLM-L6-v2 by default, [CLS] state,
precision auto; ``raw-bert``, the lessons' start, through the lesson's pooler) is loaded once; each "session"
takes ``Encoder.copy()`` and fine-tunes it with ``simcse_core.training.train`` (a short run: ``--steps`` steps
of batch ``--batch-size`` on STS-B train sentences), then keeps the copy. The trainer's
optimizer state and gradients live only while it runs (AdamW state is local to the run; gradients are set to
None at the end), so what a session keeps is the copy's weights; the app then keeps them as
``Encoder.compact(base)`` leaves them (bf16, what inference reads, with the word-embedding rows training did not
change read from the base model), after saving the float32 model for download.
Both ways are measured in one run: "compact" (the app) and "fp32" (the copy as trained and not used for
inference: what the app kept before). Resident set size (RSS, from psutil) is read after a garbage collection. Run
``python -m bench.session_memory --help``.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from bench.common import Target, load_stsb_split, make_parser, report, setup

NAME = "session_memory"
MB = 1024 * 1024


def _rss_mb() -> float:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / MB


TARGET_MB = {"minilm": 150, "raw-bert": 50}  # per kept run (issue 26)


def measure(keep: str, checkpoints: list[int], steps: int, batch_size: int, threads: int | None,
            model: str = "minilm") -> dict[str, Any]:
    """In a fresh process: RSS rows of ``checkpoints[-1]`` sessions each keeping a fine-tuned copy as ``keep``."""
    import torch

    from simcse_core import load_encoder
    from simcse_core.training.train import TrainConfig, train

    if threads:
        torch.set_num_threads(threads)
    sentences = load_stsb_split("train").sentences()[:512]
    from simcse_core.teaching import lessons

    pooler = lessons.START_POOLER if model == lessons.START_MODEL else "cls_before_pooler"
    base = load_encoder(model, pooler=pooler, device="cpu")
    base.encode(sentences[:64])  # the server has answered a request before anyone trains
    start = _rss_mb()
    config = TrainConfig(steps=steps, batch_size=batch_size, eval_every=0)
    sessions, rows = [], []
    for n in range(1, checkpoints[-1] + 1):
        copy = base.copy()
        for _ in train(copy, sentences, config):
            pass
        if keep == "compact":  # as the app keeps a run (after writing its float32 zip); the visitor compares it
            copy.compact(base=base)
            copy.encode(sentences[:16])
        sessions.append(copy)
        if n in checkpoints:
            rss = _rss_mb()
            rows.append({"keep": keep, "sessions": n, "rss_mb": rss, "added_mb": rss - start,
                         "mb_per_session": (rss - start) / n})
            print(f"  {keep}: {n} session(s): RSS {rss:.0f} MB (+{rss - start:.0f} MB)", flush=True)
    weights_mb = sum(p.numel() * p.element_size() for p in base.parameters()) / MB
    return {"rows": rows, "base_mb": start, "weights_mb": weights_mb}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import multiprocessing

    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,10,30", help="session counts at which RSS is read")
    # 8 x 64 = the 512 sentences once, as the app's run covers its 400 sample sentences (the rows it changes)
    parser.add_argument("--steps", type=int, default=8, help="fine-tuning steps per session")
    parser.add_argument("--batch-size", type=int, default=64, help="fine-tuning batch size per session")
    parser.add_argument("--model", default="minilm", choices=sorted(TARGET_MB), help="the base model of the runs")
    args = parser.parse_args(argv)
    setup(args)
    checkpoints = sorted({int(n) for n in args.sessions.split(",")})
    if args.quick:
        checkpoints = [n for n in checkpoints if n <= 10] or [1]
    rows, per_session, runs = [], {}, {}
    context = multiprocessing.get_context("spawn")  # each way in a fresh process: freed memory is not reused
    for keep in ("compact", "fp32"):
        with context.Pool(1) as pool:
            runs[keep] = pool.apply(measure, (keep, checkpoints, args.steps, args.batch_size, args.threads,
                                              args.model))
        kept = runs[keep]["rows"]
        first, last = kept[0], kept[-1]
        per_session[keep] = ((last["rss_mb"] - first["rss_mb"]) / max(1, last["sessions"] - first["sessions"])
                             if len(kept) > 1 else last["mb_per_session"])
        rows += kept
    targets = [Target(f"server RSS per session holding a fine-tuned copy of {args.model} (MB)",
                      per_session["compact"], TARGET_MB[args.model], higher_is_better=False, unit=" MB"),
               Target("per-session memory, kept as trained (fp32) / compact", per_session["fp32"]
                      / max(per_session["compact"], 1e-9), 1.5, unit="x")]
    notes = [f"base process after loading and one encode: {runs['compact']['base_mb']:.0f} MB RSS; the model's "
             f"weights are {runs['compact']['weights_mb']:.0f} MB (fp32); a compact copy holds them in bf16, and of "
             "the word embeddings only the rows its training changed.",
             f"each session: Encoder.copy() + {args.steps} unsup steps of batch {args.batch_size}; per-session "
             "figure = RSS growth between the first and last checkpoint / sessions added; each way in its own "
             "process."]
    name = NAME if args.model == "minilm" else f"{NAME}_{args.model}"
    return report(name, args, rows, targets=targets, notes=notes,
                  extra={"weights_mb": runs["compact"]["weights_mb"], "mb_per_session": per_session})


if __name__ == "__main__":
    main()

"""Training speed: unsupervised SimCSE steps/s, simcse_core.train vs sentence-transformers' MNRL trainer.

Both train the bundled all-MiniLM-L6-v2 (mean pooling, dropout 0.1) on STS-B train sentences with batch 64,
max length 32, lr 3e-5, temperature 0.05 (``MultipleNegativesRankingLoss(scale=20)``, scale = 1/τ), AdamW,
linear schedule, gradient clipping 1.0. sentence-transformers trains on (s, s) pairs, which is unsupervised
SimCSE: the two copies differ only by their dropout masks.

Steady-state seconds per step exclude setup: simcse_core's from ``TrainEvent.train_s`` (step time only),
sentence-transformers' from a ``TrainerCallback`` timing consecutive ``on_step_end`` calls. The first
``--warmup`` steps of each block are dropped. Blocks are run in turns (``--rounds``) so machine noise hits
every contender; the median per-step time is quoted. FLOP/s: matmul FLOPs of forward + backward (3 ×
forward) × 2 views on padded random batches, against this machine's matmul peak measured in the same run.
Run ``python -m bench.train_speed --help``.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from bench.common import (
    Target,
    TransformerShape,
    approx_train_flops,
    load_stsb_split,
    make_parser,
    matmul_peaks,
    padded_lengths,
    ratio,
    report,
    setup,
    train_step_flops,
)

NAME = "train_speed"
BATCH, MAX_LENGTH, LR, TEMPERATURE = 64, 32, 3e-5, 0.05


class _OursBlocks:
    """simcse_core.train as a resumable source of per-step seconds (one generator for all rounds)."""

    def __init__(self, precision: str, sentences: list[str]) -> None:
        from simcse_core import load_encoder
        from simcse_core.train import TrainConfig, train

        self.encoder = load_encoder("minilm", pooler="mean", device="cpu", precision=precision)
        config = TrainConfig(mode="unsup", steps=100_000, batch_size=BATCH, lr=LR, temperature=TEMPERATURE,
                             dropout=0.1, max_length=MAX_LENGTH, eval_every=0)
        self.events: Iterator = train(self.encoder, sentences, config, eval_pairs=None)
        next(self.events)  # step 0: setup, no training
        self.last_train_s = 0.0

    def block(self, steps: int) -> list[float]:
        times = []
        for _ in range(steps):
            event = next(self.events)
            times.append(event.train_s - self.last_train_s)
            self.last_train_s = event.train_s
        return times

    def close(self) -> None:
        self.events.close()  # type: ignore[attr-defined]


class _SentenceTransformersBlocks:
    """sentence-transformers' SentenceTransformerTrainer + MultipleNegativesRankingLoss on (s, s) pairs."""

    def __init__(self, sentences: list[str], bf16: bool) -> None:
        from sentence_transformers import SentenceTransformer

        from simcse_core.models import packaged_model_dir

        self.model = SentenceTransformer(str(packaged_model_dir()), device="cpu")
        self.model.max_seq_length = MAX_LENGTH
        self.sentences = sentences
        self.bf16 = bf16

    def block(self, steps: int) -> list[float]:
        import time

        from datasets import Dataset
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from transformers import TrainerCallback

        ends: list[float] = []

        class StepClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003 (HF signature)
                ends.append(time.perf_counter())

        data = Dataset.from_dict({"anchor": self.sentences, "positive": self.sentences})
        with tempfile.TemporaryDirectory() as tmp:
            args = SentenceTransformerTrainingArguments(
                output_dir=tmp, per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=steps + 1,
                warmup_steps=0, lr_scheduler_type="linear", weight_decay=0.0, max_grad_norm=1.0,
                save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none", seed=42,
                dataloader_drop_last=True, use_cpu=True, bf16=self.bf16, disable_tqdm=True)
            trainer = SentenceTransformerTrainer(
                model=self.model, args=args, train_dataset=data,
                loss=MultipleNegativesRankingLoss(self.model, scale=1.0 / TEMPERATURE), callbacks=[StepClock()])
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
            trainer.train()
        return list(np.diff(ends))  # `steps` intervals: the first step (no previous end) is dropped

    def close(self) -> None:
        pass


def _flops_per_step(shape: TransformerShape, tokenizer, sentences: Sequence[str], samples: int) -> dict[str, float]:
    """Mean FLOPs of a training step over random batches of 64 (padded to each batch's longest)."""
    lengths = [len(x) for x in tokenizer(list(sentences), truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    rng = np.random.default_rng(0)
    exact, approx, longest = [], [], []
    for _ in range(samples):
        batch = rng.choice(len(lengths), size=BATCH, replace=False)
        padded = padded_lengths([lengths[i] for i in batch], BATCH)
        exact.append(train_step_flops(shape, padded, views=2))
        approx.append(approx_train_flops(shape.matmul_params, sum(padded), views=2))
        longest.append(padded[0])
    return {"flops_per_step": float(np.mean(exact)), "approx_6NT_flops_per_step": float(np.mean(approx)),
            "mean_padded_length": float(np.mean(longest))}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per block (default 8; quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps at the start (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="blocks per contender, in turns (default 2)")
    parser.add_argument("--no-st-bf16", action="store_true", help="skip sentence-transformers with bf16=True")
    args = parser.parse_args(argv)
    setup(args)
    import torch

    steps = args.steps or (3 if args.quick else 8)
    warmup = args.warmup if args.warmup is not None else 2
    rounds = args.rounds or args.repeats or (1 if args.quick else 2)
    sentences = load_stsb_split("train").sentences()
    if args.quick:
        sentences = sentences[:2000]
    peaks = matmul_peaks(quick=args.quick)
    print(f"{len(sentences)} training sentences; {rounds} round(s) of {warmup}+{steps} steps per contender; "
          f"torch threads {torch.get_num_threads()}")

    from simcse_core.runtime import resolve_precision

    auto_dtype = resolve_precision("auto", torch.device("cpu"))
    ours_default = "simcse_core.train, precision auto (bf16 autocast)" if auto_dtype is not None else \
        "simcse_core.train, precision auto (fp32)"
    st_fp32 = "sentence-transformers MNRL trainer (fp32, default)"
    contenders: dict[str, Any] = {
        st_fp32: _SentenceTransformersBlocks(sentences, bf16=False),
        ours_default: _OursBlocks("auto", sentences),
    }
    if auto_dtype is not None:
        contenders["simcse_core.train, precision fp32"] = _OursBlocks("fp32", sentences)
        if not args.no_st_bf16:
            contenders["sentence-transformers MNRL trainer (bf16=True)"] = _SentenceTransformersBlocks(
                sentences, bf16=True)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name, source in contenders.items():
            if isinstance(source, _OursBlocks):
                block = source.block(steps + (warmup if r == 0 else 0))
                times[name] += block[warmup:] if r == 0 else block
            else:  # a new trainer each block: its first steps warm up again
                times[name] += source.block(steps + warmup)[warmup:]
            print(f"  round {r + 1}: {name}: median {statistics.median(times[name]):.3f} s/step")
    for source in contenders.values():
        source.close()

    probe = contenders[ours_default].encoder
    shape = TransformerShape.of(probe.model)
    flops = _flops_per_step(shape, probe.tokenizer, sentences, samples=200)
    st_median = statistics.median(times[st_fp32])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        bf16 = "bf16" in name
        rows.append({
            "contender": name,
            "s_per_step": med,
            "steps_per_s": 1.0 / med,
            "speedup_vs_st_fp32": ratio(st_median, med),
            "p95_s": float(np.percentile(ts, 95)),
            "timed_steps": len(ts),
            "gflops_per_s": flops["flops_per_step"] / med / 1e9,
            "pct_of_peak": 100.0 * flops["flops_per_step"] / med / peaks["bf16_flops" if bf16 else "fp32_flops"],
        })
    by_name = {r["contender"]: r for r in rows}
    targets = [Target("simcse_core default / sentence-transformers (fp32) step time", by_name[ours_default][
        "speedup_vs_st_fp32"], 1.3, unit="x")]
    if "sentence-transformers MNRL trainer (bf16=True)" in by_name:
        st_bf16 = by_name["sentence-transformers MNRL trainer (bf16=True)"]["s_per_step"]
        targets.append(Target("simcse_core default / sentence-transformers (bf16=True) step time",
                              ratio(st_bf16, by_name[ours_default]["s_per_step"]), 1.3, unit="x"))
    notes = [
        f"batch {BATCH}, max length {MAX_LENGTH}, lr {LR}, τ {TEMPERATURE} (MNRL scale {1 / TEMPERATURE:g}), "
        f"{len(sentences)} STS-B train sentences; medians over {rounds} round(s) x {steps} steps.",
        f"FLOPs per step (matmuls, fwd+bwd, 2 views, padded, mean of 200 random batches): "
        f"{flops['flops_per_step'] / 1e9:.1f} GFLOP; 6 x params x tokens x 2: "
        f"{flops['approx_6NT_flops_per_step'] / 1e9:.1f} GFLOP (params = {shape.matmul_params / 1e6:.1f}M "
        f"non-embedding).",
        f"matmul peak: fp32 {peaks['fp32_flops'] / 1e9:.0f}, bf16 {peaks['bf16_flops'] / 1e9:.0f} GFLOP/s.",
        "simcse_core encodes both views in one call on the batch stacked on itself (2B rows); "
        "sentence-transformers makes one call per column (anchor, positive).",
    ]
    return report(NAME, args, rows, targets=targets, notes=notes,
                  extra={"matmul_peak": peaks, "flops": flops, "step_times": times})


if __name__ == "__main__":
    main()

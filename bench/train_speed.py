"""Training speed: unsupervised SimCSE steps/s, simcse_core.training.train vs sentence-transformers' MNRL trainer.

simcse_core trains BERT models on real tokens only (``simcse_core.model.unpadded``); the contender
"simcse_core.training.train padded" is the same trainer on Hugging Face's padded forward (the path before), and
``--quality`` (on by default) trains 100 steps both ways and compares STS-B dev Spearman. ``--attention``
(on by default) times the attention variants considered for the unpadded path, forward + backward. (One SDPA
over all N packed tokens with a block-diagonal (N, N) mask was also tried: 6x slower than the padded model,
as it scores every token against every other; it is left out of the timed variants.)

Both train the bundled all-MiniLM-L6-v2 (mean pooling, dropout 0.1) on STS-B train sentences with batch 64,
max length 32, lr 3e-5, temperature 0.05 (``MultipleNegativesRankingLoss(scale=20)``, scale = 1/τ), AdamW,
linear schedule, gradient clipping 1.0. sentence-transformers trains on (s, s) pairs, which is unsupervised
SimCSE: the two copies differ only by their dropout masks.

Steady-state seconds per step exclude setup: simcse_core's from ``TrainEvent.train_s`` (step time only),
sentence-transformers' from a ``TrainerCallback`` timing consecutive ``on_step_end`` calls. The first
``--warmup`` steps of each block are dropped. Blocks are run in turns (``--rounds``) so machine noise hits
every contender; the median per-step time is quoted, the minimum beside it (the CPU is shared with other
jobs: the minimum is the least disturbed step). FLOP/s: matmul FLOPs of forward + backward (3 ×
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
    interleaved_repeats,
    load_stsb_split,
    make_parser,
    matmul_peaks,
    padded_lengths,
    ratio,
    report,
    setup,
    train_step_flops,
)
from simcse_core.training.config import setting_default

NAME = "train_speed"
# The paper's unsupervised settings, as TrainConfig defaults them (sentence-transformers gets scale = 1/τ).
BATCH, MAX_LENGTH, LR, TEMPERATURE = (setting_default(name) for name in ("batch_size", "max_length", "lr",
                                                                          "temperature"))


class _OursBlocks:
    """simcse_core.training.train as a resumable source of per-step seconds (one generator for all rounds)."""

    def __init__(self, precision: str, sentences: list[str], unpadded: bool = True) -> None:
        from simcse_core import load_encoder
        from simcse_core.training.train import TrainConfig, train

        self.encoder = load_encoder("minilm", pooler="mean", device="cpu", precision=precision)
        self.encoder.unpadded_training = unpadded
        config = TrainConfig(mode="unsup", steps=100_000, eval_every=0)  # the paper's settings otherwise
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

        from simcse_core.model.catalogue import packaged_model_dir

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
    exact, real, approx, longest, mean_real = [], [], [], [], []
    for _ in range(samples):
        batch = rng.choice(len(lengths), size=BATCH, replace=False)
        padded = padded_lengths([lengths[i] for i in batch], BATCH)
        exact.append(train_step_flops(shape, padded, views=2))
        real.append(train_step_flops(shape, [lengths[i] for i in batch], views=2))
        approx.append(approx_train_flops(shape.matmul_params, sum(padded), views=2))
        longest.append(padded[0])
        mean_real.append(np.mean([lengths[i] for i in batch]))
    return {"flops_per_step": float(np.mean(exact)), "real_token_flops_per_step": float(np.mean(real)),
            "approx_6NT_flops_per_step": float(np.mean(approx)), "mean_padded_length": float(np.mean(longest)),
            "mean_real_length": float(np.mean(mean_real))}


def _attention_variants() -> dict[str, Any]:
    """Attention over packed tokens, the candidates for simcse_core.model.unpadded (the first is the one it uses)."""
    import torch
    from torch.nn import functional as F

    from simcse_core.model.unpadded import padded_attention


    def length_groups(q, k, v, packing, p, scale):  # one unmasked SDPA per distinct sentence length
        lengths = torch.bincount(packing.index // packing.length, minlength=packing.batch)  # (B,)
        starts = torch.cumsum(lengths, 0) - lengths  # (B,)
        pieces, where = [], []
        for n in torch.unique(lengths).tolist():
            rows = (lengths == n).nonzero().squeeze(1)
            idx = (starts[rows][:, None] + torch.arange(n)[None]).reshape(-1)  # (rows * n,)
            q_, k_, v_ = (t.index_select(0, idx).view(len(rows), n, *t.shape[1:]).transpose(1, 2)
                          for t in (q, k, v))  # (rows, heads, n, d)
            out = F.scaled_dot_product_attention(q_, k_, v_, dropout_p=p, scale=scale)
            pieces.append(out.transpose(1, 2).reshape(-1, *q.shape[1:]))
            where.append(idx)
        return torch.cat(pieces).index_select(0, torch.argsort(torch.cat(where)))

    def jagged(q, k, v, packing, p, scale):  # nested (jagged) tensors, SDPA per sentence inside torch
        lengths = torch.bincount(packing.index // packing.length, minlength=packing.batch)
        offsets = torch.cat([lengths.new_zeros(1), torch.cumsum(lengths, 0)])  # (B + 1,)
        q_, k_, v_ = (torch.nested.nested_tensor_from_jagged(t, offsets).transpose(1, 2) for t in (q, k, v))
        return F.scaled_dot_product_attention(q_, k_, v_, dropout_p=p, scale=scale).transpose(1, 2).values()

    def padded_sdpa(q, k, v, packing, p, scale):  # re-pad, scaled_dot_product_attention with the key mask
        qkv = packing.pad(torch.stack([q, k, v], dim=1))  # (B, T, 3, heads, d)
        q_, k_, v_ = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, T, d)
        out = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=packing.key_mask, dropout_p=p, scale=scale)
        return packing.unpad(out.transpose(1, 2))

    return {"re-pad + eager attention (used)": padded_attention, "re-pad + masked SDPA": padded_sdpa,
            "SDPA per length group": length_groups, "nested jagged SDPA": jagged}


def _time_attention(sentences: list[str], rounds: int, batches: int) -> list[dict[str, Any]]:
    """Forward + backward of a stacked 2 x 64 batch (bf16 autocast where fast): padded model vs variants."""
    import torch

    from simcse_core import load_encoder
    from simcse_core.model.unpadded import pooled_forward
    from simcse_core.training.losses import simcse_loss

    encoder = load_encoder("minilm", pooler="mean", device="cpu")
    encoder.train()
    rng = np.random.default_rng(0)
    data = []
    for _ in range(batches):
        tokens = encoder.tokenize([sentences[i] for i in rng.choice(len(sentences), BATCH, replace=False)],
                                  token_limit=MAX_LENGTH)
        data.append({key: torch.cat([value, value]) for key, value in tokens.items()})  # (2B, T)
    dtype = encoder.autocast_dtype

    def padded(batch):
        out = encoder.model(**batch, return_dict=True)
        return encoder.pooler(out.last_hidden_state, batch["attention_mask"])

    def runner(forward):
        def run() -> None:
            for batch in data:
                with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                    z1, z2 = forward(batch).float().chunk(2)  # (B, D) each
                simcse_loss(z1, z2, temperature=TEMPERATURE).backward()
            encoder.zero_grad(set_to_none=True)
        return run

    fns = {"Hugging Face padded forward": runner(padded)}
    for name, attention in _attention_variants().items():
        fns[f"unpadded, {name}"] = runner(lambda b, a=attention: pooled_forward(encoder.model, encoder.pooler, b, a))
    times = interleaved_repeats(fns, repeats=rounds, warmup=1)
    reference = min(times["Hugging Face padded forward"])
    return [{"forward_backward": name, "min_s_per_batch": min(ts) / batches,
             "median_s_per_batch": statistics.median(ts) / batches, "speedup_vs_padded_min": ratio(reference, min(ts))}
            for name, ts in times.items()]


def _dev_after_steps(steps: int, unpadded: bool, quick: bool) -> dict[str, float]:
    """STS-B dev Spearman of the app's default fine-tune ([CLS] state, TrainConfig defaults) after ``steps``."""
    from simcse_core import load_encoder
    from simcse_core.evaluation.sets import ScoredPairs
    from simcse_core.training.train import TrainConfig, train

    dev = load_stsb_split("dev")
    n = 300 if quick else len(dev.scores)
    pairs = ScoredPairs(name=dev.name, sentence1=dev.sentence1[:n], sentence2=dev.sentence2[:n],
                        scores=dev.scores[:n], source="shared STS-B copy", is_benchmark=True)
    encoder = load_encoder("minilm", pooler="cls_before_pooler", device="cpu")
    encoder.unpadded_training = unpadded
    events = list(train(encoder, load_stsb_split("train").sentences(), TrainConfig(steps=steps, eval_every=0),
                        eval_pairs=pairs))
    return {"before": events[0].metrics["spearman"], "after": events[-1].metrics["spearman"],  # x100 already
            "train_s": events[-1].train_s}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per block (default 8; quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps at the start (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="blocks per contender, in turns (default 2)")
    parser.add_argument("--no-st-bf16", action="store_true", help="skip sentence-transformers with bf16=True")
    parser.add_argument("--no-quality", action="store_true", help="skip STS-B dev after 100 steps, both paths")
    parser.add_argument("--no-attention", action="store_true", help="skip timing the attention variants")
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
    auto = "bf16 autocast" if auto_dtype is not None else "fp32"
    ours_default = f"simcse_core.training.train, precision auto ({auto}), real tokens only"
    ours_padded = f"simcse_core.training.train, precision auto ({auto}), padded (before #11)"
    st_fp32 = "sentence-transformers MNRL trainer (fp32, default)"
    st_bf16 = "sentence-transformers MNRL trainer (bf16=True)"
    contenders: dict[str, Any] = {
        st_fp32: _SentenceTransformersBlocks(sentences, bf16=False),
        ours_default: _OursBlocks("auto", sentences),
        ours_padded: _OursBlocks("auto", sentences, unpadded=False),
    }
    if auto_dtype is not None:
        contenders["simcse_core.training.train, precision fp32, real tokens only"] = _OursBlocks("fp32", sentences)
        if not args.no_st_bf16:
            contenders[st_bf16] = _SentenceTransformersBlocks(sentences, bf16=True)
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
    st_median, st_min = statistics.median(times[st_fp32]), min(times[st_fp32])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        bf16 = "bf16" in name
        # FLOPs a padded step does (the work of the padded model; the unpadded path skips part of it)
        rows.append({
            "contender": name,
            "s_per_step": med,
            "min_s_per_step": min(ts),
            "steps_per_s": 1.0 / med,
            "speedup_vs_st_fp32": ratio(st_median, med),
            "speedup_vs_st_fp32_min": ratio(st_min, min(ts)),
            "p95_s": float(np.percentile(ts, 95)),
            "timed_steps": len(ts),
            "padded_gflops_per_s": flops["flops_per_step"] / med / 1e9,
            "real_token_gflops_per_s": flops["real_token_flops_per_step"] / med / 1e9,
            "pct_of_peak_real_tokens": 100.0 * flops["real_token_flops_per_step"] / med / peaks[
                "bf16_flops" if bf16 else "fp32_flops"],
        })
    by_name = {r["contender"]: r for r in rows}
    default = by_name[ours_default]
    targets = [
        Target("simcse_core default / sentence-transformers (fp32) step time", default["speedup_vs_st_fp32"], 3.0,
               unit="x"),
        Target("simcse_core default / its padded path (same precision) step time",
               ratio(by_name[ours_padded]["s_per_step"], default["s_per_step"]), 1.0, unit="x"),
    ]
    if st_bf16 in by_name:
        targets.insert(1, Target("simcse_core default / sentence-transformers (bf16=True) step time",
                                 ratio(by_name[st_bf16]["s_per_step"], default["s_per_step"]), 1.5, unit="x"))
    notes = [
        f"batch {BATCH}, max length {MAX_LENGTH}, lr {LR}, τ {TEMPERATURE} (MNRL scale {1 / TEMPERATURE:g}), "
        f"{len(sentences)} STS-B train sentences; medians (and minima) over {rounds} round(s) x {steps} steps, "
        f"contenders in turns. The 2 cores were shared with other jobs (load average at the end in 'machine'): "
        f"ratios are of medians of interleaved blocks; the *_min columns give the least disturbed steps.",
        f"FLOPs per step (matmuls, fwd+bwd, 2 views, mean of 200 random batches): padded "
        f"{flops['flops_per_step'] / 1e9:.1f} GFLOP (mean padded length {flops['mean_padded_length']:.2f}), "
        f"real tokens only {flops['real_token_flops_per_step'] / 1e9:.1f} GFLOP (mean length "
        f"{flops['mean_real_length']:.2f}); 6 x params x padded tokens x 2: "
        f"{flops['approx_6NT_flops_per_step'] / 1e9:.1f} GFLOP (params = {shape.matmul_params / 1e6:.1f}M "
        f"non-embedding).",
        f"matmul peak: fp32 {peaks['fp32_flops'] / 1e9:.0f}, bf16 {peaks['bf16_flops'] / 1e9:.0f} GFLOP/s; "
        f"this CPU has native bf16: {auto_dtype is not None}.",
        "simcse_core encodes both views in one call on the batch stacked on itself (2B rows); "
        "sentence-transformers makes one call per column (anchor, positive).",
    ]
    extra: dict[str, Any] = {"matmul_peak": peaks, "flops": flops, "step_times": times}
    if not args.no_quality:
        quality_steps = 20 if args.quick else 100
        quality = {label: _dev_after_steps(quality_steps, unpadded, args.quick)
                   for label, unpadded in (("padded", False), ("real tokens only", True))}
        gap = quality["real tokens only"]["after"] - quality["padded"]["after"]
        targets.append(Target(f"|STS-B dev Spearman after {quality_steps} steps: real tokens - padded| (points)",
                              abs(gap), 0.3, higher_is_better=False))
        notes.append(f"STS-B dev Spearman (x100) of the app's fine-tune ([CLS] state, TrainConfig defaults, STS-B "
                     f"train sentences) after {quality_steps} steps: " + "; ".join(
                         f"{k} {v['before']:.2f} -> {v['after']:.2f} ({v['train_s']:.0f} s of training)"
                         for k, v in quality.items()) + ". Same seed, different dropout masks.")
        extra["quality"] = quality
    if not args.no_attention:
        attention = _time_attention(sentences, rounds=2 if args.quick else 3, batches=2)
        from bench.common import format_table

        print("\nAttention variants of the unpadded forward (forward + backward, 2 x 64 rows):\n")
        print(format_table(attention))
        notes.append("Attention over packed tokens: re-padding q/k/v to (B, T) for a masked eager attention was the "
                     "fastest variant measured (see 'attention'); all agree with the padded model to bf16 rounding.")
        extra["attention"] = attention
    return report(NAME, args, rows, targets=targets, notes=notes, extra=extra)


if __name__ == "__main__":
    main()

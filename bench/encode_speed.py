"""Encoding throughput: simcse_core (fp32, bf16 inference weights) vs sentence-transformers' ``encode``.

Encodes the distinct STS-B sentences (dev + test by default; ``--with-train`` adds train) with the bundled
all-MiniLM-L6-v2 (mean pooling), batch 64, the encoder's inference limit (256 tokens), in one process with
the same torch threads, and
reports for each contender: sentences/s (median of interleaved repetitions), the ratio to
sentence-transformers, STS-B test Spearman, and achieved FLOP/s against this machine's matmul peak measured
in the same run (fp32 and bf16).

Then it looks at where the time goes (tokenization share, torch.profiler's top operators on one batch) and
times prototype variants of the encode loop on STS-B test (eager attention, bf16 weights instead of autocast,
a larger batch, int8 dynamic quantisation), each with its Spearman, so that changes to
``simcse_core/model/encoder.py`` can be judged with numbers. Run ``python -m bench.encode_speed --help``.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.common import (
    StsSplit,
    Target,
    TransformerShape,
    forward_flops,
    interleaved_repeats,
    load_stsb_split,
    make_parser,
    matmul_peaks,
    padded_lengths,
    ratio,
    report,
    setup,
    spearman_from_vectors,
)

NAME = "encode_speed"
ST_NAME = "sentence-transformers encode (fp32)"


def _sentences(args) -> tuple[list[str], StsSplit]:
    test = load_stsb_split("test")
    if args.quick:  # a slice of test only
        n = 200
        test = StsSplit(test.name + f" [first {n} pairs]", test.sentence1[:n], test.sentence2[:n], test.scores[:n])
        return test.sentences(), test
    splits = ["dev", "test"] + (["train"] if args.with_train else [])
    sentences: list[str] = []
    for split in splits:
        sentences += load_stsb_split(split).sentences()
    return list(dict.fromkeys(sentences)), test


def _spearman_on(split: StsSplit, sentences: Sequence[str], vectors: np.ndarray) -> float:
    row = {s: i for i, s in enumerate(sentences)}
    a = vectors[[row[s] for s in split.sentence1]]
    b = vectors[[row[s] for s in split.sentence2]]
    return spearman_from_vectors(a, b, split.scores)


def _token_lengths(tokenizer, sentences: Sequence[str], token_limit: int) -> list[int]:
    return [len(x) for x in tokenizer(list(sentences), truncation=True, max_length=token_limit)["input_ids"]]


def proto_encode(
    model,
    tokenizer,
    pooler,
    sentences: Sequence[str],
    batch_size: int = 64,
    token_limit: int = 32,
    autocast_dtype=None,
) -> np.ndarray:
    """A prototype of ``Encoder.encode``: tokenize once, sort by length, pad each batch by hand.

    ``model`` may be any variant of the encoder's transformer (eager attention, bf16 weights, quantised).
    Returns unit vectors (N, D) in input order.
    """
    import torch
    from torch.nn import functional as F

    ids = tokenizer(list(sentences), truncation=True, max_length=token_limit)["input_ids"]
    order = np.argsort([-len(x) for x in ids], kind="stable")
    out = np.empty((len(sentences), model.config.hidden_size), dtype=np.float32)
    pad = tokenizer.pad_token_id or 0
    enabled = autocast_dtype is not None
    with torch.inference_mode(), torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=enabled):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            longest = len(ids[idx[0]])
            input_ids = np.full((len(idx), longest), pad, dtype=np.int64)  # (b, T)
            mask = np.zeros((len(idx), longest), dtype=np.int64)  # (b, T)
            for r, i in enumerate(idx):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            input_ids_t, mask_t = torch.from_numpy(input_ids), torch.from_numpy(mask)
            hidden = model(input_ids=input_ids_t, attention_mask=mask_t,
                           token_type_ids=torch.zeros_like(input_ids_t)).last_hidden_state  # (b, T, H)
            vectors = pooler(hidden.float(), mask_t)  # (b, H)
            out[idx] = F.normalize(vectors, dim=-1).numpy()
    return out


def _profile_batch(encoder, sentences: Sequence[str], rows: int = 8) -> list[dict[str, Any]]:
    """torch.profiler's top operators (self CPU time) over 3 forwards of one median-length batch of 64."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    lengths = _token_lengths(encoder.tokenizer, sentences, encoder.config.token_limit)
    order = np.argsort(lengths)
    middle = len(order) // 2
    batch = [sentences[i] for i in order[max(0, middle - 32) : middle + 32]]
    tokens = encoder.tokenize(batch)
    with torch.inference_mode():
        encoder._inference_forward(tokens)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                encoder._inference_forward(tokens)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_cpu_pct": 100.0 * e.self_cpu_time_total / total, "calls": e.count,
             "self_cpu_ms_per_forward": e.self_cpu_time_total / 1000.0 / 3} for e in events[:rows]]


def _tokenize_share(encoder, sentences: Sequence[str], batch_size: int, repeats: int) -> dict[str, float]:
    """Seconds spent tokenizing the way Encoder.encode does (once, then padding each batch), vs a whole encode."""
    tok = encoder.tokenizer

    def tokenize_like_encode() -> None:
        ids = tok(list(sentences), truncation=True, max_length=encoder.config.token_limit)["input_ids"]
        order = np.argsort([-len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            encoder._pad([ids[i] for i in order[start : start + batch_size]])

    times = interleaved_repeats({"tokenize": tokenize_like_encode,
                                 "encode": lambda: encoder.encode(sentences, batch_size=batch_size)},
                                repeats=repeats, warmup=1)
    tokenize_s, encode_s = statistics.median(times["tokenize"]), statistics.median(times["encode"])
    return {"tokenize_s": tokenize_s, "encode_s": encode_s, "tokenize_pct": 100.0 * ratio(tokenize_s, encode_s)}


def _prototypes(base_fp32, current, args, test: StsSplit, repeats: int) -> list[dict[str, Any]]:
    """Time variants of the encode loop on STS-B test; each row has its speed-up over Encoder.encode (bf16)."""
    import torch

    sentences = test.sentences()
    tok, pooler, token_limit, bs = base_fp32.tokenizer, base_fp32.pooler, base_fp32.config.token_limit, args.batch_size
    bf16 = torch.bfloat16
    eager = copy.deepcopy(base_fp32.model).eval()
    eager.set_attn_implementation("eager")
    bf16_weights = copy.deepcopy(base_fp32.model).to(bf16).eval()
    bf16_weights_eager = copy.deepcopy(bf16_weights).eval()
    bf16_weights_eager.set_attn_implementation("eager")
    variants: dict[str, Callable[[], np.ndarray]] = {
        "Encoder.encode (current auto: bf16 inference weights)": lambda: current.encode(sentences, batch_size=bs),
        "Encoder.encode under bf16 autocast (before)": lambda: _encode_with(base_fp32, "bf16", sentences, bs),
        "proto: tokenize once, bf16 autocast, sdpa": lambda: proto_encode(
            base_fp32.model, tok, pooler, sentences, bs, token_limit, bf16),
        "proto: bf16 autocast, eager attention": lambda: proto_encode(
            eager, tok, pooler, sentences, bs, token_limit, bf16),
        "proto: bf16 weights (no autocast), sdpa": lambda: proto_encode(
            bf16_weights, tok, pooler, sentences, bs, token_limit, None),
        "proto: bf16 weights, eager attention": lambda: proto_encode(
            bf16_weights_eager, tok, pooler, sentences, bs, token_limit, None),
        "proto: bf16 autocast, batch 128": lambda: proto_encode(
            base_fp32.model, tok, pooler, sentences, 128, token_limit, bf16),
    }
    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize is not None and hasattr(quantize, "quantize_dynamic"):
        try:
            int8 = quantize.quantize_dynamic(copy.deepcopy(base_fp32.model).eval(), {torch.nn.Linear},
                                             dtype=torch.qint8)
            variants["proto: int8 dynamic quantisation (Linear), fp32 rest"] = lambda: proto_encode(
                int8, tok, pooler, sentences, bs, token_limit, None)
        except (RuntimeError, AssertionError) as err:  # no quantised engine on this build
            print(f"(int8 dynamic quantisation unavailable: {err})")
    outputs: dict[str, np.ndarray] = {}

    def keep(name: str, fn: Callable[[], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            outputs[name] = fn()
        return run

    times = interleaved_repeats({k: keep(k, f) for k, f in variants.items()}, repeats=repeats, warmup=0)
    reference = statistics.median(times["Encoder.encode (current auto: bf16 inference weights)"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"variant": name, "sentences_per_s": len(sentences) / med,
                     "speedup_vs_current_auto": ratio(reference, med),
                     "test_spearman": _spearman_on(test, sentences, outputs[name])})
    return rows


def _encode_with(base_fp32, precision: str, sentences: Sequence[str], batch_size: int) -> np.ndarray:
    """Encoder.encode of the same weights with another precision (shares the model; no copy)."""
    import torch

    previous = base_fp32.autocast_dtype
    base_fp32.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
    try:
        return base_fp32.encode(sentences, batch_size=batch_size)
    finally:
        base_fp32.autocast_dtype = previous


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--with-train", action="store_true", help="also encode the STS-B train sentences")
    parser.add_argument("--no-prototypes", action="store_true", help="skip the prototype variants")
    parser.add_argument("--prototypes-only", action="store_true",
                        help="only time the prototype variants (writes encode_speed_prototypes.json)")
    args = parser.parse_args(argv)
    setup(args)
    import torch
    from sentence_transformers import SentenceTransformer

    from simcse_core import load_encoder
    from simcse_core.model.catalogue import packaged_model_dir
    from simcse_core.runtime import resolve_precision

    repeats = args.repeats or (1 if args.quick else 3)
    sentences, test = _sentences(args)
    peaks = matmul_peaks(quick=args.quick)
    print(f"{len(sentences)} sentences; matmul peak fp32 {peaks['fp32_flops'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16_flops'] / 1e9:.0f} GFLOP/s ({peaks['bf16_over_fp32']:.2f}x); "
          f"torch threads {torch.get_num_threads()}")

    encoders = {p: load_encoder("minilm", pooler="mean", device="cpu", precision=p) for p in ("fp32", "bf16")}
    if args.prototypes_only:
        rows = _prototypes(encoders["fp32"], encoders["bf16"], args, test, repeats)
        return report(NAME + "_prototypes", args, rows, notes=[
            f"Encode-loop variants on {test.name}, {repeats} interleaved repetitions, median; speed-up vs "
            "Encoder.encode with bf16 autocast (the current default)."], extra={"matmul_peak": peaks})
    auto_dtype = resolve_precision("auto", torch.device("cpu"))
    st = SentenceTransformer(str(packaged_model_dir()), device="cpu")
    st.max_seq_length = encoders["fp32"].config.token_limit  # both read whole sentences (the inference limit)
    contenders: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
        ST_NAME: lambda xs: st.encode(list(xs), batch_size=args.batch_size, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False),
        "simcse_core fp32": lambda xs: encoders["fp32"].encode(xs, batch_size=args.batch_size),
        "simcse_core bf16": lambda xs: encoders["bf16"].encode(xs, batch_size=args.batch_size),
    }
    outputs: dict[str, np.ndarray] = {}

    def keep(name: str, fn: Callable[[Sequence[str]], np.ndarray]) -> Callable[[], None]:
        def run() -> None:
            outputs[name] = fn(sentences)
        return run

    for fn in contenders.values():  # warm-up on a slice: first-call costs (allocations, oneDNN kernels)
        fn(sentences[:256])
    times = interleaved_repeats({k: keep(k, f) for k, f in contenders.items()}, repeats=repeats, warmup=0)

    shape = TransformerShape.of(encoders["fp32"].model)
    tok = encoders["fp32"].tokenizer
    lengths = _token_lengths(tok, sentences, encoders["fp32"].config.token_limit)
    useful = forward_flops(shape, lengths)
    ours_order = np.argsort([-n for n in lengths], kind="stable")
    st_order = np.argsort([-len(s) for s in sentences])  # sentence-transformers sorts by characters
    padded = {"ours": forward_flops(shape, padded_lengths(lengths, args.batch_size, ours_order)),
              "st": forward_flops(shape, padded_lengths(lengths, args.batch_size, st_order))}
    st_median = statistics.median(times[ST_NAME])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        is_bf16 = "bf16" in name
        flops = padded["st" if name == ST_NAME else "ours"]
        peak = peaks["bf16_flops" if is_bf16 else "fp32_flops"]
        rows.append({
            "contender": name,
            "sentences_per_s": len(sentences) / med,
            "vs_sentence_transformers": ratio(st_median, med),
            "median_s": med,
            "min_s": min(ts),
            "max_s": max(ts),
            "test_spearman": _spearman_on(test, sentences, outputs[name]),
            "gflops_per_s": flops / med / 1e9,
            "pct_of_peak": 100.0 * flops / med / peak,
            "padding_overhead_pct": 100.0 * (flops / useful - 1.0),
        })
    by_name = {r["contender"]: r for r in rows}
    agree = float(np.abs(outputs["simcse_core fp32"] - outputs[ST_NAME]).max())
    best_default = by_name["simcse_core bf16" if auto_dtype is not None else "simcse_core fp32"]
    spearman_shift = best_default["test_spearman"] - by_name[ST_NAME]["test_spearman"]
    bf16_vs_fp32 = by_name["simcse_core bf16"]
    fp32_row = by_name["simcse_core fp32"]
    targets = [
        Target("simcse_core default (auto) / sentence-transformers throughput", best_default[
            "vs_sentence_transformers"], 3.5, unit="x"),
        Target("|Spearman(default) - Spearman(sentence-transformers)|", abs(spearman_shift), 0.05,
               higher_is_better=False),
        Target("bf16 / fp32 end-to-end speed (rule: >1 keeps bf16)",
               ratio(fp32_row["median_s"], bf16_vs_fp32["median_s"]), 1.0, unit="x"),
        Target("|Spearman(bf16) - Spearman(fp32)| (rule: < 0.2 keeps bf16)",
               abs(bf16_vs_fp32["test_spearman"] - fp32_row["test_spearman"]), 0.2, higher_is_better=False),
    ]

    diagnostics: dict[str, Any] = {}
    subset = sentences[: (128 if args.quick else 1024)]
    for precision, encoder in encoders.items():
        diagnostics[f"tokenize_share_{precision}"] = _tokenize_share(encoder, subset, args.batch_size, repeats)
        diagnostics[f"profile_{precision}"] = _profile_batch(encoder, sentences)
    prototype_rows: list[dict[str, Any]] = []
    if not args.no_prototypes:
        proto_repeats = repeats
        prototype_rows = _prototypes(encoders["fp32"], encoders["bf16"], args, test, proto_repeats)

    notes = [
        f"{len(sentences)} distinct STS-B sentences ({'test slice' if args.quick else 'dev+test'}"
        f"{' +train' if args.with_train else ''}), batch {args.batch_size}, max length "
        f"{encoders['fp32'].config.token_limit}, "
        f"{repeats} interleaved repetitions, median quoted; Spearman on {test.name}.",
        f"precision 'auto' resolves to {auto_dtype or 'fp32'} on this machine.",
        f"matmul peak ({peaks['size']}^2): fp32 {peaks['fp32_flops'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peaks['bf16_flops'] / 1e9:.0f} GFLOP/s.",
        f"max |simcse_core fp32 - sentence-transformers| over all vectors: {agree:.2e} (same model, same pooling).",
        "FLOP/s counts matmul FLOPs on padded batches (each contender's own batching order); "
        "padding_overhead = padded / real-token FLOPs - 1.",
        *[f"tokenization ({k[15:]}): {v['tokenize_pct']:.1f}% of encode time on {len(subset)} sentences"
          for k, v in diagnostics.items() if k.startswith("tokenize_share")],
    ]
    if prototype_rows:
        from bench.common import format_table

        print("\nPrototype variants of the encode loop (STS-B test):\n")
        print(format_table(prototype_rows))
    for precision in encoders:
        from bench.common import format_table

        print(f"\ntorch.profiler, one batch of 64, {precision}: top operators by self CPU time\n")
        print(format_table(diagnostics[f"profile_{precision}"]))
    return report(NAME, args, rows, targets=targets, notes=notes,
                  extra={"matmul_peak": peaks, "diagnostics": diagnostics, "prototypes": prototype_rows,
                         "sentences": len(sentences)})


if __name__ == "__main__":
    main()

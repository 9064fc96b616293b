"""``python -m simcse_core corpus`` and ``python -m simcse_core pretrain``: making the raw language model.

The options of ``pretrain`` are :class:`PretrainConfig`'s fields (what it trains, with defaults, ranges and
help) and :class:`PretrainRun`'s (how the sitting runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from simcse_core.paths import ASSETS_DIR
from simcse_core.pretraining.corpus import CorpusSplit
from simcse_core.pretraining.mlm import PretrainConfig, PretrainRun

RUN_FLAG_TYPES = {"tokenizer_source": str, "time_budget": float, "stop_at_step": int, "checkpoint_every": float,
                  "report_every": int, "eval_every": int, "init_from": Path}  # PretrainRun's fields on the command line


def add_parsers(commands) -> None:
    """Add the ``corpus`` and ``pretrain`` commands to the main parser's sub-commands."""
    corpus = commands.add_parser(
        "corpus", help="build the raw language model's text from Debian packages",
        description="Read WordNet's glosses and examples and the Python and PostgreSQL manuals' prose (Debian "
                    "packages wordnet-base, python3.11-doc, postgresql-doc-15), clean and de-duplicate them, "
                    "remove every sentence of STS-B and of the bundled demo files, and write pretrain.txt, "
                    "heldout.txt, lesson.txt and corpus.json.")
    corpus.add_argument("--out", required=True, type=Path, help="folder to write the text to")
    corpus.add_argument("--stsb-dir", type=Path, default=None,
                        help="a folder with STS-B's train/dev/test.csv to check against as well")
    defaults = CorpusSplit()
    corpus.add_argument("--heldout", type=int, default=defaults.heldout, help="held-out sentences (MLM accuracy)")
    corpus.add_argument("--lesson", type=int, default=defaults.lesson, help="sentences of the lessons' file")
    corpus.add_argument("--no-extra-sources", action="store_true",
                        help="read only the first three packages (the first corpus; the held-out and lesson "
                             "splits are the same either way)")
    corpus.set_defaults(run=_run_corpus)

    pretrain = commands.add_parser(
        "pretrain", help="masked-language-model pretraining of a small BERT from random weights",
        description="BERT's masked-LM objective (15% of word pieces chosen; 80/10/10) on a text file, with the "
                    "bundled model's tokenizer. Resumes from --out when it holds a checkpoint of the same "
                    "settings; same seed, same weights.")
    pretrain.add_argument("--corpus", required=True, type=Path, help="training text, one sentence a line")
    pretrain.add_argument("--heldout", required=True, type=Path, help="held-out text for MLM accuracy")
    pretrain.add_argument("--out", required=True, type=Path, help="folder for checkpoints and the model")
    pretrain.add_argument("--ship-to", type=Path, default=None,
                          help="at the end, write the model for the repository here (bf16, shards of at most 9 MB)")
    for f in fields(PretrainRun):  # how the sitting runs: flags from PretrainRun's fields
        if f.name == "resume":
            pretrain.add_argument("--no-resume", dest="resume", action="store_false",
                                  help="start again even if --out has a run")
            continue
        pretrain.add_argument(f"--{f.name.replace('_', '-')}", type=RUN_FLAG_TYPES[f.name], default=f.default,
                              help=f"{f.metadata['help']} (default: %(default)s)")
    for f in fields(PretrainConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if "choices" in f.metadata:
            pretrain.add_argument(flag, choices=f.metadata["choices"], default=f.default,
                                  help=f"{f.metadata['help']} (default: %(default)s)")
            continue
        low, high = f.metadata["range"]
        pretrain.add_argument(flag, type=type(f.default), default=f.default,
                              help=f"{f.metadata['help']} ({low}-{high}; default: %(default)s)")
    pretrain.set_defaults(run=_run_pretrain)


def _run_corpus(args: argparse.Namespace) -> int:
    from simcse_core.pretraining.corpus import build_corpus

    report = build_corpus(args.out, args.stsb_dir, ASSETS_DIR, CorpusSplit(heldout=args.heldout, lesson=args.lesson),
                          extra_sources=not args.no_extra_sources)
    print(json.dumps(asdict(report), indent=2))
    return 0


def _run_pretrain(args: argparse.Namespace) -> int:
    from simcse_core.pretraining.mlm import pretrain

    config = PretrainConfig(**{f.name: getattr(args, f.name) for f in fields(PretrainConfig)})
    run = PretrainRun(**{f.name: getattr(args, f.name) for f in fields(PretrainRun)})
    for event in pretrain(args.corpus, args.heldout, args.out, config, run):
        accuracy = "" if event.heldout_accuracy is None else f"  held-out MLM accuracy {event.heldout_accuracy:.3f}"
        print(f"step {event.step:>6}  epoch {event.epoch}  loss {event.loss:.3f}  "
              f"{event.tokens_per_second:,.0f} tokens/s  {event.tokens_seen:,} tokens  "
              f"{event.elapsed / 60:.1f} min{accuracy}", flush=True)
    print(f"Saved to {args.out / 'model'}", file=sys.stderr)
    if args.ship_to is not None:
        from simcse_core.pretraining.mlm import ship

        files = ship(args.out / "model", args.ship_to)
        print(f"Shipped {len(files)} files to {args.ship_to}", file=sys.stderr)
    return 0

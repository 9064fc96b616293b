"""Command line: ``python -m simcse_core eval|train|encode|search|export|corpus|pretrain``.

Each command is a few lines around the core functions (no logic of its own) and prints plain-text tables.
Errors a user can cause (a bad file, a missing model or data set, a bad setting) become a one-line message on
stderr and exit status 2, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from simcse_core.model.pooling import POOLER_HELP
from simcse_core.pretraining import cli as pretraining_cli
from simcse_core.training.config import TrainConfig, setting_spec
from simcse_core.training.recipes import RECIPES
from simcse_core.training.train import TrainEvent

logger = logging.getLogger(__name__)

PROG = "python -m simcse_core"
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
NAMED_SETS = ("stsb-dev", "stsb-test", "stsb-train", "demo")
METRIC_LABELS = {"spearman": "Spearman", "alignment": "align", "uniformity": "uniform", "anisotropy": "aniso"}
# TrainConfig settings offered as --options: option name -> setting. Type, default, range and help are the
# setting's own (simcse_core.training.config); --train-max-length is the training length (--max-length is the
# inference limit of every command).
_TRAIN_OPTIONS = {
    "steps": "steps", "batch-size": "batch_size", "lr": "lr", "temperature": "temperature", "dropout": "dropout",
    "train-max-length": "max_length", "hard-negative-weight": "hard_negative_weight", "seed": "seed",
    "eval-every": "eval_every", "warmup": "warmup", "decay-fraction": "decay_fraction",
    "weight-decay": "weight_decay", "adam-beta2": "adam_beta2",
    "max-grad-norm": "max_grad_norm", "mini-batch-size": "mini_batch_size", "time-budget": "time_budget_s",
}
_METAVARS = {"train-max-length": "TOKENS", "time-budget": "SECONDS"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="SimCSE Studio engine: evaluate, train, encode and search with sentence encoders.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of a command.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and library messages")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_eval_parser(commands)
    _add_train_parser(commands)
    _add_encode_parser(commands)
    _add_search_parser(commands)
    _add_export_parser(commands)
    pretraining_cli.add_parsers(commands)
    _add_prepare_parser(commands)
    return parser


def _add_prepare_parser(commands) -> None:
    from simcse_core.teaching.prepared import PREPARED_DIR, PREPARED_RUN

    prepare = commands.add_parser(
        "prepare-lesson-model", help="train the lesson's recipe from raw-bert for longer and ship it",
        description=f"Train the lessons' unsupervised SimCSE recipe (pooler {PREPARED_RUN.pooler}, lr "
                    f"{PREPARED_RUN.lr:g}, batch {PREPARED_RUN.batch_size}, seed {PREPARED_RUN.seed}) from raw-bert "
                    f"on the 20,000 lesson sentences for {PREPARED_RUN.steps} steps, and write it with bf16 "
                    "weights in shards of at most 9 MB: the catalogue's raw-bert-simcse.")
    prepare.add_argument("--out", type=Path, default=PREPARED_DIR, help="folder to write (default: %(default)s)")
    prepare.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from simcse_core.teaching.prepared import prepare

    facts = prepare(args.out, say=lambda line: print(line, flush=True))
    print(f"Trained {facts['steps']} steps in {facts['train_s']:.0f} s; saved to {args.out}")
    return 0


def _add_eval_parser(commands) -> None:
    evaluate = commands.add_parser(
        "eval", help="STS Spearman, alignment, uniformity and anisotropy of a model",
        description="Score a model on STS sets: Spearman correlation x100 between cosine similarities and "
                    "gold scores, alignment of pairs scored > 4 (lower is better), uniformity (lower is "
                    "better) and anisotropy (mean cosine between sentences, near 0 is better).")
    _add_model_options(evaluate)
    evaluate.add_argument(
        "--sets", default="stsb-dev",
        help="comma-separated sets: stsb-dev, stsb-test, stsb-train, demo, or paths of "
             "sentence1,sentence2,score files (.csv/.tsv/.jsonl) (default: %(default)s)")
    evaluate.add_argument(
        "--tasks", default=None,
        help="instead of --sets: the paper's STS tasks, comma-separated from sts12, sts13, sts14, sts15, sts16, "
             "stsb, sickr (or all); prints a row of the paper's Table 5 (Spearman x100, 'all' setting, average)")
    evaluate.add_argument(
        "--data-dir", default=None,
        help="with --tasks: read TASK.csv (sentence1,sentence2,score) from this folder instead of the hub")
    _add_batch_size(evaluate)
    evaluate.set_defaults(run=_run_eval)


def _add_train_parser(commands) -> None:
    training = commands.add_parser(
        "train", help="fine-tune a model with unsupervised or supervised SimCSE and save it",
        description="Fine-tune a model with SimCSE. A file of sentences (one column) trains unsupervised "
                    "SimCSE (dropout is the augmentation); pairs (anchor, positive) or triplets (anchor, "
                    "positive, hard negative) train supervised SimCSE. Prints one line per step (see "
                    "--log-every) and saves the model to --out. --recipe runs one of the paper's BERT-base "
                    "trainings with its settings (each option given as well overrides the recipe's). Runs "
                    "unchanged under 'torchrun --nproc_per_node N' or 'accelerate launch': --batch-size is "
                    "then the global batch, split over the processes, with negatives gathered from all.")
    _add_model_options(training, pooler_help="pooler to train with (default: keep the model's; the paper's "
                                             "unsupervised setting is cls, with the MLP in training only)")
    training.set_defaults(model=None)  # None: the recipe's model, else minilm
    training.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                          help="; ".join(f"{name}: {recipe.summary}" for name, recipe in RECIPES.items()))
    training.add_argument("--data", default=None,
                          help="training file: .txt, .csv, .tsv or .jsonl (with --recipe: a local copy of the "
                               "recipe's file; default: downloaded from the hub)")
    training.add_argument("--out", required=True, help="folder to save the trained model in (new or empty)")
    training.add_argument("--overwrite", action="store_true",
                          help="allow saving into a folder that is not empty")
    training.add_argument(
        "--mode", choices=("auto", "unsup", "sup"), default="auto",
        help="auto: from the file's columns; unsup on a pairs file trains on all its sentences "
             "(default: %(default)s)")
    for option, name in _TRAIN_OPTIONS.items():  # default None: the recipe's value, else TrainConfig's
        spec = setting_spec(name)
        training.add_argument(f"--{option}", type=int if spec.kind == "int" else float, default=None,
                              metavar=_METAVARS.get(option), help=f"{spec.help} (default: {spec.default}; "
                              f"{spec.low:g} to {spec.high:g})")
    training.add_argument("--mlp-only-train", action=argparse.BooleanOptionalAction, default=None,
                          help="with --pooler cls: use the MLP head in training only (default: the paper's rule, "
                               "yes for unsup, no for sup)")
    training.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=None,
                          help="save to --out the model of the best evaluation (Spearman), not the last step's "
                               "(default: yes with --recipe, else no)")
    training.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                          help="write a checkpoint to resume from (OUT/checkpoint) every N steps and at the end "
                               "(default: the recipe's evaluation interval, else 0 = never)")
    training.add_argument("--resume", action="store_true",
                          help="continue the run whose checkpoint is in OUT/checkpoint (same data and settings)")
    training.add_argument(
        "--eval-set", default="auto",
        help="set evaluated during training: auto (STS-B dev if installed, else the demo pairs), none, or a "
             "name or path as in 'eval --sets' (default: %(default)s)")
    training.add_argument(
        "--log-every", type=int, default=1, metavar="N",
        help="print every N-th step; evaluations and the last step are always printed (default: %(default)s)")
    training.set_defaults(run=_run_train)


def _add_encode_parser(commands) -> None:
    encode = commands.add_parser(
        "encode", help="encode sentences to a .npy file of vectors",
        description="Encode the distinct sentences of a file (in order of first appearance) to a float32 "
                    "array of shape (sentences, dimension), saved with numpy.save.")
    _add_model_options(encode)
    encode.add_argument("--input", required=True,
                        help="sentences file: .txt (one per line), .csv, .tsv or .jsonl")
    encode.add_argument("--out", required=True, help="output .npy file")
    encode.add_argument("--sentences-out", default=None,
                        help="also write the encoded sentences to this file, one per line (line i = row i)")
    encode.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True,
                        help="L2-normalise the vectors (default: %(default)s)")
    _add_batch_size(encode)
    encode.set_defaults(run=_run_encode)


def _add_search_parser(commands) -> None:
    search = commands.add_parser(
        "search", help="semantic search: the corpus sentences closest to a query",
        description="Encode a corpus and print, for each query, its nearest corpus sentences by cosine "
                    "similarity.")
    _add_model_options(search)
    search.add_argument("--corpus", required=True,
                        help="corpus file: .txt (one sentence per line), .csv with a 'text' column, .tsv or "
                             ".jsonl")
    search.add_argument("--query", required=True, action="append",
                        help="a query sentence (repeat the option for several queries)")
    search.add_argument("--top-k", type=int, default=5, help="hits per query (default: %(default)s)")
    search.add_argument("--threshold", type=float, default=None, help="only hits with a cosine at least this")
    search.add_argument("--index", choices=("auto", "flat", "ivf", "numpy"), default="auto",
                        help="search back end (default: %(default)s)")
    _add_batch_size(search)
    search.set_defaults(run=_run_search)


def _add_export_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="write a model for the official SimCSE tool and sentence-transformers",
        description="Write a model the way the official simcse_to_huggingface.py does: a plain Hugging Face "
                    "model whose pooler layer holds the cls pooler's MLP head, so that 'from simcse import "
                    "SimCSE' and SentenceTransformer both load it (and this program too).")
    _add_model_options(export)
    export.add_argument("--out", required=True, help="folder to write (new or empty)")
    export.add_argument("--overwrite", action="store_true", help="allow writing into a folder that is not empty")
    export.set_defaults(run=_run_export)


def _add_model_options(parser: argparse.ArgumentParser, pooler_help: str | None = None) -> None:
    poolers = "; ".join(f"{name}: {text}" for name, text in POOLER_HELP.items())
    parser.add_argument("--model", default="minilm",
                        help="'minilm' (bundled all-MiniLM-L6-v2), a model folder, or a hub id when online "
                             "(default: %(default)s)")
    pooler_help = pooler_help or "pooler (default: the one a saved model was trained with, else mean)"
    parser.add_argument("--pooler", default=None, help=f"{pooler_help}. {poolers}")
    parser.add_argument("--max-length", "--token-limit", dest="token_limit", type=int, default=None,
                        metavar="TOKENS",
                        help="the inference limit: tokens per sentence when encoding (default: the model's saved "
                             "value, else the model's own limit capped at 256)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default: %(default)s)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="auto: bf16 autocast where the hardware is fast at it; fp16: CUDA GPUs without bf16, "
                             "with loss scaling in training (default: %(default)s)")


def _add_batch_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=64,
                        help="sentences encoded per batch (default: %(default)s)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status: 0 done, 2 a user error, 130 interrupted."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    from simcse_core.evaluation.sets import EvaluationDataUnavailable
    from simcse_core.model.catalogue import ModelNotAvailableError

    try:
        return args.run(args)
    except (ValueError, OSError, ModelNotAvailableError, EvaluationDataUnavailable) as err:  # DataError too
        if args.debug:
            raise
        _fail(args.command, str(err))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted, nothing saved.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug, not a user error: still one line, the traceback is one flag away
        if args.debug:
            raise
        _fail(args.command, f"unexpected {type(err).__name__}: {err} (run with --debug to see where)")
        return 1


def _fail(command: str, message: str) -> None:
    one_line = " ".join(message.split())
    print(f"{PROG} {command}: error: {one_line}", file=sys.stderr)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # e.g. the load report of a checkpoint's unused pooler layer
        hf_logging.disable_progress_bar()


def _load(args: argparse.Namespace):
    from simcse_core.interop.interchange import official_pooler
    from simcse_core.model.loading import load_encoder
    from simcse_core.training.distributed import process_device

    pooler = args.pooler or official_pooler(args.model)  # an official SimCSE checkpoint: its own pooler
    return load_encoder(args.model, pooler=pooler, device=process_device(args.device),
                        token_limit=args.token_limit, precision=args.precision)


def _load_set(name: str):
    from simcse_core.evaluation import sets as evaluation

    key = name.strip().lower()
    if key.startswith("stsb-"):
        split = key.removeprefix("stsb-")
        if split not in evaluation.SPLITS:
            raise ValueError(f"Unknown STS-B set {name!r}; use stsb-dev, stsb-test or stsb-train.")
        return evaluation.load_stsb(split)
    if key == "demo":
        return evaluation.load_demo_pairs()
    if Path(name.strip()).suffix:  # a file: load_scored_pairs says what is wrong with it, if anything
        return evaluation.load_scored_pairs(Path(name.strip()).expanduser())
    raise ValueError(f"Unknown evaluation set {name!r}; use {', '.join(NAMED_SETS)} or the path of a "
                     "sentence1,sentence2,score file.")


def _run_eval(args: argparse.Namespace) -> int:
    from simcse_core.evaluation.metrics import embedding_report

    if args.tasks is not None:
        return _run_sts_suite(args)

    names = [name for name in args.sets.split(",") if name.strip()]
    if not names:
        raise ValueError("--sets is empty; name at least one set, e.g. --sets stsb-dev.")
    sets = [_load_set(name) for name in names]  # every set is read before the slow part
    encoder = _load(args)
    print(f"Model: {encoder.description}")
    header = (f"{'set':<32} {'pairs':>6} {'Spearman':>9} {'alignment':>10} {'uniformity':>11} "
              f"{'anisotropy':>11}")
    print(header)
    print("-" * len(header))
    for pairs in sets:
        report = embedding_report(encoder, pairs, batch_size=args.batch_size)
        print(f"{pairs.name[:32]:<32} {len(pairs):>6} {report['spearman']:>9.2f} "
              f"{report['alignment']:>10.3f} {report['uniformity']:>11.3f} {report['anisotropy']:>11.3f}")
    print("Spearman x100: higher is better. Alignment (pairs scored > 4) and uniformity: lower is better. "
          "Anisotropy (mean cosine between sentences): near 0 is better.")
    return 0


def _run_sts_suite(args: argparse.Namespace) -> int:
    from simcse_core.evaluation import sts_suite

    tasks = sts_suite.parse_tasks(args.tasks)
    sets = sts_suite.load_tasks(tasks, args.data_dir)  # every set is read before the slow part
    encoder = _load(args)
    result = sts_suite.evaluate_suite(encoder, sets, batch_size=args.batch_size)
    print(result.table(reference=sts_suite.PAPER_TABLE5))
    print("Spearman x100 of cosine vs gold over all pairs of each set (the paper's 'all' setting). The "
          "(paper) rows are the published figures, not measured here.")
    for task in tasks:
        print(f"  {sts_suite.TASKS[task][0]}: {result.sizes[task]} pairs from {result.sources[task]}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    """Train in this process, or as one of the processes torchrun / accelerate launch started."""
    from simcse_core.training import distributed

    processes = distributed.start(args.device)
    try:
        return _train(args, processes, print if processes.is_main else _silent)
    finally:
        distributed.stop()


def _silent(*args, **kwargs) -> None:
    """print for the processes other than rank 0, which train but do not report."""


def _train(args: argparse.Namespace, processes, say) -> int:
    from simcse_core.training.checkpoint import CHECKPOINT_DIR, RunKeeper, check_same_run, load_checkpoint
    from simcse_core.training.train import train

    recipe = RECIPES[args.recipe] if args.recipe else None
    out = Path(args.out).expanduser()
    if args.log_every < 1:
        raise ValueError("--log-every must be at least 1.")
    checkpoint = load_checkpoint(out / CHECKPOINT_DIR) if args.resume else None
    if checkpoint is None and out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise ValueError(f"{out} already exists and is not an empty folder; choose another --out, add "
                         "--overwrite, or --resume a run from its checkpoint.")
    examples, mode, described = _training_examples(args, recipe, say)
    config = _train_config(args, recipe, mode, len(examples))
    if checkpoint is not None:
        check_same_run(checkpoint.config, config)
    eval_pairs = _train_eval_pairs(args, recipe)
    model = str(checkpoint.model_dir) if checkpoint else args.model or (recipe.model if recipe else "minilm")
    # Loaded with its own (saved) pooler: the trainer switches to config.pooler, with a head drawn from the
    # run's seed (loading with --pooler cls would draw it unseeded, so runs would differ).
    encoder = _load(argparse.Namespace(**{**vars(args), "model": model, "pooler": None}))
    keep_best = args.keep_best if args.keep_best is not None else recipe is not None
    every = args.checkpoint_every if args.checkpoint_every is not None else (config.eval_every if recipe else 0)
    if every < 0:
        raise ValueError("--checkpoint-every must be 0 (never) or more.")
    keeper = RunKeeper(out, config, keep_best=keep_best, checkpoint_every=every,
                       best=checkpoint.best if checkpoint else None)
    events = train(encoder, examples, config, eval_pairs=eval_pairs, resume=checkpoint.state if checkpoint else None)
    evaluated = f", evaluated on {eval_pairs.name}" if eval_pairs is not None else ""
    say(f"Training {encoder.description} on {described}{evaluated}" + (
        f" (recipe {recipe.name}: {config.steps} steps)" if recipe else ""))
    batch = min(config.batch_size, len(examples))
    say(f"Batch: {batch} examples per step (global) = {processes.world_size} process(es) x "
        f"{processes.shard_size(batch)}" + (f", encoded {config.mini_batch_size} at a time (GradCache)"
                                             if config.mini_batch_size else ""))
    first = last = None
    for event in events:
        first, last = first or event, event
        if event.step == 0 or event.done or event.metrics is not None or event.step % args.log_every == 0:
            say(_format_event(event), flush=True)
        if processes.is_main:
            for line in keeper.observe(encoder, event):
                say(line, flush=True)
    if not processes.is_main:
        return 0
    holds = keeper.finish(encoder)
    if first.metrics and last.metrics:
        changes = [f"{label} {first.metrics[key]:.3f} -> {last.metrics[key]:.3f}"
                   for key, label in METRIC_LABELS.items()]
        say(("Start" if first.step else "Before") + " -> after: " + ", ".join(changes))
    say(f"Trained to step {last.step} in {last.elapsed_s:.1f} s; {holds}")
    return 0


def _training_examples(args: argparse.Namespace, recipe, say) -> tuple[list, str, str]:
    """(examples, mode, description) from --data and --mode, or the recipe's data."""
    from simcse_core.data import DataError, load_training_data
    from simcse_core.training.recipes import recipe_data

    if recipe is not None:
        if args.mode not in ("auto", recipe.mode):
            raise ValueError(f"The {recipe.name} recipe trains mode {recipe.mode}; drop --mode {args.mode}.")
        examples, source = recipe_data(recipe, args.data)
        kind = "sentences" if recipe.mode == "unsup" else f"{len(examples[0])}-tuples" if examples else "examples"
        return examples, recipe.mode, f"{len(examples):,} {kind} from {source}"
    if args.data is None:
        raise ValueError("--data is required (a training file), unless a --recipe names its data.")
    data = load_training_data(args.data)
    examples, mode = data.examples, data.mode
    if args.mode == "sup" and data.mode == "unsup":
        raise DataError(f"{data.source} holds single sentences, but --mode sup needs pairs (anchor, "
                        "positive) or triplets (anchor, positive, hard negative). Use --mode unsup.")
    if args.mode == "unsup" and data.mode == "sup":
        examples, mode = list(dict.fromkeys(s for example in data.examples for s in example)), "unsup"
        say(f"--mode unsup: training on the {len(examples)} distinct sentences of the {data.kind}.")
    return examples, mode, f"{data.summary()} from {data.source}"


def _train_config(args: argparse.Namespace, recipe, mode: str, n_examples: int) -> TrainConfig:
    """The recipe's settings (or TrainConfig's defaults), changed by every option given on the command line."""
    given = {name: getattr(args, option.replace("-", "_")) for option, name in _TRAIN_OPTIONS.items()}
    given.update(pooler=args.pooler, mlp_only_train=args.mlp_only_train)
    given = {name: value for name, value in given.items() if value is not None}
    if recipe is not None:
        return recipe.train_config(n_examples, **given)
    return TrainConfig(mode=mode, **given)


def _train_eval_pairs(args: argparse.Namespace, recipe):
    from simcse_core.evaluation import sets as evaluation

    if args.eval_set == "none":
        return None
    if args.eval_set != "auto":
        return _load_set(args.eval_set)
    if recipe is None:
        return evaluation.default_eval_pairs()
    if evaluation.stsb_available():  # the recipes select on STS-B dev, as the paper does
        return evaluation.load_stsb("dev")
    return evaluation.load_stsb_from_hub("dev")


def _run_export(args: argparse.Namespace) -> int:
    from simcse_core.interop.interchange import export_simcse, official_tool_pooler

    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise ValueError(f"{out} already exists and is not an empty folder; choose another --out or add "
                         "--overwrite.")
    encoder = _load(args)
    folder = export_simcse(encoder, out)
    print(f"Exported {encoder.description} to {folder}")
    print(f"  official tool:          SimCSE({str(folder)!r}, pooler={official_tool_pooler(encoder)!r})")
    print(f"  sentence-transformers:  SentenceTransformer({str(folder)!r})")
    return 0


def _format_event(event: TrainEvent) -> str:
    width = len(str(event.total_steps))
    loss = "   -   " if event.loss is None else f"{event.loss:7.4f}"
    line = (f"step {event.step:>{width}}/{event.total_steps}  loss {loss}  lr {event.lr:.2e}  "
            f"{event.elapsed_s:7.1f} s")
    for key, label in METRIC_LABELS.items():
        value = (event.metrics or {}).get(key, math.nan)
        if not math.isnan(value):
            line += f"  {label} {value:.2f}" if key == "spearman" else f"  {label} {value:.3f}"
    if event.stop_reason == "time_budget":
        line += "  (time budget spent)"
    return line


def _run_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from simcse_core.data import load_sentences

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1.")
    sentences = load_sentences(args.input)
    encoder = _load(args)
    vectors = encoder.encode(sentences, batch_size=args.batch_size, normalize=args.normalize)  # (N, D)
    out = Path(args.out).expanduser()
    if out.suffix != ".npy":
        out = out.with_name(out.name + ".npy")  # the name numpy.save would use
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, vectors)
    if args.sentences_out:
        Path(args.sentences_out).expanduser().write_text("\n".join(sentences) + "\n", encoding="utf-8")
    print(f"Encoded {len(sentences)} sentences with {encoder.description}: {vectors.shape[0]} x "
          f"{vectors.shape[1]} float32 vectors saved to {out}")
    return 0


def _run_search(args: argparse.Namespace) -> int:
    from simcse_core.data import load_sentences
    from simcse_core.retrieval import SearchIndex

    if args.top_k < 1:
        raise ValueError("--top-k must be at least 1.")
    corpus = load_sentences(args.corpus)
    encoder = _load(args)
    index = SearchIndex.build(encoder, corpus, kind=args.index, batch_size=args.batch_size)
    print(f"Corpus: {len(index)} sentences, {encoder.description}, back end {index.backend}")
    for query, hits in zip(args.query, index.search(args.query, top_k=args.top_k, threshold=args.threshold)):
        print(f"\nQuery: {query}")
        if not hits:
            print("  (no hit at or above the threshold)")
        for rank, hit in enumerate(hits, start=1):
            print(f"  {rank:>2}. {hit.score:.4f}  {hit.sentence}")
    return 0

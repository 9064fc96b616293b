"""Masked-language-model pretraining of a small BERT from random weights: the studio's raw language model.

BERT's recipe (Devlin et al., 2019, Section 3.1) at a size two CPU cores can train in an hour: 15 % of the word
pieces of each sentence are chosen; of those, 80 % become ``[MASK]``, 10 % a random word piece and 10 % stay;
the model predicts the original pieces. No next-sentence objective, and never a sentence pair or a similarity.
The tokenizer is the bundled all-MiniLM-L6-v2's uncased WordPiece, so both models read sentences alike.

Exactly resumable: the data order of each epoch, each step's masks and each step's dropout are drawn from
generators seeded by ``(seed, epoch)`` and ``(seed, step)``, so a run stopped and resumed from a checkpoint
reaches the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from simcse_core.memory import return_freed_memory

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "pretrain_state.pt"
CONFIG_NAME = "pretrain_config.json"
INPUTS_NAME = "pretrain_inputs.json"  # the corpus, vocabulary and starting weights a run was made from
_INPUT_NAMES = {"corpus_sha256": "corpus file", "vocabulary_sha256": "vocabulary", "init_from": "--init-from"}


class PretrainError(ValueError):
    """The corpus, the settings or the resume folder cannot be used; the message says which and why."""


@dataclass(frozen=True)
class PretrainConfig:
    """Model size and optimisation of masked-LM pretraining."""

    layers: int = field(default=4, metadata={"range": (1, 12), "help": "transformer layers"})
    hidden: int = field(default=256, metadata={"range": (8, 1024), "help": "hidden width"})
    heads: int = field(default=4, metadata={"range": (1, 12), "help": "attention heads"})
    intermediate: int = field(default=1024, metadata={"range": (8, 4096), "help": "feed-forward width"})
    max_length: int = field(default=128, metadata={"range": (8, 512),
                                                   "help": "word pieces a sentence keeps (and positions)"})
    batch_size: int = field(default=128, metadata={"range": (2, 4096), "help": "sentences a step"})
    lr: float = field(default=1e-3, metadata={"range": (1e-6, 1e-1), "help": "peak learning rate"})
    warmup: int = field(default=500, metadata={"range": (0, 100_000), "help": "linear warm-up steps"})
    steps: int = field(default=100_000, metadata={"range": (1, 10_000_000),
                                                  "help": "steps of the schedule (linear decay to 0)"})
    weight_decay: float = field(default=0.01, metadata={"range": (0.0, 1.0), "help": "AdamW weight decay"})
    mask_probability: float = field(default=0.15, metadata={"range": (0.01, 0.5),
                                                            "help": "share of word pieces chosen"})
    dropout: float = field(default=0.1, metadata={"range": (0.0, 0.9), "help": "dropout in pretraining"})
    seed: int = field(default=0, metadata={"range": (0, 2**31 - 1), "help": "random seed"})
    precision: str = field(default="fp32", metadata={
        "choices": ("fp32", "bf16"),
        "help": "bf16 runs the forward pass under CPU autocast (weights and optimiser stay fp32; about 1.4x "
                "the word pieces a second on a CPU with AVX512-BF16)"})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "choices" in f.metadata:
                if value not in f.metadata["choices"]:
                    raise PretrainError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}, got {value!r}.")
                continue
            low, high = f.metadata["range"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise PretrainError(f"{f.name} must be between {low} and {high}, got {value!r}.")
        if self.hidden % self.heads:
            raise PretrainError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads}).")

    def bert_config(self, vocab_size: int):
        from transformers import BertConfig

        return BertConfig(
            vocab_size=vocab_size, hidden_size=self.hidden, num_hidden_layers=self.layers,
            num_attention_heads=self.heads, intermediate_size=self.intermediate,
            hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout,
            max_position_embeddings=self.max_length)


@dataclass(frozen=True)
class PretrainRun:
    """How one sitting of pretraining runs (not what it trains: that is :class:`PretrainConfig`)."""

    tokenizer_source: str | None = field(default=None, metadata={
        "help": "the word-piece vocabulary's folder (default: the packaged all-MiniLM-L6-v2's)"})
    time_budget: float | None = field(default=None, metadata={
        "help": "stop after this many seconds (this sitting and those it resumed together)"})
    stop_at_step: int | None = field(default=None, metadata={
        "help": "stop after this step (the schedule still follows --steps: a stopped run reproduces exactly)"})
    checkpoint_every: float = field(default=900.0, metadata={"help": "seconds between checkpoints"})
    report_every: int = field(default=50, metadata={"help": "steps between progress reports"})
    eval_every: int = field(default=1000, metadata={"help": "steps between held-out evaluations"})
    resume: bool = field(default=True, metadata={"help": "continue the run --out holds, if any"})
    init_from: Path | None = field(default=None, metadata={
        "help": "start from these saved weights (a BertForMaskedLM folder of the same size and vocabulary) "
                "with a fresh optimiser and schedule"})


@dataclass(frozen=True)
class PretrainEvent:
    """One progress report."""

    step: int
    epoch: int
    loss: float  # mean masked-LM cross-entropy since the last report
    tokens_per_second: float  # word pieces (padding excluded) through the model a second
    tokens_seen: int
    elapsed: float  # seconds of training in this run and the runs it resumed
    heldout_accuracy: float | None = None  # share of masked pieces predicted exactly on held-out sentences


def read_corpus(path: Path, minimum: int) -> list[str]:
    """Non-empty lines of a UTF-8 text file; refuses a missing, binary, empty or too small file."""
    if not path.is_file():
        raise PretrainError(f"Corpus file {path} not found.")
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise PretrainError(f"Corpus file {path} is not text (it contains NUL bytes).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PretrainError(f"Corpus file {path} is not UTF-8 text (byte {err.start}).") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < minimum:
        raise PretrainError(f"Corpus file {path} has {len(lines)} sentences; at least {minimum} are needed "
                            "(one batch).")
    return lines


def estimate_memory_bytes(config: PretrainConfig, vocab_size: int) -> int:
    """A generous estimate of training memory: weights, AdamW state, gradients and activations."""
    h, n_layers = config.hidden, config.layers
    params = vocab_size * h + 512 * h + n_layers * (4 * h * h + 2 * h * config.intermediate) + vocab_size
    tokens = config.batch_size * config.max_length
    activations = n_layers * tokens * (16 * h + 2 * config.intermediate + 2 * config.heads * config.max_length)
    masked_logits = int(tokens * config.mask_probability * 1.5) * vocab_size * 3
    return 4 * (4 * params + activations + masked_logits)


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special: torch.Tensor,
                config: PretrainConfig, mask_id: int, vocab_size: int, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: returns (corrupted inputs, labels with -100 where nothing is predicted)."""
    candidates = attention_mask.bool() & ~special  # (B, T) real, non-special pieces
    chosen = (torch.rand(input_ids.shape, generator=generator) < config.mask_probability) & candidates
    if not chosen.any() and candidates.any():  # a tiny batch with nothing chosen still predicts one piece
        chosen.view(-1)[candidates.view(-1).nonzero()[0]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted = torch.where(chosen & (roll < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, corrupted)
    return corrupted, labels


class _Batches:
    """Tokenized sentences, batched in a seeded order per epoch (similar lengths together, less padding)."""

    def __init__(self, sentences: list[str], tokenizer, config: PretrainConfig) -> None:
        encoded = tokenizer(sentences, truncation=True, max_length=config.max_length, add_special_tokens=True)
        self.ids = [torch.tensor(ids) for ids in encoded["input_ids"]]
        self.pad_id = tokenizer.pad_token_id
        self.config = config
        self.tokens = sum(len(ids) for ids in self.ids)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.ids) // self.config.batch_size

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches of one epoch: a seeded shuffle, sorted by length within chunks of 50 batches."""
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self.ids), generator=generator).tolist()
        size = self.config.batch_size
        chunk = size * 50
        batches = []
        for start in range(0, len(order) - size + 1, chunk):
            part = sorted(order[start:start + chunk], key=lambda i: len(self.ids[i]))
            batches += [part[i:i + size] for i in range(0, len(part) - size + 1, size)]
        shuffle = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffle]

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.ids[i] for i in indices]
        width = -(-max(len(r) for r in rows) // 8) * 8  # a multiple of 8: few distinct shapes for the kernels
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, :len(row)] = row
            attention[i, :len(row)] = 1
        return input_ids, attention


def _masked_lm_loss(model, input_ids, attention, labels, precision: str = "fp32"
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy over the chosen pieces only (the vocabulary projection is skipped elsewhere)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        hidden = model.bert(input_ids=input_ids, attention_mask=attention).last_hidden_state  # (B, T, H)
        chosen = labels != -100
        logits = model.cls(hidden[chosen]).float()  # (M, V)
    targets = labels[chosen]  # (M,)
    return torch.nn.functional.cross_entropy(logits, targets), logits, targets


@torch.no_grad()
def heldout_accuracy(model, batches: _Batches, config: PretrainConfig, mask_id: int, vocab_size: int,
                     special_ids: torch.Tensor) -> float:
    """Share of masked pieces of the held-out sentences predicted exactly (fixed masks, eval mode)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(12345)
    right = total = 0
    order = list(range(len(batches.ids)))
    for start in range(0, len(order), 256):
        input_ids, attention = batches.collate(order[start:start + 256])
        corrupted, labels = mask_tokens(input_ids, attention, torch.isin(input_ids, special_ids), config,
                                        mask_id, vocab_size, generator)
        _, logits, targets = _masked_lm_loss(model, corrupted, attention, labels, config.precision)
        right += int((logits.argmax(-1) == targets).sum())
        total += int(targets.numel())
    model.train(was_training)
    return right / max(total, 1)


def pretrain(corpus: Path, heldout: Path, out_dir: Path, config: PretrainConfig = PretrainConfig(),
             run: PretrainRun = PretrainRun()) -> Iterator[PretrainEvent]:
    """Pretrain, yielding progress; checkpoints to ``out_dir`` every ``run.checkpoint_every`` seconds (between
    steps) and at the end.

    ``run.init_from`` (a saved ``BertForMaskedLM`` folder of the same size and vocabulary, e.g. ``models/raw-bert``)
    continues pretraining from those weights with a fresh optimiser and schedule, instead of random weights.
    A resumed run must have the same settings, the same corpus file (its SHA-256), the same vocabulary and the
    same ``init_from``; anything else is refused with a message naming what changed.

    ``run.time_budget`` (seconds, this run and the runs it resumed together) or ``run.stop_at_step`` ends training
    early; the learning rate schedule follows ``config.steps`` either way, so stopping never changes which
    weights a step makes (``stop_at_step`` reproduces a stopped run exactly).
    """
    from transformers import AutoTokenizer, BertForMaskedLM

    from simcse_core.model.catalogue import packaged_model_dir

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(run.tokenizer_source or str(packaged_model_dir()))
    vocab_size = len(tokenizer)
    needed, available = estimate_memory_bytes(config, vocab_size), _available_memory()
    if available is not None and needed > available:
        raise PretrainError(f"This size needs about {needed / 2**30:.1f} GiB and {available / 2**30:.1f} GiB "
                            "is free: lower batch_size, max_length, hidden or layers.")
    train_batches = _Batches(read_corpus(corpus, config.batch_size), tokenizer, config)
    held_batches = _Batches(read_corpus(heldout, 1), tokenizer, config)
    special_ids = torch.tensor(tokenizer.all_special_ids)
    mask_id = tokenizer.mask_token_id

    model = BertForMaskedLM(config.bert_config(vocab_size))
    if run.init_from is not None:
        _load_start(model, run.init_from)
    model.train()
    optimizer, schedule = _optimiser(model, config)

    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / CHECKPOINT_NAME
    inputs = {"corpus_sha256": _sha256(corpus.read_bytes()),
              "vocabulary_sha256": _sha256(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode()),
              "init_from": None if run.init_from is None else str(Path(run.init_from).resolve())}
    step, tokens_seen, resumed_elapsed = 0, 0, 0.0
    if run.resume and state_path.is_file():
        step, tokens_seen, resumed_elapsed = _resume(out_dir, config, inputs, model, optimizer, schedule)
    (out_dir / CONFIG_NAME).write_text(json.dumps(asdict(config), indent=2) + "\n")
    (out_dir / INPUTS_NAME).write_text(json.dumps(inputs, indent=2) + "\n")
    run_start = time.perf_counter()

    def elapsed() -> float:
        return resumed_elapsed + time.perf_counter() - run_start

    def save() -> None:
        temporary = out_dir / (CHECKPOINT_NAME + ".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "step": step, "tokens_seen": tokens_seen,
                    "elapsed": elapsed()}, temporary)
        temporary.replace(state_path)
        model.save_pretrained(out_dir / "model")
        tokenizer.save_pretrained(out_dir / "model")

    per_epoch = train_batches.steps_per_epoch
    epochs: dict[int, list[list[int]]] = {}
    last_save = time.perf_counter()
    window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
    try:
        last_step = config.steps if run.stop_at_step is None else min(config.steps, run.stop_at_step)
        while step < last_step and (run.time_budget is None or elapsed() < run.time_budget):
            epoch, position = divmod(step, per_epoch)
            if epoch not in epochs:
                epochs = {epoch: train_batches.epoch(epoch)}
            input_ids, attention = train_batches.collate(epochs[epoch][position])
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            corrupted, labels = mask_tokens(input_ids, attention, torch.isin(input_ids, special_ids), config,
                                            mask_id, vocab_size, generator)
            torch.manual_seed(config.seed * 1_000_003 + step)  # this step's dropout
            loss, _, _ = _masked_lm_loss(model, corrupted, attention, labels, config.precision)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            tokens_seen += int(attention.sum())
            window_loss, window_steps = window_loss + loss.item(), window_steps + 1
            window_tokens += int(attention.sum())
            evaluate = step % run.eval_every == 0 or step == config.steps
            if evaluate or step % run.report_every == 0:
                rate = window_tokens / max(time.perf_counter() - window_start, 1e-9)
                accuracy = heldout_accuracy(model, held_batches, config, mask_id, vocab_size,
                                            special_ids) if evaluate else None
                yield PretrainEvent(step, epoch, window_loss / window_steps, rate, tokens_seen, elapsed(),
                                    accuracy)
                window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
            if step % 100 == 0:
                return_freed_memory()  # batches of many shapes otherwise grow RSS
            if time.perf_counter() - last_save >= run.checkpoint_every:
                save()
                last_save = time.perf_counter()
    finally:
        save()


def _optimiser(model, config: PretrainConfig):
    """AdamW (no weight decay on biases and LayerNorm) and its schedule: linear warm-up, then linear decay to 0."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / max(config.warmup, 1), max(0.0, (config.steps - s) / max(config.steps - config.warmup, 1))))
    return optimizer, schedule


def _resume(out_dir: Path, config: PretrainConfig, inputs: dict, model, optimizer, schedule
            ) -> tuple[int, int, float]:
    """Load the checkpoint ``out_dir`` holds (step, word pieces seen, seconds so far), after refusing one made
    with other settings or inputs (corpus, vocabulary, starting weights), naming what changed."""
    saved_config = json.loads((out_dir / CONFIG_NAME).read_text()) if (out_dir / CONFIG_NAME).is_file() else {}
    if saved_config != asdict(config):
        differ = sorted(k for k in asdict(config) if saved_config.get(k) != asdict(config)[k])
        raise PretrainError(f"{out_dir} holds a run with other settings ({', '.join(differ)}); "
                            "use another folder or the same settings.")
    saved_inputs = json.loads((out_dir / INPUTS_NAME).read_text()) if (out_dir / INPUTS_NAME).is_file() else {}
    changed = [_INPUT_NAMES[k] for k in inputs if saved_inputs.get(k, inputs[k]) != inputs[k]]
    if changed:
        raise PretrainError(f"{out_dir} holds a run on another {' and another '.join(changed)}; resuming it "
                            "would mix two runs: use another folder, or the run's own inputs.")
    state = torch.load(out_dir / CHECKPOINT_NAME, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    logger.info("Resumed %s at step %d", out_dir, state["step"])
    return state["step"], state["tokens_seen"], state["elapsed"]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _load_start(model, folder: Path) -> None:
    """Copy a saved masked LM's weights into ``model``; refuses another size or vocabulary, naming the folder."""
    from transformers import BertForMaskedLM

    if not (Path(folder) / "config.json").is_file():
        raise PretrainError(f"--init-from {folder}: no config.json there (a saved BertForMaskedLM folder is needed).")
    start = BertForMaskedLM.from_pretrained(folder, dtype=torch.float32)
    ours, theirs = model.state_dict(), start.state_dict()
    differ = sorted(k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape)
    if differ:
        raise PretrainError(f"--init-from {folder} has another size or vocabulary ({differ[0]} differs); "
                            "give the same --layers, --hidden, --heads, --intermediate, --max-length and tokenizer.")
    model.load_state_dict(theirs, strict=False)


def ship(model_dir: Path, out_dir: Path, max_shard_mb: int = 9) -> list[Path]:
    """Write a pretrained model for the repository: bf16 weights in shards of at most ``max_shard_mb`` MB.

    The masked-LM head is kept (the MLM augmentation of the paper's Table 1 uses it); ``AutoModel`` loads the
    encoder and ignores the head. Returns the files written.
    """
    from transformers import AutoTokenizer, BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(model_dir).to(torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.model_max_length = model.config.max_position_embeddings
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, max_shard_size=f"{max_shard_mb}MB")
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "config.json"  # stored in bf16, loaded in fp32: training needs fp32 weights
    config = json.loads(config_path.read_text())
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    too_big = [p.name for p in files if p.stat().st_size > max_shard_mb * 1_000_000]
    if too_big:
        raise PretrainError(f"{', '.join(too_big)} exceed {max_shard_mb} MB: one tensor is larger than a shard.")
    return files

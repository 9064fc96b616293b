"""The training settings: :class:`TrainConfig`, each setting's default, allowed range and help written once.

Every setting is a field of :class:`TrainConfig`; its metadata holds its allowed range (or choices) and its help
text. Everything else reads them from here: the command line's options, the app's sliders and checks, the
recipes, the loss's and the teaching functions' defaults. :func:`setting_spec` gives one setting's
:class:`SettingSpec`; :func:`check_setting` is the one check of a value, raising :class:`SettingError` that
names the setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np

from simcse_core.model.dropout import DROPOUT_RANGE
from simcse_core.model.pooling import POOLERS, PoolerName, check_pooler

TrainMode = Literal["unsup", "sup"]
TRAIN_MODES: tuple[str, ...] = get_args(TrainMode)
SettingKind = Literal["int", "float", "choice", "flag"]


def _number(default: float | None, low: float, high: float, help: str, *, step: float | None = None,
            whole: bool = False, optional: bool = False) -> Any:
    kind = "int" if whole else "float"
    return field(default=default, metadata={"range": (low, high), "help": help, "step": step, "kind": kind,
                                            "optional": optional})


def _choice(default: str | None, choices: tuple[str, ...], help: str, *, optional: bool = False) -> Any:
    return field(default=default, metadata={"choices": choices, "help": help, "kind": "choice", "optional": optional})


def _flag(default: bool | None, help: str, *, optional: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "kind": "flag", "optional": optional})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (defaults: the paper's unsupervised SimCSE, shortened to 100 steps).

    Each field's metadata holds its allowed range and help text (see :func:`setting_spec`); a value outside
    raises :class:`SettingError` naming the field.
    """

    mode: TrainMode = _choice("unsup", TRAIN_MODES, "unsup: sentences, two dropout views of each; sup: (anchor, "
                              "positive[, hard negative]) examples")
    steps: int = _number(100, 1, 10_000_000, "optimizer steps (the paper: one epoch of 1M sentences, 15.6k steps)",
                         step=1, whole=True)
    batch_size: int = _number(64, 2, 4096, "examples per batch; each anchor's negatives are the other B-1 "
                              "(paper: 64 unsupervised)", step=1, whole=True)
    lr: float = _number(3e-5, 1e-7, 1e-2, "peak AdamW learning rate, decayed linearly to 0 (paper: 3e-5 for "
                        "BERT-base unsupervised)")
    # τ: cosine similarities are divided by it; sentence-transformers' MultipleNegativesRankingLoss scale = 1/τ.
    temperature: float = _number(0.05, 0.001, 1.0, "temperature τ of the contrastive loss: cosines are divided by "
                                 "it (paper: 0.05, a scale of 1/τ = 20)", step=0.001)
    dropout: float = _number(0.1, *DROPOUT_RANGE, "dropout probability of the transformer, the only augmentation of "
                             "unsupervised SimCSE (paper: 0.1)", step=0.05)
    fixed_dropout_mask: bool = _flag(False, "unsup only: both views share ONE dropout mask (paper Table 3, "
                                     "'fixed 0.1')")
    # The training length; the encoder's inference limit is another setting (EncoderConfig.token_limit).
    max_length: int = _number(32, 2, 512, "tokens per sentence in training, longer ones cut (paper: 32)",
                              step=1, whole=True)
    pooler: PoolerName | None = _choice(None, POOLERS, "pooler to train with; None keeps the encoder's",
                                        optional=True)
    mlp_only_train: bool | None = _flag(None, "pooler cls: the MLP head in training only; None: the paper's rule "
                                        "(yes for unsup, no for sup)", optional=True)
    hard_negative_weight: float = _number(1.0, 0.1, 4.0, "weight α of each anchor's own hard negative (sup "
                                          "triplets; paper: 1)", step=0.1)
    seed: int = _number(42, 0, 2**32 - 1, "one seed for torch (dropout masks, a new MLP head), numpy, random and "
                        "the batch order", step=1, whole=True)
    time_budget_s: float | None = _number(None, 0.001, 7 * 86_400.0, "stop after this many wall-clock seconds "
                                          "(evaluations included); None: run every step", optional=True)
    eval_every: int = _number(25, 0, 10_000_000, "evaluate every this many steps (0: before and after only)",
                              step=1, whole=True)
    warmup: int = _number(0, 0, 10_000_000, "linear warmup steps from 0 to lr, then linear decay to 0 (at most "
                          "steps)", step=1, whole=True)
    # A "warmup-stable-decay" schedule when below 1: lr is held after the warmup, then decays in the last part.
    decay_fraction: float = _number(1.0, 0.0, 1.0, "share of the steps after warmup over which lr decays linearly "
                                    "to 0, the last ones; before them lr is held (1: decays from the first, the "
                                    "paper's schedule; 0: held to the end)", step=0.05)
    weight_decay: float = _number(0.0, 0.0, 1.0, "AdamW weight decay, not on biases and LayerNorm weights "
                                  "(paper: 0)")
    adam_beta2: float = _number(0.999, 0.5, 0.9999, "AdamW's beta2: how slowly the squared-gradient average "
                                "forgets (paper: 0.999, Hugging Face's default)")
    max_grad_norm: float = _number(1.0, 0.0, 1000.0, "clip the global gradient norm to this (0: no clipping)")
    mini_batch_size: int | None = _number(None, 1, 4096, "encode this many examples at a time (GradCache: the "
                                          "same loss and gradients in a mini-batch's memory); None: all at once",
                                          step=1, whole=True, optional=True)

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        for f in fields(self):
            try:
                value = check_setting(f.name, getattr(self, f.name))
            except SettingError as err:
                problems[f.name] = str(err)
            else:
                object.__setattr__(self, f.name, value)  # the canonical form (64.0 -> 64)
        if "warmup" not in problems and "steps" not in problems and self.warmup > self.steps:
            problems["warmup"] = f"warmup must be at most steps ({self.steps}), got {self.warmup!r}."
        if self.fixed_dropout_mask and self.mode == "sup":
            problems["fixed_dropout_mask"] = "fixed_dropout_mask is an unsupervised ablation (mode 'unsup')."
        if problems:
            raise SettingError(problems)

    @property
    def resolved_mlp_only_train(self) -> bool:
        """``mlp_only_train``, or when None the paper's rule: :func:`paper_mlp_only_train` of the mode."""
        return paper_mlp_only_train(self.mode) if self.mlp_only_train is None else self.mlp_only_train


def paper_mlp_only_train(mode: TrainMode) -> bool:
    """The paper's rule for the ``cls`` pooler's MLP head: in training only for unsupervised SimCSE (the test
    vector is the raw [CLS]), kept at test time for supervised SimCSE (Section 6.3 and Appendix A)."""
    return mode == "unsup"


@dataclass(frozen=True)
class SettingSpec:
    """One training setting as the command line and the app show it: default, allowed values, help."""

    name: str  # the TrainConfig field, e.g. "temperature"
    kind: SettingKind  # "int", "float", "choice" (one of choices) or "flag" (True / False)
    default: Any  # TrainConfig's default
    help: str  # one line for --help, a tooltip or an error message
    low: float | None = None  # smallest allowed value (numbers), inclusive
    high: float | None = None  # largest allowed value (numbers), inclusive
    step: float | None = None  # a slider's step (None: any value in the range)
    choices: tuple[str, ...] = ()  # allowed values of a choice
    optional: bool = False  # None is allowed too (its meaning is in the help)


class SettingError(ValueError):
    """A training setting outside its allowed values.

    ``problems`` maps each wrong setting (a TrainConfig field) to its message; ``setting`` is the first one.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        self.setting = next(iter(self.problems))
        if len(self.problems) == 1:
            message = self.problems[self.setting]
        else:
            message = "Invalid training settings: " + " ".join(self.problems.values())
        super().__init__(message)


def _spec(f) -> SettingSpec:
    meta = f.metadata
    low, high = meta.get("range", (None, None))
    return SettingSpec(name=f.name, kind=meta["kind"], default=f.default, help=meta["help"], low=low, high=high,
                       step=meta.get("step"), choices=meta.get("choices", ()), optional=meta["optional"])


# Every training setting by name, in TrainConfig's order (read-only).
SETTINGS: Mapping[str, SettingSpec] = MappingProxyType({f.name: _spec(f) for f in fields(TrainConfig)})


def setting_spec(name: str) -> SettingSpec:
    """The default, allowed values and help of the training setting ``name`` (a TrainConfig field).

    Raises:
        KeyError: no such setting.
    """
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"No training setting {name!r}; the settings are {', '.join(SETTINGS)}.") from None


def setting_default(name: str) -> Any:
    """TrainConfig's default of the setting ``name`` (``setting_spec(name).default``)."""
    return setting_spec(name).default


def check_setting(name: str, value: object) -> Any:
    """``value`` checked against the allowed values of the setting ``name``, in its canonical form.

    Numbers may come as int, float, numpy numbers or numeric strings (a browser's or an API client's form);
    a whole-number setting accepts 64.0 and returns 64.

    Raises:
        SettingError: the value is not allowed; its message names the setting and the allowed values.
    """
    spec = setting_spec(name)
    if value is None and spec.optional:
        return None
    try:
        if spec.kind == "choice":
            return _check_choice(spec, value)
        if spec.kind == "flag":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise ValueError(f"{name} must be True or False{' or None' if spec.optional else ''}, got {value!r}.")
        return _check_number(spec, value)
    except ValueError as err:
        raise SettingError({name: str(err)}) from None


def _check_choice(spec: SettingSpec, value: object) -> str:
    if spec.name == "pooler":
        return check_pooler(value)  # the one pooler check (simcse_core.model.pooling)
    if not isinstance(value, str) or value not in spec.choices:
        raise ValueError(f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}.")
    return value


def _check_number(spec: SettingSpec, value: object) -> float | int:
    allowed = f"a number between {spec.low:g} and {spec.high:g}"
    if spec.kind == "int":
        allowed = f"a whole number between {spec.low:g} and {spec.high:g}"
    if spec.optional:
        allowed += " or None"
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{spec.name} must be {allowed}, got {value!r}.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{spec.name} must be {allowed}, got {value!r}.") from None
    if not math.isfinite(number) or not spec.low <= number <= spec.high:
        raise ValueError(f"{spec.name} must be {allowed}, got {value!r}.")
    if spec.kind == "int":
        if number != int(number):
            raise ValueError(f"{spec.name} must be {allowed}, got {value!r}.")
        return int(number)
    return number

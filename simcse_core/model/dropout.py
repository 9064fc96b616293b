"""The dropout rate of a transformer, set in one place: its dropout modules and its config's dropout fields.

:data:`DROPOUT_RANGE` is the rates this project allows (TrainConfig's ``dropout`` setting reads it); at 0.5
unsupervised SimCSE already collapses (the paper's Table 3).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn
from torch.nn import functional as F

DROPOUT_RANGE = (0.0, 0.5)
# dropout() draws each element's keep-or-drop from a 16-bit random word, four words to each 64-bit draw of
# torch's generator. On a 2-core CPU torch's own dropout (one draw per element) took about a fifth of a raw-bert
# training step (bench/results/dropout_speed.json). The drop probability is rounded to a multiple of 1/65536.
_LEVELS = 1 << 16


def set_dropout(model: nn.Module, rate: float) -> float:
    """Set the dropout probability ``rate`` everywhere ``model`` keeps it; returns the rate as checked.

    Every ``nn.Dropout`` module gets ``p = rate`` (Hugging Face's BERT reads its attention dropout from its
    module too), and so does every float field of ``model.config`` whose name has "dropout" in it, except
    ``classifier_dropout`` (a head this project does not use), so that a saved ``config.json`` and a reload
    carry the rate.

    Raises:
        ValueError: ``rate`` is not a number in :data:`DROPOUT_RANGE`.
    """
    low, high = DROPOUT_RANGE
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not low <= float(rate) <= high:
        raise ValueError(f"dropout must be a number between {low:g} and {high:g}, got {rate!r}.")
    rate = float(rate)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate
    hf_config = getattr(model, "config", None)
    if hf_config is not None:
        for name, value in vars(hf_config).items():
            if "dropout" in name and isinstance(value, float) and name != "classifier_dropout":
                setattr(hf_config, name, rate)
    return rate


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout of ``x``: each element zeroed with probability ``p``, independently, the rest scaled by
    1 / (1 - p); ``x`` itself when not ``training`` or ``p`` is 0.

    On the CPU the masks come from 16-bit random words of torch's seeded generator (``torch.manual_seed``
    reproduces them), ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.1000061) and the scale taken from the
    rounded ``p``, so every element keeps its expected value. Elsewhere it is ``torch.nn.functional.dropout``.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    dropped = round(p * _LEVELS)  # of the 65,536 values of a word, this many drop
    words = torch.randint(-(2**63), 2**63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64)  # full 64 bits
    lanes = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform on -32768..32767
    keep = lanes >= dropped - _LEVELS // 2
    return torch.where(keep, x * (_LEVELS / (_LEVELS - dropped)), 0.0)

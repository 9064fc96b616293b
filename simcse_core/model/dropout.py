"""The dropout rate of a transformer, set in one place: its dropout modules and its config's dropout fields.

:data:`DROPOUT_RANGE` is the rates this project allows (TrainConfig's ``dropout`` setting reads it); at 0.5
unsupervised SimCSE already collapses (the paper's Table 3).
"""

from __future__ import annotations

import numbers

from torch import nn

DROPOUT_RANGE = (0.0, 0.5)


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

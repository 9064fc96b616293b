"""The dropout rate of a transformer, set in one place: its dropout modules and its config's dropout fields."""

from __future__ import annotations

from torch import nn

from simcse_core.training.config import check_setting


def set_dropout(model: nn.Module, rate: float) -> float:
    """Set the dropout probability ``rate`` everywhere ``model`` keeps it; returns the rate as checked.

    Every ``nn.Dropout`` module gets ``p = rate`` (Hugging Face's BERT reads its attention dropout from its
    module too), and so does every float field of ``model.config`` whose name has "dropout" in it, except
    ``classifier_dropout`` (a head this project does not use), so that a saved ``config.json`` and a reload
    carry the rate.

    Raises:
        SettingError: ``rate`` is outside TrainConfig's dropout range (``setting_spec("dropout")``).
    """
    rate = check_setting("dropout", rate)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = rate
    hf_config = getattr(model, "config", None)
    if hf_config is not None:
        for name, value in vars(hf_config).items():
            if "dropout" in name and isinstance(value, float) and name != "classifier_dropout":
                setattr(hf_config, name, rate)
    return rate

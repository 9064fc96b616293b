"""What the twins and the loss panels read besides their text: the model they start from (the raw model, or the
one picked at the top) and training settings, checked against the core's ranges."""

from __future__ import annotations

from simcse_core.teaching import ablations, lessons
from simcse_core.training.config import setting_spec
from ui.present.text import model_shown
from ui.serving.config import START_CHOICES, START_RAW
from ui.serving.errors import check_training_setting
from ui.serving.studio import check_start


def setting_range(name: str) -> tuple[float, float]:
    """A slider's range: the core's allowed values of the training setting ``name``."""
    spec = setting_spec(name)
    return spec.low, spec.high


def check_setting(value: object, name: str, field: str) -> float:
    """``value`` checked by the core as the training setting ``name`` (InputError naming ``field``)."""
    return check_training_setting(value, name, field)


def describe_start(start: str | None, choice: str | None, pooler: str | None) -> str:
    """The line under "Start from": which model the twins and the loss use, and that presets use the raw model."""
    presets = (f"Ablation presets always start from `{ablations.START_MODEL}`, as the paper's start from BERT-base; "
               "the cone draws a trained model against the model it started from.")
    if check_start(start) == START_RAW:
        return (f"The twins and the loss use **`{lessons.START_MODEL}`** through `{lessons.START_POOLER}` (the "
                f"lesson's pooler): a language model never trained on sentence pairs, where SimCSE starts. To look "
                f"at another model, choose “{START_CHOICES[1][0]}”. {presets}")
    return (f"**You switched**: the twins and the loss now use the model picked at the top (**{choice}**, "
            f"`{pooler}` pooler), not `{lessons.START_MODEL}`. {presets}")


def start_shown(start: str | None, choice: str, encoder) -> str:
    return encoder.description if check_start(start) == START_RAW else model_shown(choice, encoder)


def start_shown_note(start: str | None, choice: str | None, pooler: str | None) -> dict:
    """Handler: the line under "Start from" follows it and the pickers."""
    return {"note": describe_start(start, choice, pooler)}

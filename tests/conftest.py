"""Shared fixtures: a tiny random BERT saved to disk once per session, and the real packaged model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_STSB = REPO.parent / "shared" / "data" / "stsb"

# A small word list: enough for test sentences to tokenize into real word pieces.
_WORDS = (
    "a the man woman dog cat is are was plays playing play guitar piano runs running eats eating food "
    "car drives driving road red blue green big small house on in of and to with he she it they "
    "football ball park sun rain market stock fell rose price bank river boat sea fish bird sings "
    "child children school reads book cooks kitchen ##s ##ing ##ed . , ! ?"
).split()


def _tiny_vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = list(dict.fromkeys(special + _WORDS + letters))
    return vocab[:99]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised BERT (the shape transformers' own tests use) with a word-piece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = _tiny_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=64,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A per-test copy of the tiny model folder, free to be changed."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


@pytest.fixture
def tiny_encoder(tiny_model_dir: Path):
    """A fresh fp32 encoder on the tiny model, mean pooling, on the CPU."""
    from simcse_core.model.loading import load_encoder

    return load_encoder(tiny_model_dir, pooler="mean", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def minilm():
    """The real bundled all-MiniLM-L6-v2 (loaded once; tests must not train it: use .copy())."""
    from simcse_core.model.loading import load_encoder

    return load_encoder("minilm", pooler="mean", device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def shared_stsb() -> Path:
    """The shared STS-B copy (tests and benchmarks only)."""
    if not (SHARED_STSB / "test.csv").is_file():
        pytest.skip(f"shared STS-B not found at {SHARED_STSB}")
    return SHARED_STSB

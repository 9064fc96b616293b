"""Discrete augmentations of the paper's Table 1, to set against dropout: crop, word deletion, synonyms, MLM.

Each turns a sentence into a positive view of itself; training on ``(sentence, view)`` pairs with in-batch
negatives is then SimCSE with that augmentation instead of (or on top of) dropout's two views.

- ``crop`` k %: a random contiguous span keeping 100 - k % of the words;
- ``word deletion`` k %: each word deleted with probability k %;
- ``delete one word``: one random word deleted;
- ``synonym replacement``: one random word replaced by a WordNet synonym, as the paper's Table 1 does with
  nlpaug (here from Debian's ``wordnet-base``; without it the augmentation is unavailable and says so);
- ``MLM 15 %``: 15 % of the word pieces masked and filled in by a masked language model's top prediction
  (the paper uses BERT-base; here the raw model's own MLM head).

All are seeded by the caller's :class:`random.Random`; none changes the sentence list it is given.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

WORDNET_DIR = Path("/usr/share/wordnet")


class AugmentationUnavailable(RuntimeError):
    """An augmentation needs something this machine lacks; the message says what to install."""


def crop(sentence: str, ratio: float, rng: random.Random) -> str:
    """A random contiguous span of the words, ``1 - ratio`` of them (at least one)."""
    words = sentence.split()
    keep = max(1, round(len(words) * (1 - ratio)))
    start = rng.randrange(len(words) - keep + 1)
    return " ".join(words[start:start + keep])


def word_deletion(sentence: str, ratio: float, rng: random.Random) -> str:
    """Each word deleted with probability ``ratio`` (one word stays if all would go)."""
    words = sentence.split()
    kept = [w for w in words if rng.random() >= ratio]
    return " ".join(kept) if kept else rng.choice(words)


def delete_one_word(sentence: str, rng: random.Random) -> str:
    """The sentence without one random word (a one-word sentence is kept)."""
    words = sentence.split()
    if len(words) < 2:
        return sentence
    del words[rng.randrange(len(words))]
    return " ".join(words)


@lru_cache(maxsize=1)
def wordnet_synonyms(folder: Path = WORDNET_DIR) -> dict[str, tuple[str, ...]]:
    """Every WordNet lemma (lower case) mapped to the other lemmas of the synsets it is in."""
    files = [folder / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    if not all(f.is_file() for f in files):
        raise AugmentationUnavailable(
            "Synonym replacement needs WordNet: apt-get install wordnet-base (on a Hugging Face Space, list "
            "wordnet-base in packages.txt).")
    synonyms: dict[str, set[str]] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  "):
                continue
            fields = line.split(" ", 4)
            count = int(fields[3], 16)
            words = line.split(" ")[4:4 + 2 * count:2]
            lemmas = [re.sub(r"\(.*\)$", "", w).replace("_", " ").lower() for w in words]
            for lemma in lemmas:
                synonyms.setdefault(lemma, set()).update(x for x in lemmas if x != lemma)
    return {word: tuple(sorted(others)) for word, others in synonyms.items() if others}


def synonym_replacement(sentence: str, rng: random.Random) -> str:
    """One random word that has a WordNet synonym replaced by one of its synonyms (unchanged if none has)."""
    table = wordnet_synonyms()
    words = sentence.split()
    candidates = [i for i, w in enumerate(words) if _bare(w) in table]
    if not candidates:
        return sentence
    i = rng.choice(candidates)
    bare = _bare(words[i])
    words[i] = words[i].lower().replace(bare, rng.choice(table[bare]), 1)
    return " ".join(words)


def _bare(word: str) -> str:
    return word.strip(".,;:!?\"'()").lower()


def mlm_replacement(sentences: Sequence[str], model_dir: str, seed: int, share: float = 0.15,
                    batch_size: int = 64) -> list[str]:
    """Each sentence with ``share`` of its word pieces masked and filled by the MLM's top prediction."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertForMaskedLM.from_pretrained(model_dir).eval()
    generator = torch.Generator().manual_seed(seed)
    special = torch.tensor(tokenizer.all_special_ids)
    views: list[str] = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(list(sentences[start:start + batch_size]), padding=True, truncation=True,
                              max_length=64, return_tensors="pt")
            ids = batch["input_ids"]  # (B, T)
            candidates = batch["attention_mask"].bool() & ~torch.isin(ids, special)
            chosen = (torch.rand(ids.shape, generator=generator) < share) & candidates
            masked = ids.masked_fill(chosen, tokenizer.mask_token_id)
            logits = model(input_ids=masked, attention_mask=batch["attention_mask"]).logits  # (B, T, V)
            logits[..., special] = -float("inf")  # fill with words, never with [CLS], [SEP] ...
            filled = torch.where(chosen, logits.argmax(-1), ids)
            views += tokenizer.batch_decode(filled, skip_special_tokens=True)
    return views


def make_view(kind: str, ratio: float = 0.0) -> Callable[[str, random.Random], str]:
    """The sentence-level augmentation named ``kind`` as a function of (sentence, rng)."""
    if kind == "crop":
        return lambda s, rng: crop(s, ratio, rng)
    if kind == "word_deletion":
        return lambda s, rng: word_deletion(s, ratio, rng)
    if kind == "delete_one_word":
        return delete_one_word
    if kind == "synonym":
        wordnet_synonyms()  # fail now, with the install hint, rather than in the middle of a run
        return synonym_replacement
    raise ValueError(f"Unknown augmentation {kind!r}; choose crop, word_deletion, delete_one_word or synonym.")


def positive_pairs(sentences: Sequence[str], kind: str, ratio: float = 0.0, seed: int = 0,
                   mlm_model_dir: str | None = None) -> list[tuple[str, str]]:
    """``(sentence, augmented view)`` pairs for training, seeded."""
    if kind == "mlm":
        if mlm_model_dir is None:
            raise ValueError("The MLM augmentation needs the folder of a masked language model.")
        return list(zip(sentences, mlm_replacement(sentences, mlm_model_dir, seed, share=ratio or 0.15)))
    view = make_view(kind, ratio)
    rng = random.Random(seed)
    return [(s, view(s, rng)) for s in sentences]

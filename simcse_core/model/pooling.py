"""Pooling: from token states to one sentence vector. The only pooling code in the project.

Encoding, training and evaluation all call :class:`Pooler`, so the vector a model is trained on is the vector
it is evaluated and searched with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

PoolerName = Literal["cls", "cls_before_pooler", "mean", "avg_first_last", "avg_top2"]
POOLERS: tuple[str, ...] = get_args(PoolerName)
# The pooler an encoder uses when none is asked for and the model did not save one (all-MiniLM-L6-v2 was
# trained with mean pooling).
DEFAULT_POOLER: PoolerName = "mean"

POOLER_HELP: dict[str, str] = {
    "cls": ("[CLS] vector through an MLP head (dense + tanh): the paper's supervised default (unsupervised: the "
            "MLP in training only)"),
    "cls_before_pooler": "the raw [CLS] vector, no MLP",
    "mean": "average of the last layer's token vectors (padding excluded)",
    "avg_first_last": "average of the first and last layers' token vectors",
    "avg_top2": "average of the last two layers' token vectors",
}


def check_pooler(name: object) -> PoolerName:
    """``name`` if it is one of :data:`POOLERS`; the one pooler check of the project.

    Raises:
        ValueError: any other value, with the list of poolers.
    """
    if not isinstance(name, str) or name not in POOLERS:
        raise ValueError(f"Unknown pooler {name!r}; choose one of {', '.join(POOLERS)}.")
    return name  # type: ignore[return-value]


def masked_mean(token_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: ``token_states`` (B, T, H), ``attention_mask`` (B, T) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(token_states.dtype)  # (B, T, 1)
    summed = (token_states * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


class Pooler(nn.Module):
    """Turns a transformer's outputs into sentence vectors.

    Args:
        name: one of :data:`POOLERS`.
        hidden_size: the transformer's hidden size (the MLP head of ``cls`` is hidden_size x hidden_size).
        mlp_only_train: for ``cls``, apply the MLP head during training only and use the raw [CLS] vector at
            test time (the paper's choice for unsupervised SimCSE, Section 3 / Appendix).
    """

    def __init__(self, name: PoolerName, hidden_size: int, mlp_only_train: bool = False) -> None:
        super().__init__()
        self.name = check_pooler(name)
        self.mlp_only_train = mlp_only_train
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh()) if name == "cls" else None

    @property
    def needs_hidden_states(self) -> bool:
        """Whether the pooler reads intermediate layers (``output_hidden_states=True``)."""
        return self.name in ("avg_first_last", "avg_top2")

    def forward(
        self,
        last_hidden_state: torch.Tensor,
        attention_mask: torch.Tensor,
        hidden_states: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Pool (B, T, H) token states to (B, H) sentence vectors (not normalised)."""
        if self.name in ("cls", "cls_before_pooler"):
            cls = last_hidden_state[:, 0]  # (B, H)
            if self.mlp is not None and (self.training or not self.mlp_only_train):
                cls = self.mlp(cls)
            return cls
        if self.name == "mean":
            return masked_mean(last_hidden_state, attention_mask)
        if hidden_states is None:
            raise ValueError(f"The {self.name} pooler needs the model's hidden states.")
        if self.name == "avg_first_last":
            # hidden_states[0] is the embedding layer; [1] is the first transformer layer (as the official
            # SimCSE code does after its fix of the first/last pooler).
            first, last = hidden_states[1], hidden_states[-1]
        else:
            first, last = hidden_states[-2], hidden_states[-1]
        return masked_mean((first + last) / 2.0, attention_mask)

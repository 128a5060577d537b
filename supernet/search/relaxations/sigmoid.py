"""FairDARTS: independent sigmoid gates and the zero-one loss.

Chu et al., "Fair DARTS: Eliminating Unfair Advantages in Differentiable Architecture
Search" (ECCV 2020). Each candidate is weighted by ``σ(α_k)``: candidates do not compete
(no softmax), so skip connections cannot crowd the others out. The zero-one loss
``L_01 = -(1/N) Σ (σ(α) - 0.5)²`` over all ``N`` architecture parameters pushes every
weight towards 0 or 1, added to the architecture loss with weight ``w01`` (10 in the paper).

The ``fairdarts`` strategy discretizes layer-level edges by the reference's threshold
(:class:`~supernet.search.discretize.FairThreshold`): of each node's ``max_inputs``
in-edges of highest ``σ``, those whose best ``σ`` reaches 0.85 keep that op, so a node
keeps a variable number of inputs, possibly none; it searches without ``none``. Keep/drop
gates of the channel and neuron levels use the threshold ``σ >= 1/2``
(:meth:`Sigmoid.discrete`). The ``fairdarts`` strategy runs with
DARTS' loop settings (the reference searches with batch 128, weight learning rate 0.005
and architecture Adam at 3e-3 with betas (0.9, 0.999)).

Examples:
    >>> import torch
    >>> d = Sigmoid().decide("e", torch.zeros(1, 3))
    >>> d.weights
    tensor([[0.5000, 0.5000, 0.5000]])
"""

from __future__ import annotations

import math

import torch

from supernet.gates import Decision
from supernet.search.relaxations.base import SearchRelaxation, _gate_items

__all__ = ["Sigmoid", "zero_one_loss"]


def zero_one_loss(alphas) -> torch.Tensor:
    """``-(1/N) Σ (σ(α) - 0.5)²`` over every entry of ``alphas``."""
    flat = torch.cat([a.reshape(-1) for a in alphas])
    return -((torch.sigmoid(flat) - 0.5) ** 2).mean()


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class Sigmoid(SearchRelaxation):
    """Independent sigmoid weights; every candidate runs.

    Args:
        w01: weight of the zero-one loss in the architecture loss (0 disables it).
    """

    def __init__(self, w01: float = 10.0):
        super().__init__()
        self.w01 = float(w01)

    def decide(self, key, alpha):
        return Decision(torch.sigmoid(alpha))

    def loss(self, module):
        alphas = [a for _, a in _gate_items(module)]
        if not self.w01 or not alphas:
            return 0.0
        return self.w01 * zero_one_loss(alphas)

    def discrete(self, alpha):
        """The chosen candidate per gate. A keep/drop gate of the channel and neuron levels
        (two candidates; "drop" is a zero op, so only ``σ(α_keep)`` reaches the output) keeps
        its unit or connection iff ``σ(α_keep) >= 1/2``: FairDARTS' threshold rule, since
        candidates do not compete. Gates of more candidates: the argmax."""
        if alpha.shape[-1] == 2:
            return (torch.sigmoid(alpha[..., 0]) < 0.5).long()
        return alpha.argmax(-1)

    def probabilities(self, module):
        return {k: torch.sigmoid(a.detach()) for k, a in _gate_items(module)}

    def grow(self, alpha, policy, source, share=0.5):
        """Append a candidate keeping the output: with no competition the others keep
        their logits; ``"zero"`` gives the new (zero-output) op ``σ = share``; ``"split"``
        halves ``σ(α_source)`` between the source and its copy.

        ``alpha=None`` is an edge without a gate, whose single op has weight one: ``"split"``
        gives the op and its copy ``σ = 1/2`` each, ``"zero"`` the new op ``share`` and the
        (zero) op the rest."""
        if policy == "zero" and not 0.0 < share < 1.0:
            raise ValueError(f"share must be in (0, 1), got {share}")
        if alpha is None:
            if policy == "zero":
                return torch.tensor([[_logit(1.0 - share), _logit(share)]])
            return torch.zeros(1, 2)
        alpha = alpha.detach()
        if policy == "random" or source is None:
            return torch.cat([alpha, alpha.mean(-1, keepdim=True)], dim=-1)
        if policy == "zero":
            new = torch.full_like(alpha[:, :1], _logit(share))
            return torch.cat([alpha, new], dim=-1)
        half = torch.sigmoid(alpha[:, source : source + 1]) / 2
        logit = torch.log(half) - torch.log1p(-half)
        out = alpha.clone()
        out[:, source : source + 1] = logit
        return torch.cat([out, logit], dim=-1)

    def extra_repr(self) -> str:
        return f"w01={self.w01}"

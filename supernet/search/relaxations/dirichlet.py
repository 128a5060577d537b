"""DrNAS: the mixing weights of each gate sampled from a Dirichlet distribution.

Chen, Wang, Cheng, Tang and Hsieh, "DrNAS: Dirichlet Neural Architecture Search" (ICLR
2021). Instead of a point estimate ``softmax(α)``, each gate's mixing weights are a sample
``w ~ Dir(β)`` of a Dirichlet distribution whose concentration is learned (the paper's
objective: ``min_β E_{q(w|β)}[L_val(w, θ*)] + λ d(β, β̂)``). As the authors' code maps it, the
concentration is ``β = ELU(α) + 1`` (positive for every real ``α``). Each forward of the
weight and architecture passes draws a fresh sample with the pathwise (reparameterized)
gradient of the Dirichlet (Jankowiak and Obermeyer, "Pathwise Derivatives Beyond the
Reparameterization Trick", ICML 2018; ``torch.distributions.Dirichlet.rsample``), so the
gradient of the validation loss reaches ``α`` through the sample.

The regularizer ``d(β, β̂)`` is, as the ``kl`` option of the authors' code,
``λ Σ_gates KL(Dir(β) || Dir(1))``: the KL divergence to the uniform Dirichlet prior,
summed over every gate, with ``λ = reg_scale = 1e-3`` (their default). Their other option,
``l2`` (their default type; the same ``1e-3``), is Adam's weight decay on ``α``; here
``reg="l2"`` adds ``(λ/2) ||α||²`` to the architecture loss, whose gradient ``λ α`` is that
weight decay's.

What the authors' code does that is kept: discretization ranks candidates by
``softmax(α)`` (their ``genotype``; the argmax of each gate is the one of ``β`` and of the
Dirichlet mean, the top-k edges of a node may differ); ``rank="mean"`` ranks by the
Dirichlet mean ``β / Σβ`` instead. What differs: their forward samples even when
measuring; here the ``"eval"`` phase mixes with the Dirichlet mean ``β / Σβ`` (a
deterministic measure). The progressive learning of the paper (partial channels
widened and candidates pruned between stages) is not part of this relaxation
(the strategy ``drnas`` is DrNAS without progressive learning).

Examples:
    >>> import torch
    >>> from supernet.search.relaxations.dirichlet import DirichletGates
    >>> relax = DirichletGates()
    >>> alpha = torch.tensor([[0.0, 1.0, -1.0]])
    >>> relax.concentration(alpha)  # ELU(α) + 1
    tensor([[1.0000, 2.0000, 0.3679]])
    >>> w = relax.decide("e", alpha).weights  # a sample: on the simplex
    >>> w.shape, bool(torch.isclose(w.sum(), torch.tensor(1.0)))
    (torch.Size([1, 3]), True)
    >>> relax.set_phase("eval"); relax.decide("e", alpha).weights  # the mean
    tensor([[0.2969, 0.5938, 0.1092]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from supernet.errors import ConfigError, SearchError
from supernet.gates import Decision, _gate_items
from supernet.search.discretize.layer import ArgmaxDiscretization
from supernet.search.relaxations.base import SearchRelaxation

__all__ = ["DirichletGates", "REGULARIZERS", "RANKS", "register_strategies"]

#: The regularizers of :class:`DirichletGates` (``None``: none).
REGULARIZERS = ("kl", "l2")
#: What :meth:`DirichletGates.probabilities` ranks candidates by.
RANKS = ("softmax", "mean")


class DirichletGates(SearchRelaxation):
    """DrNAS (Chen et al., ICLR 2021): per forward, ``w ~ Dir(ELU(α) + 1)`` sampled with
    the pathwise gradient; every candidate runs with its sampled weight.

    Args:
        reg: the regularizer added to the architecture loss: ``"kl"`` (``λ Σ KL(Dir(β) ||
            Dir(1))``, the paper's), ``"l2"`` (``(λ/2) ||α||²``: the authors' Adam weight
            decay) or ``None``.
        reg_scale: ``λ`` (``1e-3``, the authors' default).
        rank: what discretization ranks candidates by: ``"softmax"`` (``softmax(α)``, the
            authors' ``genotype``) or ``"mean"`` (the Dirichlet mean).
    """

    method = "DrNAS"

    def __init__(self, reg: str | None = "kl", reg_scale: float = 1e-3,
                 rank: str = "softmax"):
        super().__init__()
        if reg is not None and reg not in REGULARIZERS:
            raise ConfigError(f"DrNAS: reg {reg!r} is unknown; use one of "
                              f"{list(REGULARIZERS)} or None")
        if isinstance(reg_scale, bool) or not isinstance(reg_scale, (int, float)) \
                or not reg_scale >= 0:
            raise ConfigError(f"DrNAS: reg_scale must be a number >= 0, got {reg_scale!r}")
        if rank not in RANKS:
            raise ConfigError(f"DrNAS: rank {rank!r} is unknown; use one of {list(RANKS)}")
        self.reg, self.reg_scale, self.rank = reg, float(reg_scale), rank

    @staticmethod
    def concentration(alpha: torch.Tensor) -> torch.Tensor:
        """``β = ELU(α) + 1``, the authors' map from logits to concentrations."""
        return F.elu(alpha) + 1

    def _check_finite(self, key, alpha):
        if not torch.isfinite(alpha).all():
            raise SearchError(
                f"{self.method}: the architecture logits of gate {key!r} are not finite "
                f"({alpha.detach().flatten()[:8].tolist()}); restore them (e.g. from a "
                "checkpoint) or lower arch_lr")

    def sample(self, alpha: torch.Tensor) -> torch.Tensor:
        """One Dirichlet sample per row of ``alpha``, differentiable in ``alpha``."""
        return Dirichlet(self.concentration(alpha)).rsample()

    def mean(self, alpha: torch.Tensor) -> torch.Tensor:
        """The Dirichlet mean ``β / Σβ`` per row."""
        beta = self.concentration(alpha)
        return beta / beta.sum(-1, keepdim=True)

    def forward(self, arch):
        # One draw for all gates of the same width: a few tensor ops instead of some per gate
        groups: dict[tuple, list[str]] = {}
        for k, a in arch.items():
            groups.setdefault((a.shape[-1], a.dtype, a.device), []).append(k)
        out = {}
        for keys in groups.values():
            alphas = [arch[k] for k in keys]
            alpha = torch.cat(alphas) if len(alphas) > 1 else alphas[0]
            if not torch.isfinite(alpha).all():
                for k, a in zip(keys, alphas):
                    self._check_finite(k, a)
            w = self.mean(alpha) if self.phase == "eval" else self.sample(alpha)
            rows = 0
            for k, a in zip(keys, alphas):
                out[k] = Decision(w[rows:rows + a.shape[0]])
                rows += a.shape[0]
        return out

    def decide(self, key, alpha):
        self._check_finite(key, alpha)
        return Decision(self.mean(alpha) if self.phase == "eval" else self.sample(alpha))

    def loss(self, module):
        if self.reg is None or not self.reg_scale:
            return 0.0
        alphas = [a for _, a in _gate_items(module)]
        if not alphas:
            return 0.0
        if self.reg == "l2":
            return self.reg_scale / 2 * sum((a ** 2).sum() for a in alphas)
        total = 0.0
        for a in alphas:
            beta = self.concentration(a)
            total = total + kl_divergence(Dirichlet(beta), Dirichlet(torch.ones_like(beta))).sum()
        return self.reg_scale * total

    def probabilities(self, module):
        if self.rank == "mean":
            return {k: self.mean(a.detach()) for k, a in _gate_items(module)}
        return {k: torch.softmax(a.detach(), -1) for k, a in _gate_items(module)}

    def grow(self, alpha, policy, source, share=0.5):
        """Append a candidate keeping the Dirichlet mean (the expected output): the new one
        takes the fraction ``share`` (``"zero"``) or half (``"split"``) of the concentration
        of ``source``, so ``Σβ`` and every other ``β_k / Σβ`` stay; ``"random"`` appends the
        row's mean logit. ``alpha=None`` (an edge of one op, weight one) starts from
        ``β = 1``."""
        if policy == "random" or source is None:
            return super().grow(alpha, policy, source, share)
        frac = 0.5 if policy == "split" else share
        if not 0.0 < frac < 1.0:
            raise ValueError(f"share must be in (0, 1), got {frac}")
        beta = self.concentration(torch.zeros(1, 1) if alpha is None else alpha.detach())
        new = beta[:, source:source + 1] * frac
        beta = beta.clone()
        beta[:, source:source + 1] *= 1 - frac
        beta = torch.cat([beta, new], dim=-1)
        # the inverse of ELU(α) + 1: α = β - 1 where β >= 1, else log β
        return torch.where(beta >= 1, beta - 1, torch.log(beta))

    def extra_repr(self) -> str:
        return f"reg={self.reg!r}, reg_scale={self.reg_scale:g}, rank={self.rank!r}"


def register_strategies(register_strategy, Strategy) -> None:
    """Register the strategy ``drnas`` (called by :mod:`supernet.search.strategies`)."""

    @register_strategy("drnas")
    def _drnas(reg: str | None = "kl", reg_scale: float = 1e-3, rank: str = "softmax"):
        """DrNAS (Chen et al., ICLR 2021) without progressive learning: Dirichlet samples.

        Mixing weights sampled per forward from ``Dir(β)``, ``β = ELU(α) + 1``, the KL to
        the uniform prior (``λ = 1e-3``) in the architecture loss, argmax of ``softmax(α)``
        (:class:`~supernet.search.relaxations.dirichlet.DirichletGates`). The partial
        channels widened and the candidates pruned between the paper's two stages are not
        run. Loop settings of the authors' DARTS-space search: batch 64, weight lr 0.1
        cosine to 0, Adam on ``α`` at 6e-4 with betas (0.5, 0.999) and no weight decay
        with the KL (``reg="l2"``: the decay is the relaxation's loss), 50 epochs."""
        return Strategy("drnas", DirichletGates(reg, reg_scale, rank), ArgmaxDiscretization(),
                        config={"batch_size": 64, "w_lr": 0.1, "w_lr_min": 0.0,
                                "arch_lr": 6e-4, "arch_betas": (0.5, 0.999),
                                "arch_weight_decay": 0.0})

"""Gumbel relaxations: soft samples (SNAS) and hard samples with straight-through
gradients (GDAS).

* SNAS (Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019): each forward
  draws a relaxed one-hot sample ``z = softmax((log p + g) / τ)`` per gate (``g`` Gumbel
  noise, ``p = softmax(α)``) and mixes every candidate with it; ``τ`` starts at 1 and is
  annealed exponentially. SNAS trains ``θ`` and ``α`` in one back-propagation on the
  training data (single level); the search loop here trains ``α`` on the validation split
  as DARTS does, and SNAS' resource constraint is not part of the relaxation.
* GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours",
  CVPR 2019): the sample is made hard, ``h = one_hot(argmax z)``, and only the sampled op
  runs; the backward pass uses the gradient of ``z`` (straight-through:
  ``h - z.detach() + z``). ``τ`` decays linearly from 10 to 0.1 over the search.

In the ``"eval"`` phase both run the most likely candidate of each gate alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from supernet.errors import SearchError
from supernet.gates import Decision
from supernet.search.relaxations.base import SearchRelaxation, argmax_decision

__all__ = ["GumbelSoftmax", "GumbelMax", "gumbel_noise"]


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log U)`` of the shape of ``like`` (finite)."""
    u = torch.rand_like(like).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


class _Annealed(SearchRelaxation):
    method = ""

    def __init__(self, tau: float):
        super().__init__()
        self.register_buffer("tau", torch.tensor(float(tau)))

    def _check_finite(self, keys, alphas):
        # a sample of non-finite logits is never finite: GDAS would redraw forever
        for k, a in zip(keys, alphas):
            if not torch.isfinite(a).all():
                raise SearchError(
                    f"{self.method}: the architecture logits of gate {k!r} are not finite "
                    f"({a.detach().flatten()[:8].tolist()}); restore them (e.g. from a "
                    "checkpoint) or lower arch_lr"
                )

    def forward(self, arch):
        # One draw for all gates with the same number of candidates: a few large tensor
        # ops instead of a handful per gate.
        if self.phase == "eval":
            return {k: argmax_decision(a) for k, a in arch.items()}
        groups: dict[tuple, list[str]] = {}
        for k, a in arch.items():
            groups.setdefault((a.shape[-1], a.dtype, a.device), []).append(k)
        out = {}
        for keys in groups.values():
            alpha = torch.cat([arch[k] for k in keys])
            if not torch.isfinite(alpha).all():
                self._check_finite(keys, [arch[k] for k in keys])
            decisions = self._decide_rows(alpha)
            rows = 0
            for k in keys:
                n = arch[k].shape[0]
                out[k] = decisions(rows, rows + n)
                rows += n
        return out

    def decide(self, key, alpha):
        if self.phase == "eval":
            return argmax_decision(alpha)
        self._check_finite([key], [alpha])
        return self._decide_rows(alpha)(0, alpha.shape[0])

    def extra_repr(self) -> str:
        return f"tau={float(self.tau):.4g}"


class GumbelSoftmax(_Annealed):
    """SNAS: soft Gumbel-softmax samples; every candidate runs.

    Args:
        tau0: initial temperature (1 in the paper).
        tau_min: temperature reached at the last epoch; annealing is exponential,
            ``τ_e = τ0 (τ_min/τ0)^(e/(E-1))``.
    """

    method = "SNAS"

    def __init__(self, tau0: float = 1.0, tau_min: float = 0.33):
        super().__init__(tau0)
        if not 0 < tau_min <= tau0:
            raise ValueError(f"need 0 < tau_min <= tau0, got tau0={tau0}, tau_min={tau_min}")
        self.tau0, self.tau_min = float(tau0), float(tau_min)

    def on_epoch_start(self, epoch, epochs):
        frac = epoch / max(1, epochs - 1)
        self.tau.fill_(self.tau0 * (self.tau_min / self.tau0) ** frac)

    def sample(self, alpha: torch.Tensor) -> torch.Tensor:
        """A relaxed one-hot sample per row of ``alpha`` (differentiable)."""
        logits = (F.log_softmax(alpha, -1) + gumbel_noise(alpha)) / self.tau
        return torch.softmax(logits, -1)

    def _decide_rows(self, alpha):
        z = self.sample(alpha)
        return lambda i, j: Decision(z[i:j])


class GumbelMax(_Annealed):
    """GDAS: one sampled candidate per gate, straight-through gradients.

    Only the sampled op of each gate is executed (``Decision.active``); its output is
    multiplied by ``h_k = 1`` whose gradient reaches every ``α`` through the softmax. The
    unsampled candidates add nothing, so their gates get no gradient of their own
    (``∂L/∂h_j = 0``). The reference adds each unsampled ``h_j`` (value 0) to the edge's
    output as a scalar, which gives it ``∂L/∂h_j = Σ ∂L/∂out``, as if that op output ones;
    that term is left out here.

    Args:
        tau_max: temperature at the first epoch (10 in the paper).
        tau_min: temperature at the last epoch (0.1), decayed linearly.
    """

    method = "GDAS"

    def __init__(self, tau_max: float = 10.0, tau_min: float = 0.1):
        super().__init__(tau_max)
        if not 0 < tau_min <= tau_max:
            raise ValueError(f"need 0 < tau_min <= tau_max, got {tau_max}, {tau_min}")
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def on_epoch_start(self, epoch, epochs):
        frac = epoch / max(1, epochs - 1)
        self.tau.fill_(self.tau_max - (self.tau_max - self.tau_min) * frac)

    def _decide_rows(self, alpha):
        while True:  # as the reference: redraw the (rare) non-finite sample
            probs = torch.softmax((F.log_softmax(alpha, -1) + gumbel_noise(alpha)) / self.tau, -1)
            if torch.isfinite(probs).all():
                break
        index = probs.detach().argmax(-1)
        hard = F.one_hot(index, alpha.shape[-1]).to(probs.dtype)
        weights = hard - probs.detach() + probs
        active = [[i] for i in index.tolist()]
        return lambda i, j: Decision(weights[i:j], active[i:j])

"""β-DARTS: the Beta-Decay regularization of the architecture parameters.

Ye et al., "β-DARTS: Beta-Decay Regularization for Differentiable Architecture Search",
CVPR 2022. The architecture loss of DARTS gets the term

.. math::

    \\lambda_e \\, L_\\beta, \\qquad
    L_\\beta = \\frac{1}{|E|} \\sum_{(i,j) \\in E} \\log \\sum_{k} \\exp \\alpha^{(i,j)}_k

the smoothmax (logsumexp) of each edge's logits, averaged over the edges (each gate row:
a layer-level edge, or a unit or connection of the channel and neuron levels). Its gradient
is ``∂L_β/∂α_k = softmax(α)_k / |E|``: a step of gradient descent lowers every logit of an
edge in proportion to its softmax weight, the large ones most, which pulls the softmax
weights ``β = softmax(α)`` of each edge toward uniform and keeps their value and variance
from growing (the paper's Eq. 9-12), so that no candidate (skip connections) runs away.

λ grows linearly over the search: ``λ_e = lam_min + (lam_max - lam_min) e / E`` at epoch
``e`` (0-based) of ``E``. The authors' code (``optimizers/darts/architect.py``,
``_backward_step``) computes ``0 + 50 * epoch / 100`` for their NAS-Bench-201 search of 100
epochs: ``lam_min=0``, ``lam_max=50``, ``E=100``. ``ramp_epochs`` sets ``E`` (default: the
search's epochs, so that λ reaches ``lam_max`` at the end whatever the budget; 100 gives the
authors' literal schedule in any search). The rest of the authors' search is DARTS' first
order (Adam 3e-4, betas (0.5, 0.999), decay 1e-3 on α).

Examples:
    >>> import torch
    >>> reg = BetaDecay(lam_max=50.0)
    >>> reg.on_epoch_start(10, 100)
    >>> float(reg.lam)
    5.0
    >>> float(beta_decay_loss([torch.zeros(2, 4)]))  # log 4 on each edge
    1.3862943649291992
"""

from __future__ import annotations

import torch

from supernet.errors import ConfigError
from supernet.gates import _gate_items
from supernet.search.stabilizers.base import Stabilizer

__all__ = ["BetaDecay", "beta_decay_loss"]


def beta_decay_loss(alphas) -> torch.Tensor:
    """``L_β``: the logsumexp of every row of the logits ``alphas`` (a list of ``(n, K)``
    tensors), averaged over all rows."""
    rows = [torch.logsumexp(a, dim=-1).reshape(-1) for a in alphas]
    if not rows:
        return torch.zeros(())
    return torch.cat(rows).mean()


class BetaDecay(Stabilizer):
    """β-DARTS' Beta-Decay regularization, ``λ_e L_β`` added to the architecture loss.

    Args:
        lam_max: λ at the end of the ramp (the authors' 50).
        lam_min: λ at the first epoch (the authors' 0).
        ramp_epochs: the epochs over which λ goes from ``lam_min`` to ``lam_max`` (``None``:
            the search's; the authors' code: 100); after them λ stays at ``lam_max``.

    Attributes:
        lam: the λ of the current epoch (a buffer: checkpointed).
    """

    def __init__(self, lam_max: float = 50.0, lam_min: float = 0.0,
                 ramp_epochs: int | None = None):
        super().__init__()
        for key, v in (("lam_max", lam_max), ("lam_min", lam_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"stabilizer beta_decay: {key}={v!r} must be a number >= 0")
        if ramp_epochs is not None and (isinstance(ramp_epochs, bool)
                                        or not isinstance(ramp_epochs, int) or ramp_epochs < 1):
            raise ConfigError(f"stabilizer beta_decay: ramp_epochs={ramp_epochs!r} must be an "
                              "int >= 1 or null (the search's epochs)")
        self.lam_max, self.lam_min, self.ramp_epochs = float(lam_max), float(lam_min), ramp_epochs
        self.register_buffer("lam", torch.tensor(float(lam_min)))

    def options(self) -> dict:
        return {"lam_max": self.lam_max, "lam_min": self.lam_min,
                "ramp_epochs": self.ramp_epochs}

    def schedule(self, epoch: int, epochs: int) -> float:
        """λ at ``epoch`` (0-based) of a search of ``epochs``."""
        span = self.ramp_epochs or epochs
        t = min(epoch / span, 1.0)
        return self.lam_min + (self.lam_max - self.lam_min) * t

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.lam.fill_(self.schedule(epoch, epochs))

    def loss(self, module, phase: str):
        alphas = [a for _, a in _gate_items(module)]
        return self.lam * beta_decay_loss(alphas).to(self.lam.device)

"""DARTS-: an auxiliary skip connection on every edge, its coefficient decayed to zero.

Chu et al., "DARTS-: Robustly Stepping out of Performance Collapse Without Indicators",
ICLR 2021 (Eq. 3). Each edge computes

.. math::

    \\bar o(x) = \\sum_k \\mathrm{softmax}(\\alpha)_k \\, o_k(x)
                 + \\beta_e \\, \\mathrm{skip}(x)

with the auxiliary term outside the softmax: it gives the skip connection's share of the
gradient to the residual path it stands for, so that the softmax weight of
``skip_connect`` no longer has to grow to carry it (the collapse of DARTS). ``β`` decays
from ``beta`` (1) to 0 over the search; as it vanishes the super-network becomes DARTS'
own, and discretization reads the α alone.

The schedule is the authors' ``DecayScheduler`` (``src/utils.py``) with the settings of
``scripts/run_darts_minus.sh``: ``linear``, ``β_e = beta (T - e) / T`` at epoch ``e``
(0-based) of ``T`` (their ``decay_max_epoch`` = the search's 50 epochs, starting at epoch
0), so ``β`` is 1 at the first epoch and ``beta / T`` at the last; ``cosine`` is their
other choice, ``β_e = beta (1 + cos(π e / T)) / 2``. ``β`` is applied in every pass of the
search (the weight and architecture steps and the measurements), as the authors' network
applies it in every forward.

Which edges get it: in the authors' code (``src/search/model_search.py``, ``MixedOp``)
every edge, the stride-1 ones an identity and the stride-2 ones (reduction cells' inputs)
a ``FactorizedReduce`` of their own. Here the auxiliary term is the edge's own skip
candidate (``skip_connect`` or ``identity``) with ``β`` added to its mixing weight,
``softmax(α) + β e_skip``, which is the same sum computed once: at stride 1 exactly the
authors' identity; at stride 2 the candidate's ``FactorizedReduce`` (its weights shared
with the candidate, where the authors train a separate copy that the search then drops).
An edge without a skip candidate gets no auxiliary term (the authors' space has one on
every edge); a graph with none fails.

Examples:
    >>> s = DartsMinus()
    >>> [round(s.schedule(e, 50), 2) for e in (0, 25, 49)]
    [1.0, 0.5, 0.02]
"""

from __future__ import annotations

import math

import torch

from supernet.compiler.module import module_key
from supernet.errors import ConfigError
from supernet.search.base import require_layer
from supernet.search.stabilizers.base import Stabilizer, with_weights

__all__ = ["DartsMinus", "SKIP_OPS", "skip_indices"]

#: The candidate names that are the skip connection of an edge.
SKIP_OPS = ("skip_connect", "identity")

DECAYS = ("linear", "cosine")


def skip_indices(module) -> dict[str, tuple[int, int]]:
    """Decision key -> ``(index of the skip candidate, number of candidates)``, for every
    layer-level gate with one."""
    from_gates = getattr(module, "gates", None)
    if from_gates is None:
        return {}
    out = {}
    for key, names in from_gates().items():
        for i, name in enumerate(names):
            if name in SKIP_OPS:
                out[module_key(key)] = (i, len(names))
                break
    return out


class DartsMinus(Stabilizer):
    """DARTS-' auxiliary skip connection, ``β_e skip(x)`` on every edge with a skip
    candidate (see the module docstring for the schedule and the edges).

    Args:
        beta: ``β`` at the first epoch (the authors' ``skip_beta``, 1).
        decay: ``"linear"`` (the authors' setting) or ``"cosine"``.
        decay_epochs: ``T`` (``None``: the search's epochs, as the authors'
            ``decay_max_epoch`` = their epochs); after ``T`` epochs ``β`` stays 0.

    Attributes:
        beta_now: ``β`` of the current epoch (a buffer: checkpointed).
    """

    def __init__(self, beta: float = 1.0, decay: str = "linear", decay_epochs: int | None = None):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta < 0:
            raise ConfigError(f"stabilizer darts_minus: beta={beta!r} must be a number >= 0")
        if decay not in DECAYS:
            raise ConfigError(f"stabilizer darts_minus: decay={decay!r}; expected one of "
                              f"{list(DECAYS)}")
        if decay_epochs is not None and (isinstance(decay_epochs, bool)
                                         or not isinstance(decay_epochs, int) or decay_epochs < 1):
            raise ConfigError(f"stabilizer darts_minus: decay_epochs={decay_epochs!r} must be an "
                              "int >= 1 or null (the search's epochs)")
        self.beta, self.decay, self.decay_epochs = float(beta), decay, decay_epochs
        self.register_buffer("beta_now", torch.tensor(float(beta)))
        self._skips = (None, {})  # ((module id, graph version), skip_indices) last read

    def options(self) -> dict:
        return {"beta": self.beta, "decay": self.decay, "decay_epochs": self.decay_epochs}

    def schedule(self, epoch: int, epochs: int) -> float:
        """``β`` at ``epoch`` (0-based) of a search of ``epochs``."""
        span = self.decay_epochs or epochs
        t = min(epoch / span, 1.0)
        if self.decay == "linear":
            return self.beta * (1.0 - t)
        return self.beta * (1.0 + math.cos(math.pi * t)) / 2.0

    def attach(self, module) -> None:
        graph = module.graph
        name = graph.name
        require_layer(graph, "stabilizer darts_minus adds a skip connection to the candidate "
                      "ops of layer-level edges", "use beta_decay or sdarts there")
        if not skip_indices(module):
            raise ConfigError(
                f"stabilizer darts_minus: {name} has no "
                f"gated edge with a skip candidate ({' or '.join(SKIP_OPS)}) to carry the "
                "auxiliary skip connection; add skip_connect to the edges' candidates")

    def _skip_indices(self, module, fresh: bool = False) -> dict[str, tuple[int, int]]:
        """:func:`skip_indices` of ``module``, read again after each edit of its graph."""
        graph = getattr(module, "graph", None)
        key = (id(module), getattr(graph, "version", None))
        if fresh or self._skips[0] != key:
            self._skips = (key, skip_indices(module))
        return self._skips[1]

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.beta_now.fill_(self.schedule(epoch, epochs))

    def decisions(self, module, decisions, phase):
        beta = self.beta_now
        if float(beta) == 0.0:
            return decisions
        skips = self._skip_indices(module)
        out = dict(decisions)
        if any(key in decisions and decisions[key].weights is not None
               and decisions[key].weights.shape[-1] != n for key, (_, n) in skips.items()):
            skips = self._skip_indices(module, fresh=True)  # candidates changed
        for key, (k, _) in skips.items():
            d = decisions.get(key)
            if d is None or d.weights is None:
                continue
            w = d.weights
            aux = torch.zeros_like(w)
            aux[..., k] = beta.to(w)
            new = with_weights(d, w + aux)
            if d.active is not None:  # a sampled path runs the skip too
                new.active = [a if k in a else [*a, k] for a in d.active]
            out[key] = new
        return out

"""SET: sparse evolutionary training, random regrowth at a constant connection count.

Mocanu, Mocanu, Stone, Nguyen, Gibescu and Liotta, "Scalable training of artificial neural
networks with adaptive sparse connectivity inspired by network science" (Nature
Communications 2018), Algorithm 1. Every ``ΔT`` epochs, in each block (layer) of sparse
connections:

1. remove the fraction ``ζ`` of the smallest positive weights and the fraction ``ζ`` of the
   largest negative weights (the ``floor(ζ P)`` positive and ``floor(ζ Q)`` negative weights
   nearest zero, for ``P`` positive and ``Q`` negative weights; a weight at exactly zero
   counts as positive);
2. add as many connections at positions drawn uniformly among those absent after the
   removal (a removed one may come back), with new weights drawn like the layer's initial
   ones (``init="random"``, as the paper; ``"zero"`` as in the RigL paper's comparison).

``ζ = 0.3`` in the paper, at every epoch (``decay="constant"``). ``decay="cosine"`` follows
the RigL paper's protocol for SET instead (Evci et al. 2020: ``ζ/2 (1 + cos(π t/T_end))``,
stopping at ``T_end``). Only the removal criterion and the regrowth differ from
:class:`~supernet.search.creation.rigl.RigL`; the schedule, in epochs as the paper's, is
:class:`~supernet.search.creation.rigl.EpochRigL`'s. Both halves
are edits through ``state.editor``, so the log replays the evolution and the optimizer
follows it.

SET is defined on scalar weights: it runs on neuron-level graphs.

Examples:
    >>> s = SET(zeta=0.3, interval=2, end=8)
    >>> [s.fraction(t) for t in (2, 4, 6)]
    [0.3, 0.3, 0.3]
    >>> [t for t in range(1, 11) if s.due_at(t)]
    [2, 4, 6]
"""

from __future__ import annotations

import math

import numpy as np

from supernet.edits.units import RemoveConnections
from supernet.errors import ConfigError, SearchError
from supernet.search.base import SearchState, require_unit
from supernet.search.creation.rigl import EpochRigL
from supernet.search.discretize.units import grow
from supernet.search.scores import entry_weights
from supernet.units.build import connection_ids, edge_key

__all__ = ["SET"]


class SET(EpochRigL):
    """Remove the weights nearest zero on each side, regrow as many at random (module
    docstring).

    Args:
        zeta: fraction ``ζ`` removed from the positive and from the negative weights.
        interval: epochs ``ΔT`` between updates (the paper: every epoch).
        end: the last epoch that may update (default: every epoch but the last).
        decay: ``"constant"`` (the paper) or ``"cosine"`` (the RigL paper's SET).
        init: ``"random"`` (the paper) or ``"zero"`` for the regrown weights.
        edges: blocks to evolve, ``[(u, v), ...]``; default: every dense block.
        seed: seeds the regrowth positions.

    Attributes:
        history: one record per update: epoch, fraction, and per block the count before,
            the positive and negative weights removed and the connections grown.
    """

    def __init__(self, zeta: float = 0.3, interval: int = 1, end: int | None = None,
                 decay: str = "constant", init: str = "random", edges=None, seed: int = 0):
        if isinstance(zeta, bool) or not isinstance(zeta, (int, float)) or not 0 < zeta < 1:
            raise ConfigError(f"SET: zeta must be in (0, 1), got {zeta!r}")
        if decay not in ("constant", "cosine"):
            raise ConfigError(f"SET: decay is 'constant' or 'cosine', got {decay!r}")
        if init not in ("random", "zero"):
            raise ConfigError(f"SET: init is 'random' or 'zero', got {init!r}")
        super().__init__(alpha=zeta, interval=interval, end=end, edges=edges)
        self.decay, self.init, self.seed = decay, init, int(seed)
        self.rng = np.random.default_rng(self.seed)

    @property
    def zeta(self) -> float:
        return self.alpha

    def fraction(self, t: int) -> float:
        """``ζ`` (constant), or ``ζ/2 (1 + cos(π t / T_end))`` (cosine)."""
        return self.alpha if self.decay == "constant" else super().fraction(t)

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, "SET (which removes scalar weights by sign)",
                     "at the channel level a connection is a kernel: use RigL there; at the "
                     "layer level evolve candidate ops with GrowOps", levels=("neuron",))
        for u, v in self.blocks(state.graph):
            if state.graph.edge(u, v)["kind"] != "dense":
                raise SearchError(f"{state.graph.name}: SET evolves dense blocks; edge {u}->{v} "
                                  f"is {state.graph.edge(u, v)['kind']}")
        if self.end is None:
            self.end = max(1, state.epochs)

    def drop(self, state: SearchState, fraction: float) -> dict[str, tuple[int, int]]:
        """Remove ``floor(ζ P)`` smallest positive and ``floor(ζ Q)`` largest negative weights
        of every block; returns ``(positive, negative)`` removed per block."""
        g, module = state.graph, state.module
        counts = {}
        for u, v in self.blocks(g):
            key = edge_key(u, v)
            w = entry_weights(module.block(u, v)).detach()
            w = (w.sum(-1) if w.dim() == 2 else w).cpu().numpy().astype(np.float64)  # one tap
            pos, neg = np.flatnonzero(w >= 0), np.flatnonzero(w < 0)
            k_pos, k_neg = math.floor(fraction * len(pos)), math.floor(fraction * len(neg))
            rows = np.concatenate([pos[np.argsort(w[pos], kind="stable")[:k_pos]],
                                   neg[np.argsort(-w[neg], kind="stable")[:k_neg]]])
            counts[key] = (k_pos, k_neg)
            if len(rows):
                dst, src, _ = connection_ids(g, u, v, np.sort(rows))
                state.editor.apply(RemoveConnections(u, v, dst.tolist(), src.tolist()))
        return counts

    def regrow(self, state: SearchState, counts: dict[str, int]) -> dict[str, int]:
        """Add ``counts[block]`` connections at uniformly random absent positions."""
        g = state.graph
        keys = {edge_key(u, v): (u, v) for u, v in self.blocks(g)}
        scores = {k: self.rng.random(g.edge(*keys[k])["mask"].shape)
                  for k, n in counts.items() if n > 0}
        grown = {}
        for edit in grow(g, scores, counts, init=self.init):
            state.editor.apply(edit)
            grown[edge_key(edit.u, edit.v)] = len(edit.dst)
        return grown

    def update(self, state: SearchState) -> dict:
        """One SET step at the end of epoch ``state.epoch``."""
        g = state.graph
        before = {edge_key(u, v): int(g.edge(u, v)["mask"].nnz) for u, v in self.blocks(g)}
        f = self.fraction(state.epoch)
        removed = self.drop(state, f)
        grown = self.regrow(state, {k: p + n for k, (p, n) in removed.items()})
        record = {"epoch": state.epoch, "fraction": f,
                  "blocks": {k: {"count": n, "positive": removed[k][0],
                                 "negative": removed[k][1], "grown": grown.get(k, 0)}
                             for k, n in before.items()}}
        self.history.append(record)
        return record

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]

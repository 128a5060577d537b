"""RigL: sparse connectivity that moves during training, at a constant connection count.

Evci, Gale, Menick, Castro and Elsen, "Rigging the Lottery: Making All Tickets Winners"
(ICML 2020), Algorithm 1. Every ``ΔT`` (here: epochs) until ``T_end``, in each block
(layer) of ``N`` active connections:

1. drop the ``k = floor(f(t) N)`` active connections of smallest magnitude, where
   ``f(t) = α/2 (1 + cos(π t / T_end))`` (cosine decay of the drop fraction, ``α = 0.3``);
2. grow ``k`` connections among those not active after the drop (a connection just dropped
   may come back) with the largest gradient magnitude ``|∂L/∂W|``, taken on a training
   batch with the dense weights, before the drop; new connections start at zero.

The count of every block stays exactly ``N``; a grown connection does not change the
outputs until training moves it (zero weight). At the channel level a connection is a whole
kernel (magnitude: its L1 norm; gradient: summed over its taps). Both halves are edits
through ``state.editor`` (:class:`~supernet.edits.RemoveConnections`, then
:class:`~supernet.edits.AddConnections` with ``init="zero"``), so the edit log replays the
updates and the weight optimizer follows (dropped weights leave with their momentum, grown
ones join at zero state).

Examples:
    >>> r = RigL(alpha=0.3, interval=2, end=8)
    >>> [round(r.fraction(t), 4) for t in (2, 4, 6, 8)]
    [0.2561, 0.15, 0.0439, 0.0]
    >>> [t for t in range(1, 11) if r.due_at(t)]
    [2, 4, 6]
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from supernet.edits.units import RemoveConnections
from supernet.errors import ConfigError
from supernet.search.base import CreationPolicy, SearchState, require_unit
from supernet.search.discretize.units import connection_ids, grow
from supernet.search.probe import probing, score_batch
from supernet.search.scores import gradient, magnitude
from supernet.units.build import edge_key

__all__ = ["RigL"]


class RigL(CreationPolicy):
    """Drop the weakest connections and regrow as many by gradient (module docstring).

    Args:
        alpha: initial drop fraction ``α`` (0.3 in the paper).
        interval: epochs ``ΔT`` between updates (the paper updates every 100 steps; set
            ``steps_per_epoch`` to make an epoch that many steps).
        end: ``T_end``, the last epoch that may update (default: three quarters of the
            search, as the paper stops at 75% of training).
        edges: blocks to update, ``[(u, v), ...]``; default: every dense and conv block.
        loss_fn: the loss of the gradient (cross-entropy by default).

    Attributes:
        history: one record per update: epoch, fraction, and per block the count before,
            dropped and grown.
    """

    def __init__(self, alpha: float = 0.3, interval: int = 1, end: int | None = None,
                 edges=None, loss_fn: Callable | None = None):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ConfigError(f"RigL: alpha must be in (0, 1], got {alpha!r}")
        for name, v in (("interval", interval), ("end", end)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"RigL: {name} must be a positive int, got {v!r}")
        self.alpha, self.interval, self.end = float(alpha), interval, end
        self.edges = None if edges is None else [tuple(e) for e in edges]
        self.loss_fn = loss_fn
        self.history: list[dict] = []

    # ---------------------------------------------------------------- schedule
    def fraction(self, t: int) -> float:
        """``f(t) = α/2 (1 + cos(π t / T_end))``."""
        end = self.end or 1
        return self.alpha / 2 * (1 + math.cos(math.pi * min(t, end) / end))

    def due_at(self, epoch: int) -> bool:
        """Whether the end of ``epoch`` (completed epochs) updates the connectivity."""
        return self.end is not None and 0 < epoch < self.end and epoch % self.interval == 0

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, "RigL", "grow layer-level candidate ops with GrowOps")
        if self.end is None:
            self.end = max(1, state.epochs * 3 // 4)

    def on_epoch_end(self, state: SearchState) -> None:
        if self.end is None:
            self.on_search_start(state)
        if self.due_at(state.epoch):
            self.update(state)

    # ---------------------------------------------------------------- one update
    def blocks(self, graph) -> list[tuple[str, str]]:
        """The blocks RigL updates."""
        if self.edges is not None:
            return list(self.edges)
        return [(u, v) for u, v, e in graph.nx.edges(data=True) if e["kind"] != "identity"]

    def gradients(self, state: SearchState) -> dict[str, np.ndarray]:
        """``|∂L/∂W|`` at every potential connection of every block, on one training batch
        (a different one at each update); buffers and outputs are left as they were."""
        batch = score_batch(state, len(self.history))
        with probing(state.module):
            grads = gradient(state.module, batch, self.loss_fn)
        return {edge_key(u, v): grads[edge_key(u, v)] for u, v in self.blocks(state.graph)}

    def drop(self, state: SearchState, fraction: float) -> dict[str, int]:
        """Remove ``floor(fraction N)`` smallest-magnitude connections of every block;
        returns how many per block."""
        g = state.graph
        mags = magnitude(state.module)
        counts = {}
        for u, v in self.blocks(g):
            key = edge_key(u, v)
            s = mags[key]
            k = int(math.floor(fraction * len(s)))
            counts[key] = k
            if k <= 0:
                continue
            rows = np.sort(np.argsort(s, kind="stable")[:k])
            dst, src, tp = connection_ids(g, u, v, rows)
            state.editor.apply(RemoveConnections(u, v, dst.tolist(), src.tolist(),
                                                 None if tp is None else tp.tolist()))
        return counts

    def regrow(self, state: SearchState, grads: dict, counts: dict[str, int]) -> dict[str, int]:
        """Add ``counts[block]`` zero-weight connections of largest gradient among those
        not active; returns how many per block."""
        scores = {k: grads[k] for k, n in counts.items() if n > 0}
        grown = {}
        for edit in grow(state.graph, scores, counts, init="zero"):
            state.editor.apply(edit)
            grown[edge_key(edit.u, edit.v)] = len(edit.dst)
        return grown

    def update(self, state: SearchState) -> dict:
        """One RigL step at the end of epoch ``state.epoch``."""
        g = state.graph
        before = {edge_key(u, v): int(g.edge(u, v)["mask"].nnz) for u, v in self.blocks(g)}
        grads = self.gradients(state)
        f = self.fraction(state.epoch)
        dropped = self.drop(state, f)
        grown = self.regrow(state, grads, dropped)
        record = {"epoch": state.epoch, "fraction": f,
                  "blocks": {k: {"count": n, "dropped": dropped.get(k, 0),
                                 "grown": grown.get(k, 0)} for k, n in before.items()}}
        self.history.append(record)
        return record

    def state_dict(self) -> dict:
        return {"end": self.end, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.end = state.get("end", self.end)
        self.history = list(state.get("history", []))

"""RigL: sparse connectivity that moves during training, at a constant connection count.

Evci, Gale, Menick, Castro and Elsen, "Rigging the Lottery: Making All Tickets Winners"
(ICML 2020), Algorithm 1. Every ``ΔT`` training steps (``t mod ΔT = 0``, ``ΔT = 100`` in
the paper) while ``t < T_end`` (75% of training in the paper), in each block (layer) of
``N`` active connections:

1. drop the ``k = floor(f(t) N)`` active connections of smallest magnitude, where
   ``f(t) = α/2 (1 + cos(π t / T_end))`` (cosine decay of the drop fraction over the steps,
   ``α = 0.3``);
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

``t`` is the search's weight-step count (``state.step``): :class:`RigL` updates from
:meth:`~supernet.search.base.Policy.on_step_end`, in the middle of an epoch when ``ΔT``
falls there. :class:`EpochRigL` is a variant that counts ``ΔT`` and ``T_end`` in epochs and
updates at epoch ends; it equals the paper's schedule only when an epoch is ``ΔT`` steps.

Examples:
    >>> r = RigL(alpha=0.3, interval=100, end=400)
    >>> [round(r.fraction(t), 4) for t in (100, 200, 300, 400)]
    [0.2561, 0.15, 0.0439, 0.0]
    >>> [t for t in range(1, 1001) if r.due_at(t)]
    [100, 200, 300]
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

__all__ = ["RigL", "EpochRigL"]


class RigL(CreationPolicy):
    """Drop the weakest connections and regrow as many by gradient (module docstring),
    every ``interval`` training steps.

    Args:
        alpha: initial drop fraction ``α`` (0.3 in the paper).
        interval: training steps ``ΔT`` between updates (100 in the paper).
        end: ``T_end`` in steps: updates happen at steps ``t < T_end`` and the drop fraction
            decays to zero at ``T_end`` (default: three quarters of the search's planned
            steps, ``state.total_steps``, as the paper stops at 75% of training).
        edges: blocks to update, ``[(u, v), ...]``; default: every dense and conv block.
        loss_fn: the loss of the gradient (cross-entropy by default).

    Attributes:
        history: one record per update: step (and epoch), fraction, and per block the count
            before, dropped and grown.
    """

    #: what ``t`` counts: ``"step"`` (``state.step``) or ``"epoch"`` (``state.epoch``)
    clock = "step"

    def __init__(self, alpha: float = 0.3, interval: int = 100, end: int | None = None,
                 edges=None, loss_fn: Callable | None = None):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ConfigError(f"{type(self).__name__}: alpha must be in (0, 1], got {alpha!r}")
        for name, v in (("interval", interval), ("end", end)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive int, "
                                  f"got {v!r}")
        self.alpha, self.interval, self.end = float(alpha), interval, end
        self.edges = None if edges is None else [tuple(e) for e in edges]
        self.loss_fn = loss_fn
        self.history: list[dict] = []

    # ---------------------------------------------------------------- schedule
    def fraction(self, t: int) -> float:
        """``f(t) = α/2 (1 + cos(π t / T_end))``."""
        end = self.end or 1
        return self.alpha / 2 * (1 + math.cos(math.pi * min(t, end) / end))

    def due_at(self, t: int) -> bool:
        """Whether ``t`` (steps, or epochs for :class:`EpochRigL`, done) updates the
        connectivity: ``0 < t < T_end`` and ``t mod ΔT = 0``."""
        return self.end is not None and 0 < t < self.end and t % self.interval == 0

    def now(self, state: SearchState) -> int:
        """``t``: the steps (or epochs) the search has done."""
        return state.step if self.clock == "step" else state.epoch

    def default_end(self, state: SearchState) -> int:
        """``T_end`` when none is given: three quarters of the planned steps."""
        if state.total_steps is None:
            raise ConfigError(f"{type(self).__name__}: this loop plans no number of steps "
                              "(state.total_steps); give end=T_end in steps")
        return max(1, state.total_steps * 3 // 4)

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, type(self).__name__,
                     "grow layer-level candidate ops with GrowOps")
        if self.end is None:
            self.end = self.default_end(state)

    def on_step_end(self, state: SearchState) -> None:
        self._tick(state, "step")

    def on_epoch_end(self, state: SearchState) -> None:
        self._tick(state, "epoch")

    def _tick(self, state: SearchState, clock: str) -> None:
        if clock != self.clock:
            return
        if self.end is None:
            self.on_search_start(state)
        if self.due_at(self.now(state)):
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
        """One RigL update at ``t`` = the search's steps (or epochs) done."""
        g = state.graph
        before = {edge_key(u, v): int(g.edge(u, v)["mask"].nnz) for u, v in self.blocks(g)}
        grads = self.gradients(state)
        f = self.fraction(self.now(state))
        dropped = self.drop(state, f)
        grown = self.regrow(state, grads, dropped)
        record = {"step": state.step, "epoch": state.epoch, "fraction": f,
                  "blocks": {k: {"count": n, "dropped": dropped.get(k, 0),
                                 "grown": grown.get(k, 0)} for k, n in before.items()}}
        self.history.append(record)
        return record

    def state_dict(self) -> dict:
        return {"end": self.end, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.end = state.get("end", self.end)
        self.history = list(state.get("history", []))


class EpochRigL(RigL):
    """RigL's drop-and-regrow with ``ΔT`` and ``T_end`` counted in epochs (updates at epoch
    ends, drop fraction ``α/2 (1 + cos(π e / T_end))`` of the epochs ``e`` done): a variant,
    the paper's schedule only when an epoch is ``ΔT`` steps.

    Args:
        interval: epochs between updates.
        end: the epoch ``T_end`` (default: three quarters of the search's epochs).

    Examples:
        >>> r = EpochRigL(alpha=0.3, interval=2, end=8)
        >>> [round(r.fraction(t), 4) for t in (2, 4, 6)], [t for t in range(1, 11) if r.due_at(t)]
        ([0.2561, 0.15, 0.0439], [2, 4, 6])
    """

    clock = "epoch"

    def __init__(self, alpha: float = 0.3, interval: int = 1, end: int | None = None,
                 edges=None, loss_fn: Callable | None = None):
        super().__init__(alpha, interval, end, edges, loss_fn)

    def default_end(self, state: SearchState) -> int:
        return max(1, state.epochs * 3 // 4)

"""Gradual magnitude pruning (Zhu & Gupta) of the blocks of a channel- or neuron-level graph.

Zhu and Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
compression" (ICLR Workshop 2018). From a starting epoch ``t0``, every ``Δt`` epochs, the
connections of smallest magnitude are removed until the sparsity reaches

    ``s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n Δt))^3``,  ``t = t0, t0 + Δt, ..., t0 + nΔt``,

fast at first, when there are many redundant connections, slower as fewer are left; then
the network trains on with its final mask. As in the paper each block (layer) is pruned to
``s_t`` of its own starting count (``scope="layer"``); ``scope="global"`` ranks all blocks
together. A connection is a scalar weight at the neuron level and a whole kernel at the
channel level (its magnitude the kernel's L1 norm, :func:`supernet.search.scores.magnitude`).
Pruned connections leave through :class:`~supernet.edits.RemoveConnections` edits, so at the
end each block holds exactly ``N - round(s_f N)`` connections and the edit log replays the
schedule.

:func:`cubic_sparsity` is the schedule, shared with
:class:`~supernet.search.progressive.unit_gates.ProgressiveGates`.

Examples:
    >>> [round(cubic_sparsity(k, 4, 0.0, 0.8), 4) for k in range(5)]
    [0.0, 0.4625, 0.7, 0.7875, 0.8]
"""

from __future__ import annotations

import numpy as np

from supernet.edits.units import RemoveConnections
from supernet.errors import ConfigError, SearchError
from supernet.search.base import DiscretizationPolicy, SearchState, require_unit
from supernet.search.discretize.layer import discretize
from supernet.search.scores import magnitude
from supernet.units.build import connection_ids, edge_key

__all__ = ["cubic_sparsity", "GradualMagnitude", "plan_epochs"]


def cubic_sparsity(k: int, n: int, initial: float = 0.0, final: float = 1.0) -> float:
    """Zhu & Gupta's sparsity after step ``k`` of ``n``:
    ``final + (initial - final) (1 - k/n)^3`` (``initial`` at 0, ``final`` at ``n``)."""
    frac = min(max(k / n, 0.0), 1.0) if n > 0 else 1.0
    return final + (initial - final) * (1.0 - frac) ** 3


def plan_epochs(epochs: int, start: int, interval: int, steps: int | None) -> int:
    """Steps of a schedule from ``start`` every ``interval`` epochs: ``steps``, or as many as
    fit in the first three quarters of the epochs after ``start`` (the rest trains on, as
    RigL stops changing the mask at 75% of training)."""
    if steps is not None:
        return steps
    return max(1, (max(epochs - start, 1) * 3 // 4) // interval)


def _positive(name, value, low=1, optional=False):
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")


class GradualMagnitude(DiscretizationPolicy):
    """Prune the ungated blocks to ``sparsity`` on Zhu & Gupta's cubic schedule.

    Args:
        sparsity: final sparsity ``s_f`` (fraction of each block's starting connections
            removed).
        initial: sparsity ``s_i`` at ``start``.
        start: epoch ``t0`` (completed epochs) of the first step; 0 prunes to ``initial``
            before training.
        interval: epochs ``Δt`` between steps.
        steps: ``n``; ``None``: as many as fit in the first three quarters of the search.
        scope: ``"layer"`` (each block to ``s_t``, as the paper) or ``"global"``.
        edges: ``[(u, v), ...]`` to prune; ``None``: every dense or conv block without gates.

    Attributes:
        counts: starting connections per block (``"u->v"``), set at the search start.
        history: one record per step: epoch, sparsity, connections left.
    """

    def __init__(self, sparsity: float, initial: float = 0.0, start: int = 0,
                 interval: int = 1, steps: int | None = None, scope: str = "layer",
                 edges=None):
        for name, v in (("sparsity", sparsity), ("initial", initial)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise ConfigError(f"{type(self).__name__}: {name} must be in [0, 1), got {v!r}")
        if initial > sparsity:
            raise ConfigError(f"{type(self).__name__}: initial={initial} exceeds "
                              f"sparsity={sparsity}")
        _positive(f"{type(self).__name__}: start", start, 0)
        _positive(f"{type(self).__name__}: interval", interval)
        _positive(f"{type(self).__name__}: steps", steps, optional=True)
        if scope not in ("layer", "global"):
            raise ConfigError(f"{type(self).__name__}: scope is 'layer' or 'global', got "
                              f"{scope!r}")
        self.sparsity, self.initial = float(sparsity), float(initial)
        self.start, self.interval, self.steps, self.scope = start, interval, steps, scope
        self.edges = None if edges is None else [tuple(e) for e in edges]
        self.counts: dict[str, int] | None = None
        self.n: int | None = None
        self.history: list[dict] = []

    # ---------------------------------------------------------------- schedule
    def _setup(self, state: SearchState) -> None:
        require_unit(state.graph, type(self).__name__,
                     "prune layer-level candidate ops with SGAS, P-DARTS or DARTS-PT")
        if self.counts is None:
            g = state.graph
            chosen = self.edges
            if chosen is None:
                chosen = [(u, v) for u, v, e in g.nx.edges(data=True)
                          if e["kind"] != "identity" and not e.get("gated")]
            for u, v in chosen:
                e = g.edge(u, v)
                if e["kind"] == "identity" or e.get("gated"):
                    raise SearchError(f"{g.name}: {type(self).__name__} prunes dense and conv "
                                      f"blocks without gates; edge {u}->{v} is {e['kind']}"
                                      f"{' and gated' if e.get('gated') else ''}")
            self.counts = {edge_key(u, v): int(g.edge(u, v)["mask"].nnz) for u, v in chosen}
        if self.n is None:
            self.n = plan_epochs(state.epochs, self.start, self.interval, self.steps)

    def step_of(self, epoch: int) -> int | None:
        """The step ``k`` made at the end of ``epoch`` (completed epochs), or ``None``."""
        k, r = divmod(epoch - self.start, self.interval)
        return k if r == 0 and 0 <= k <= (self.n or 0) else None

    def target(self, sparsity: float) -> dict[str, int]:
        """Connections each block keeps at ``sparsity`` (``"global"``: under ``"*"``)."""
        if self.scope == "layer":
            return {k: n - round(sparsity * n) for k, n in self.counts.items()}
        total = sum(self.counts.values())
        return {"*": total - round(sparsity * total)}

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)
        if self.step_of(0) == 0:
            self.prune_to(state, self.initial)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        k = self.step_of(state.epoch)
        if k is not None:
            self.prune_to(state, cubic_sparsity(k, self.n, self.initial, self.sparsity))

    def finalize(self, state: SearchState) -> None:
        """Reach the final sparsity (if the search ended early), then discretize any gate
        left (argmax), so that the graph is a final network."""

        self._setup(state)
        self.prune_to(state, self.sparsity)
        discretize(state.graph, state.module, state.editor)

    def prune_to(self, state: SearchState, sparsity: float) -> int:
        """Remove the smallest-magnitude connections down to ``sparsity``; returns how many
        were removed."""
        g, module = state.graph, state.module
        keys = {edge_key(u, v): (u, v) for u, v in g.nx.edges}
        missing = [k for k in self.counts if k not in keys]
        if missing:
            raise SearchError(f"{g.name}: {type(self).__name__}: blocks {missing} are gone")
        mags = magnitude(module)
        drop: dict[str, np.ndarray] = {}
        want = self.target(sparsity)
        if self.scope == "layer":
            for k in self.counts:
                s = mags[k]
                extra = len(s) - want[k]
                if extra > 0:
                    drop[k] = np.sort(np.argsort(s, kind="stable")[:extra])
        else:
            names = list(self.counts)
            flat = np.concatenate([mags[k] for k in names]) if names else np.zeros(0)
            extra = len(flat) - want["*"]
            if extra > 0:
                sizes = [len(mags[k]) for k in names]
                starts = np.concatenate([[0], np.cumsum(sizes)])
                chosen = np.argsort(flat, kind="stable")[:extra]
                for i, k in enumerate(names):
                    sel = chosen[(chosen >= starts[i]) & (chosen < starts[i + 1])] - starts[i]
                    if len(sel):
                        drop[k] = np.sort(sel)
        removed = 0
        for k, rows in drop.items():
            u, v = keys[k]
            dst, src, tp = connection_ids(g, u, v, rows)
            state.editor.apply(RemoveConnections(u, v, dst.tolist(), src.tolist(),
                                                 None if tp is None else tp.tolist()))
            removed += len(rows)
        left = {k: int(g.edge(*keys[k])["mask"].nnz) for k in self.counts}
        self.history.append({"epoch": state.epoch, "sparsity": sparsity, "removed": removed,
                             "left": left})
        return removed

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"counts": self.counts, "n": self.n, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state.get("counts")
        self.n = state.get("n")
        self.history = list(state.get("history", []))

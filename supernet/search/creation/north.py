"""Neurogenesis driven by the orthogonality of activations (NORTH*).

Maile, Rachelson, Luga and Wilson, "When, where, and how to add new neurons to ANNs"
(AutoML Conference 2022, PMLR 188), Sections 3-4. A layer's post-activations over a batch,
``H`` (``B × n``), span a space of *effective dimension*

    ``efdim(H) = #{ σ_k(H / √B) > ε }``   (``ε = 0.01``),

the number of directions its ``n`` neurons really use. *When and where* (the NORTH*
trigger): grow layer ``l`` when ``efdim(H_l) > τ_l = ⌊γ n_l⌋``, by ``⌊efdim(H_l) − τ_l⌋``
neurons (up to a maximal width): a layer whose neurons are nearly orthogonal in activation
space is using all of them and asks for more; a layer of redundant neurons does not grow.
*How* (NORTH-Select, the paper's ``orthogact`` initialization): draw candidate neurons with
random incoming and zero outgoing weights, and keep those whose activations add most to
the layer's: the candidate's score is ``efdim`` of ``[H_l, h_c]`` plus the sum of its
singular values (the authors' tie-break of equal counts).

Differences from the paper, all by choice of a schedule: the trigger is checked at epoch
ends (``interval`` epochs apart; set ``steps_per_epoch`` for finer checks) instead of after
every batch, on one training batch; candidates start from the layer's default
initialization (uniform in ``±1/√fan_in``) rather than Glorot's; ``γ`` is fixed (the paper
also scales it by the initial ratio, ``--svdinit``).

Each growth is two recorded edits through ``state.editor``: an
:class:`~supernet.edits.AddUnits` of every candidate (``init="zero"``, so the outputs do not
change) and a :class:`~supernet.edits.RemoveUnits` of those not kept, so the log replays it.

Examples:
    >>> import torch
    >>> h = torch.randn(64, 5)
    >>> effective_dimension(h), effective_dimension(h[:, :1].repeat(1, 5))
    (5, 1)
    >>> NORTH(gamma=0.9).threshold(10), NORTH(gamma=0.9).growth(10, 10)
    (9, 1)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from supernet.edits.units import AddUnits, RemoveUnits
from supernet.errors import ConfigError
from supernet.search.base import CreationPolicy, SearchState, require_unit
from supernet.search.creation.deeper import check_epochs
from supernet.search.probe import probing, score_batch

__all__ = ["NORTH", "effective_dimension", "hidden_groups"]


def effective_dimension(acts: torch.Tensor, eps: float = 0.01, partial: bool = False):
    """NORTH's effective dimension of activations ``acts`` (``(batch, units)``): the number
    of singular values of ``acts / √batch`` above ``eps``; with ``partial``, plus the sum of
    the singular values (a continuous score that orders equal counts)."""
    a = acts.detach().reshape(acts.shape[0], -1).double()
    if a.numel() == 0 or not torch.any(a != 0):
        return 0.0 if partial else 0
    s = torch.linalg.svdvals(a / math.sqrt(a.shape[0]))
    count = int((s > eps).sum())
    return count + float(s.sum()) if partial else count


def hidden_groups(graph) -> list[str]:
    """Computed groups that are not outputs and whose edges are all dense: the hidden layers
    a neuron-level growth may widen."""
    out = []
    for n, d in graph.nx.nodes(data=True):
        if d["kind"] != "units" or n in graph.outputs:
            continue
        edges = list(graph.nx.in_edges(n, data=True)) + list(graph.nx.out_edges(n, data=True))
        if edges and all(e["kind"] == "dense" for *_, e in edges):
            out.append(n)
    return out


class NORTH(CreationPolicy):
    """The NORTH* trigger with NORTH-Select initialization (module docstring).

    Args:
        gamma: ``γ`` of the threshold ``⌊γ n⌋`` (the authors' default is 0.9 or 0.99).
        eps: ``ε``, the singular values counted.
        candidates: candidates drawn per growth beyond the neurons added (the paper's
            ``tries``); all are scored, the best ``count`` kept.
        max_width: cap on a group's width, an int for all or ``{node: int}``.
        nodes: groups that may grow (default :func:`hidden_groups`).
        interval: epochs between checks.
        end: last epoch that may grow (default: every epoch but the last).

    Attributes:
        history: per check, per node: width, effective dimension, threshold, added.
    """

    def __init__(self, gamma: float = 0.9, eps: float = 0.01, candidates: int = 10,
                 max_width: int | dict | None = None, nodes: Sequence[str] | None = None,
                 interval: int = 1, end: int | None = None):
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma < 1:
            raise ConfigError(f"NORTH: gamma must be in (0, 1), got {gamma!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ConfigError(f"NORTH: eps must be a number > 0, got {eps!r}")
        for key, v in (("candidates", candidates), ("interval", interval)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"NORTH: {key} must be a positive int, got {v!r}")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or end < 1):
            raise ConfigError(f"NORTH: end must be a positive int (an epoch), got {end!r}")
        self.gamma, self.eps, self.candidates = float(gamma), float(eps), candidates
        self.max_width, self.interval, self.end = max_width, interval, end
        self.nodes = None if nodes is None else [str(n) for n in nodes]
        self.history: list[dict] = []

    # ---------------------------------------------------------------- trigger
    def threshold(self, width: int) -> int:
        """``τ = ⌊γ n⌋``."""
        return math.floor(self.gamma * width + 1e-9)

    def growth(self, width: int, efdim: int, cap: int | None = None) -> int:
        """Neurons to add to a group of ``width`` units whose activations have effective
        dimension ``efdim``: ``⌊efdim − τ⌋`` when ``efdim > τ``, else 0 (at most up to
        ``cap`` units)."""
        add = max(0, int(efdim) - self.threshold(width))
        return add if cap is None else max(0, min(add, cap - width))

    def cap(self, node: str) -> int | None:
        if isinstance(self.max_width, dict):
            return self.max_width.get(node)
        return self.max_width

    def targets(self, graph) -> list[str]:
        allowed = hidden_groups(graph)
        if self.nodes is None:
            return allowed
        for n in self.nodes:
            if n not in allowed:
                raise ConfigError(f"{graph.name}: NORTH: nodes entry {n!r} is not a hidden "
                                  f"group with dense edges; allowed: {allowed}")
        return list(self.nodes)

    def on_search_start(self, state: SearchState) -> None:
        require_unit(state.graph, "NORTH", "grow layer-level cells with GrowNode")
        nodes = self.targets(state.graph)
        if self.end is not None and state.epochs:
            check_epochs("NORTH", "end", [self.end], state.epochs)
        for n in nodes:
            cap, width = self.cap(n), len(state.graph.node(n)["units"])
            if cap is not None and cap < width:
                raise ConfigError(f"{state.graph.name}: NORTH: max_width {cap} of node {n!r} "
                                  f"is below its current width {width}; give a max_width >= "
                                  f"{width} (or None: no cap)")

    def due_at(self, epoch: int, epochs: int) -> bool:
        end = self.end if self.end is not None else max(epochs - 1, 1)
        return 0 < epoch <= end and epoch % self.interval == 0

    def activations(self, state: SearchState, index: int) -> dict[str, torch.Tensor]:
        """Every node's post-activation values on training batch ``index``."""
        x, _ = score_batch(state, index)
        inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        with probing(state.module), torch.no_grad():
            return state.module.run(inputs)

    def on_epoch_end(self, state: SearchState) -> None:
        require_unit(state.graph, "NORTH", "grow layer-level cells with GrowNode")
        if self.due_at(state.epoch, state.epochs):
            self.update(state)

    # ---------------------------------------------------------------- one check
    def update(self, state: SearchState) -> dict:
        """Check every target group on one batch and grow those the trigger fires for."""
        g = state.graph
        index = len(self.history)
        acts = self.activations(state, index)
        record = {"epoch": state.epoch, "nodes": {}}
        for n in self.targets(g):
            width = len(g.node(n)["units"])
            dim = effective_dimension(acts[n], self.eps)
            add = self.growth(width, dim, self.cap(n))
            record["nodes"][n] = {"width": width, "efdim": dim,
                                  "threshold": self.threshold(width), "added": []}
            if add:
                record["nodes"][n]["added"] = self.select(state, n, add, index)
        self.history.append(record)
        return record

    def select(self, state: SearchState, node: str, count: int, index: int) -> list[int]:
        """NORTH-Select: add ``count + candidates`` candidates (random in, zero out), keep
        the ``count`` whose activations raise the effective dimension most."""
        g = state.graph
        old = g.node(node)["units"]
        res = state.editor.apply(AddUnits(node, count=count + self.candidates, init="zero"))
        new = res.report["created"][node]
        h = self.activations(state, index)[node]
        current, cand = h[:, :len(old)], h[:, len(old):]
        scores = np.array([effective_dimension(torch.cat([current, cand[:, k:k + 1]], 1),
                                               self.eps, partial=True)
                           for k in range(cand.shape[1])])
        order = np.argsort(-scores, kind="stable")
        keep, drop = np.sort(order[:count]), np.sort(order[count:])
        if len(drop):
            state.editor.apply(RemoveUnits({node: new[drop].tolist()}, tied=False))
        return new[keep].tolist()

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state.get("history", []))

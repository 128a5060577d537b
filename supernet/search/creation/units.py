"""Unit growth during a search: split the most useful units (Net2WiderNet).

Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer"
(ICLR 2016), Net2WiderNet: a new unit copies the incoming weights of a unit, and the outgoing
weights of the original and its copy are divided between them, so the network computes the
same function. :class:`GrowUnits` grows a node at scheduled epoch ends by splitting its
units of largest score: the Taylor criterion (Molchanov et al., 2017, the estimated loss
change if the unit were removed), the gradient of its incoming weights, or their magnitude
(:mod:`supernet.search.scores`). Where the splitting happens is where the network already
relies most, as growth methods that split by a saliency do (e.g. Liu et al., "Splitting
Steepest Descent for Growing Neural Architectures", NeurIPS 2019, split the neurons whose
splitting most decreases the loss).

Every growth is an :class:`~supernet.edits.AddUnits` edit with ``init="split"`` through
``state.editor``: the weight optimizer gets the new weights (the copies' momentum starts at
zero), a gated node's gate logits grow with the copies (a copy starts with its source's
logits, so the gated outputs are preserved too) and the architecture optimizer keeps the
Adam moments of the old rows. Units tied to others (residual streams) grow with their whole
dependency group.

An exact copy and its source get equal gradients under deterministic training and stay
equal; ``noise`` perturbs the copies' incoming weights to break the symmetry (the outputs
then move by about as much), and sampling relaxations or dropout break it too.

Examples:
    >>> policy = GrowUnits(count=2, at=[3, 6], score="magnitude")
    >>> sorted(policy.at), policy.score
    ([3, 6], 'magnitude')
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from supernet.edits.units import AddUnits
from supernet.errors import ConfigError, SearchError
from supernet.search.base import SearchState, require_unit
from supernet.search.creation.layer import _epochs, _Scheduled
from supernet.search.probe import probing, score_batch
from supernet.search.scores import gradient, magnitude, taylor
from supernet.units.deps import Ties

__all__ = ["GrowUnits", "unit_scores"]

SCORES = ("taylor", "gradient", "magnitude")


def unit_scores(state: SearchState, score: str | Callable, index: int = 0,
                loss_fn: Callable | None = None) -> dict[str, np.ndarray]:
    """Per computed node, one score per unit: ``"taylor"``, ``"gradient"`` (the L1 norm of
    ``∂L/∂W`` over the unit's incoming connections), ``"magnitude"`` (L1 norm of its
    incoming weights) or ``score(state) -> {node: scores}``; on training batch ``index``."""
    module = state.module
    if callable(score):
        return {n: np.asarray(s, dtype=np.float64) for n, s in score(state).items()}
    if score == "magnitude":
        return magnitude(module, what="units")
    batch = score_batch(state, index)
    with probing(module):
        if score == "taylor":
            return taylor(module, batch, loss_fn)
        grads = gradient(module, batch, loss_fn)
    out: dict[str, np.ndarray] = {}
    g = state.graph
    for u, v, e in g.nx.edges(data=True):
        if e["kind"] == "identity":
            continue
        key = f"{u}->{v}"
        existing = np.asarray(e["mask"].toarray(), dtype=bool)
        per_row = (grads[key] * existing).sum(1)
        acc = out.setdefault(v, np.zeros(len(per_row)))
        acc += per_row
    return out


class GrowUnits(_Scheduled):
    """Split the best-scored units of nodes at scheduled epoch ends (module docstring).

    Args:
        count: units added per node at each growth (one copy per chosen unit).
        fraction: instead of ``count``, this fraction of the node's width (at least one).
        at: epoch(s) (completed epochs) at whose end to grow.
        when: ``when(state) -> bool``, grow at the epoch ends where it holds.
        nodes: nodes to grow; default: every computed node that is not an output and whose
            units are tied to no other (a residual stream grows only when named).
        score: ``"taylor"``, ``"gradient"``, ``"magnitude"`` or a callable (see
            :func:`unit_scores`).
        noise: standard deviation of noise on the copies' incoming weights (0: exact).
        loss_fn: the loss of the scores (cross-entropy by default).

    Attributes:
        grown: one record per growth: epoch, node, the source unit ids and the new ids.
    """

    def __init__(self, count: int | None = 1, fraction: float | None = None,
                 at: int | Iterable[int] | None = None,
                 when: Callable[[SearchState], bool] | None = None,
                 nodes: Sequence[str] | None = None, score: str | Callable = "taylor",
                 noise: float = 0.0, loss_fn: Callable | None = None):
        if at is None and when is None:
            raise ConfigError("GrowUnits: give at= (epochs) or when= (a condition) to grow at")
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                    or not 0 < fraction <= 1:
                raise ConfigError(f"GrowUnits: fraction must be in (0, 1], got {fraction!r}")
        elif not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(f"GrowUnits: count must be a positive int, got {count!r}")
        if not callable(score) and score not in SCORES:
            raise ConfigError(f"GrowUnits: score must be one of {list(SCORES)} or a callable, "
                              f"got {score!r}")
        self.count, self.fraction = count, fraction
        self.at, self.when = _epochs(at), when
        self.nodes = None if nodes is None else list(nodes)
        self.score, self.noise, self.loss_fn = score, float(noise), loss_fn
        self.grown: list[dict] = []

    def targets(self, graph) -> list[str]:
        """The nodes that grow."""
        if self.nodes is not None:
            for n in self.nodes:
                if graph.node(n)["kind"] != "units":
                    raise SearchError(f"{graph.name}: GrowUnits: node {n!r} is an input; "
                                      "grow computed nodes only")
                if n in graph.outputs:
                    raise SearchError(f"{graph.name}: GrowUnits: node {n!r} is an output; "
                                      "growing it would change the output's width")
            return list(self.nodes)
        ties = Ties(graph)
        out = []
        for n, d in graph.nx.nodes(data=True):
            if d["kind"] != "units" or n in graph.outputs:
                continue
            labels = ties.labels[ties.offsets[n] + np.arange(len(d["units"]))]
            if ties.tied and np.isin(labels, np.delete(ties.labels, ties.offsets[n]
                                                       + np.arange(len(d["units"])))).any():
                continue
            out.append(n)
        return out

    def on_epoch_end(self, state: SearchState) -> None:
        require_unit(state.graph, "GrowUnits", "grow layer-level candidate ops with GrowOps")
        if not self.due(state):
            return
        nodes = self.targets(state.graph)
        scores = unit_scores(state, self.score, len(self.grown), self.loss_fn)
        for n in nodes:
            ids = state.graph.node(n)["units"]
            if n not in scores:
                raise SearchError(f"{state.graph.name}: GrowUnits: no score for node {n!r}")
            s = np.asarray(scores[n], dtype=np.float64)
            if len(s) != len(ids):
                raise SearchError(f"{state.graph.name}: GrowUnits: node {n!r} has {len(ids)} "
                                  f"units but {len(s)} scores (one per unit)")
            k = self.count if self.fraction is None else max(1, int(round(self.fraction
                                                                          * len(ids))))
            best = np.sort(np.argsort(-s, kind="stable")[:min(k, len(ids))])
            source = ids[best].tolist()
            result = state.editor.apply(AddUnits(n, init="split", source=source,
                                                 noise=self.noise))
            self.grown.append({"epoch": state.epoch, "node": n, "source": source,
                               "created": result.report["created"][n].tolist()})

    def state_dict(self) -> dict:
        return {"grown": self.grown, "fired": sorted(getattr(self, "_fired", ()))}

    def load_state_dict(self, state: dict) -> None:
        self.grown = list(state.get("grown", []))
        self._fired = set(state.get("fired", []))

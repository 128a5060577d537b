"""DARTS-PT: perturbation-based architecture selection.

Wang, Cheng, Chen, Tang and Hsieh, "Rethinking Architecture Selection in Differentiable
NAS", ICLR 2021. The magnitude of an architecture weight need not tell how much its op
matters to the super-network; DARTS-PT asks the super-network instead. After the
super-network is trained:

1. *Op selection*: an undecided edge is drawn at random; for each of its candidates, the
   validation accuracy is measured with that candidate masked (its weight set to zero, the
   others unchanged); the edge keeps the candidate whose removal lowers the accuracy most
   (``RemoveOp`` edits for the others). Zero ops and excluded candidates are neither
   measured nor kept; the reference measures ``none`` too, whose masking changes nothing,
   so it would win only where no other removal lowers the accuracy.
2. The super-network is tuned for ``interval`` epochs, and the next edge is decided, until
   every edge of the cell is.
3. *Topology selection*: for a node drawn at random with more in-edges than
   ``max_inputs``, the in-edge whose removal (its output zeroed) leaves the highest accuracy
   is dropped, until ``max_inputs`` remain (``RemoveEdge`` edits); tuning again between
   nodes. As in the reference, each round measures the removal of one edge at a time.

Each cell template (and the top graph) gets one decision per round, as the reference
decides the normal and the reduction cell together. Masking never edits the graph: ops are
masked by a relaxation wrapper (:class:`~supernet.search.progressive.masking.MaskOps`),
edges by forward hooks.

Two ways to run it:

* ``DartsPT()``: every decision at the end of the search (:meth:`DartsPT.finalize`), with
  ``state.train(tune)`` (weight-only) between decisions;
* ``DartsPT(start=50, interval=5)``: decisions at the loop's epoch ends, after ``start``
  epochs of search and then every ``interval`` epochs, so that the loop's own (bilevel)
  epochs tune the super-network between them as in the reference;
  :func:`darts_pt_epochs` gives the epochs this takes. ``finalize`` decides what is left.

Reference settings: 50 search epochs, then a projection every 5 epochs (``proj_intv``),
edges in random order, accuracy as the criterion, batch normalization by the statistics of
each validation batch while measuring (``batch_stats=True``: the running statistics of a
super-network lag behind its weights). ``state.evaluate`` measures (pass ``evaluate=`` to
measure otherwise). The reference tunes at a tenth of the search's learning rate; here the
loop sets the learning rate.

Examples:
    >>> policy = DartsPT(order="sequential")
    >>> policy.order, policy.tune
    ('sequential', 5)
"""

from __future__ import annotations

import contextlib
import random
from typing import Callable

from supernet.edits import RemoveEdge
from supernet.errors import ConfigError, SearchError
from supernet.search.base import DiscretizationPolicy, SearchState
from supernet.search.progressive.common import (
    UNIT_LEVEL_ADVICE,
    budgets,
    gated_edges,
    remove_dangling,
    require_layer,
    template,
)
from supernet.search.progressive.masking import (
    MaskOps,
    batch_statistics,
    using_relaxation,
    zeroed_edges,
)

__all__ = ["DartsPT", "darts_pt_policy", "darts_pt_epochs"]


class DartsPT(DiscretizationPolicy):
    """Perturbation-based selection (see the module docstring).

    Args:
        start: decide at the loop's epoch ends from this many completed epochs on
            (``None``: decide everything in :meth:`finalize`).
        interval: epochs between two rounds of decisions at epoch ends.
        tune: epochs of ``state.train`` between two rounds in :meth:`finalize`
            (default: ``interval``; 0 for none).
        order: ``"random"`` (the paper's: edges and nodes drawn at random) or
            ``"sequential"`` (graph order).
        seed: seeds the random order.
        evaluate: ``evaluate(state) -> float`` measuring the current module (default:
            ``state.evaluate()``; higher is better).
        batch_stats: measure with batch normalization by batch statistics (the
            reference's choice), leaving the running statistics untouched.

    Attributes:
        decisions: one record per decision: kind (``"op"`` or ``"edge"``), where, what was
            kept, and the accuracy measured for each candidate removal.
    """

    def __init__(self, start: int | None = None, interval: int = 5, tune: int | None = None,
                 order: str = "random", seed: int = 0,
                 evaluate: Callable[[SearchState], float] | None = None,
                 batch_stats: bool = True):
        if order not in ("random", "sequential"):
            raise ConfigError(f"darts_pt: order must be 'random' or 'sequential', got {order!r}")
        if not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"darts_pt: interval must be a positive int, got {interval!r}")
        if start is not None and (not isinstance(start, int) or start < 1):
            raise ConfigError(f"darts_pt: start must be a positive int or None, got {start!r}")
        self.start, self.interval = start, interval
        self.tune = interval if tune is None else tune
        self.order, self.seed = order, seed
        self.rng = random.Random(seed)
        self._evaluate = evaluate
        self.batch_stats = batch_stats
        self.inputs: dict[tuple, list[str]] | None = None  # (cell, v) -> gated in-edges at start
        self.budget: dict[tuple, int] | None = None
        self.decisions: list[dict] = []

    # ---------------------------------------------------------------- hooks
    def on_search_start(self, state: SearchState) -> None:
        self._setup(state)

    def on_epoch_end(self, state: SearchState) -> None:
        self._setup(state)
        e = state.epoch
        if self.start is not None and e >= self.start and (e - self.start) % self.interval == 0:
            self.step(state)

    def finalize(self, state: SearchState) -> None:
        """Decide every edge and node left, tuning between rounds."""
        self._setup(state)
        while self.step(state):
            if self.tune and self.pending(state) and getattr(state, "train", None) is not None:
                state.train(self.tune)
        remove_dangling(state.editor)
        if not state.module.gates():
            state.module.relaxation = None

    # ---------------------------------------------------------------- rounds
    def pending(self, state: SearchState) -> bool:
        """Whether any edge or node is left to decide."""
        return bool(gated_edges(state.graph, state.module)) or bool(self._crowded(state))

    def step(self, state: SearchState) -> bool:
        """One round: per group, one op decision, or when its edges are all decided, one
        topology decision. Returns whether anything was decided."""
        self._setup(state)
        did = False
        edges = gated_edges(state.graph, state.module)
        crowded = self._crowded(state)
        for cell in dict.fromkeys([*(e.cell for e in edges), *(c for c, _ in crowded)]):
            group = [e for e in edges if e.cell == cell]
            if group:
                self._select_op(state, self._draw(group))
                did = True
                continue
            nodes = [n for n in crowded if n[0] == cell]
            if nodes:
                self._select_inputs(state, self._draw(nodes))
                did = True
        if did and not state.module.gates():
            state.arch_update = False  # no architecture weight left to train
        return did

    def _draw(self, items: list):
        return self.rng.choice(items) if self.order == "random" else items[0]

    def _measure(self, state: SearchState) -> float:
        if self._evaluate is None and getattr(state, "evaluate", None) is None:
            raise SearchError(
                "DARTS-PT measures the super-network, but the search loop gives no "
                "state.evaluate; pass evaluate= to DartsPT"
            )
        with batch_statistics(state.module) if self.batch_stats else contextlib.nullcontext():
            value = self._evaluate(state) if self._evaluate is not None else state.evaluate()
        return float(value)

    def _select_op(self, state: SearchState, edge) -> None:
        module = state.module
        accs = {}
        for i in edge.allowed:
            masked = MaskOps(module.relaxation, {k: [i] for k in edge.keys})
            with using_relaxation(module, masked):
                accs[edge.ops[i]] = self._measure(state)
        keep = min(accs, key=lambda op: accs[op])  # first of the lowest: the most needed
        for edit in edge.keep_only(keep):
            state.editor.apply(edit)
        self.decisions.append({"kind": "op", "edge": "/".join(edge.name), "kept": keep,
                               "accuracy_without": accs})

    def _select_inputs(self, state: SearchState, node) -> None:
        cell, v = node
        inputs = self._present(state, node)
        accs_log = []
        dropped = []
        while len(inputs) > self.budget[node]:
            accs = {}
            for u in inputs:
                with zeroed_edges(state.module, [(cell, u, v)]):
                    accs[u] = self._measure(state)
            best = max(accs.values())
            worst = [u for u in inputs if accs[u] == best][-1]  # the last of the highest
            inputs.remove(worst)
            dropped.append(worst)
            accs_log.append(accs)
        for u in dropped:
            state.editor.apply(RemoveEdge(u, v, cell=cell or None))
        self.decisions.append({"kind": "edge", "node": f"{cell}/{v}", "kept": list(inputs),
                               "accuracy_without": accs_log})

    # ---------------------------------------------------------------- structure
    def _present(self, state, node) -> list[str]:
        cell, v = node
        g = template(state.graph, cell)
        return [u for u in self.inputs[node] if g.nx.has_edge(u, v)]

    def _crowded(self, state) -> list[tuple]:
        """Nodes with more of their original gated in-edges than they may keep."""
        return [n for n in self.inputs if len(self._present(state, n)) > self.budget[n]]

    def _setup(self, state) -> None:
        require_layer(state.graph, "DARTS-PT works on the candidate ops of layer-level edges",
                      UNIT_LEVEL_ADVICE)
        if self.inputs is not None:
            return
        edges = gated_edges(state.graph, state.module)
        if not edges:
            raise SearchError(f"{state.graph.name}: DARTS-PT found no gated edge to decide")
        self.budget = budgets(state.graph, edges)
        self.inputs = {}
        for e in edges:
            self.inputs.setdefault((e.cell, e.v), []).append(e.u)

    def state_dict(self) -> dict:
        return {
            "rng": list(self.rng.getstate()[1]), "rng_version": self.rng.getstate()[0],
            "rng_gauss": self.rng.getstate()[2],
            "inputs": None if self.inputs is None else
            [[c, v, us] for (c, v), us in self.inputs.items()],
            "budget": None if self.budget is None else
            [[c, v, n] for (c, v), n in self.budget.items()],
            "decisions": self.decisions,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate((state["rng_version"], tuple(state["rng"]), state["rng_gauss"]))
        self.inputs = None if state["inputs"] is None else {
            (c, v): list(us) for c, v, us in state["inputs"]}
        self.budget = None if state["budget"] is None else {
            (c, v): n for c, v, n in state["budget"]}
        self.decisions = list(state.get("decisions", []))

    def __repr__(self) -> str:
        return (f"DartsPT(start={self.start}, interval={self.interval}, tune={self.tune}, "
                f"order={self.order!r})")


def darts_pt_epochs(graph, module, start: int = 50, interval: int = 5) -> int:
    """Loop epochs for ``DartsPT(start, interval)``: ``start`` epochs of search, one round
    of decisions every ``interval`` epochs, one tuning epoch after the last round (the
    reference's ``proj_intv * num_projs + 1`` tuning epochs)."""
    edges = gated_edges(graph, module)
    budget = budgets(graph, edges)
    rounds = 0
    for cell in dict.fromkeys(e.cell for e in edges):
        group = [e for e in edges if e.cell == cell]
        counts: dict[str, int] = {}
        for e in group:
            counts[e.v] = counts.get(e.v, 0) + 1
        crowded = sum(1 for v, n in counts.items() if n > budget[(cell, v)])
        rounds = max(rounds, len(group) + crowded)
    return start + interval * max(rounds - 1, 0) + 1


def darts_pt_policy(**kwargs) -> DartsPT:
    """A :class:`DartsPT` policy (see its arguments)."""
    return DartsPT(**kwargs)
